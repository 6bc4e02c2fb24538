"""The wiring of one running service: settings, database, clock, keys, audit log and providers.

Built once by :func:`build_container` (from ``app.create_app`` or the CLI). Tests build
their own with a fixed clock and their database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from miaodai.core.audit import AuditLog
from miaodai.core.clock import Clock, SystemClock
from miaodai.core.crypto import Vault, load_keyring
from miaodai.core.db import Database
from miaodai.core.settings import Settings


@dataclass
class Container:
    settings: Settings
    db: Database
    clock: Clock
    vault: Vault
    audit: AuditLog

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(days=self.settings.session_ttl_days)


def build_container(settings: Settings, *, clock: Clock | None = None, db: Database | None = None) -> Container:
    clock = clock or SystemClock()
    keyring = load_keyring(settings.keyring_file, create=settings.is_development)
    vault = Vault(keyring, settings.keyring_file)
    return Container(
        settings=settings,
        db=db or Database(settings.database_url),
        clock=clock,
        vault=vault,
        audit=AuditLog(clock),
    )
