"""What every service is given: the platform port that the domains' own ports extend.

A service names what it uses as a Protocol, never the whole composition root: ``Platform`` here (settings,
database, clock, audit log, vault), extended by each domain's ``ports.py`` with the outside parties and
caches that domain needs. ``miaodai.container.Container`` satisfies all of them structurally, and only the
entry points (``app``, ``cli``, ``commands``, ``web``) build or name it — so a domain never imports the wiring
of the others, and ``lint-imports`` fails an import that would.
"""

from __future__ import annotations

from typing import Protocol

from miaodai.core.audit import AuditLog
from miaodai.core.clock import Clock
from miaodai.core.crypto import Vault
from miaodai.core.db import Database
from miaodai.core.settings import Settings


class Platform(Protocol):
    """Settings, the database, the clock, the hash-chained audit log and the personal-data vault."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def vault(self) -> Vault: ...
