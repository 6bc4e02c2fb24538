"""The wiring of one running service: settings, database, clock, keys, audit log and providers.

Built once by :func:`build_container` (from ``app.create_app`` or the CLI). Tests build
their own with a fixed clock and their database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from miaodai.contracts.signing import PlatformSigner
from miaodai.core.audit import AuditLog
from miaodai.core.clock import Clock, SystemClock
from miaodai.core.crypto import Vault, load_keyring
from miaodai.core.db import Database
from miaodai.core.providers import Unconfigured
from miaodai.core.settings import Settings
from miaodai.identity.kyc_providers import CarrierVerifier, FaceLiveness, build_kyc_providers
from miaodai.identity.sms import SandboxSmsProvider, SmsProvider


@dataclass
class Container:
    settings: Settings
    db: Database
    clock: Clock
    vault: Vault
    audit: AuditLog
    sms: SmsProvider
    carrier: CarrierVerifier
    face: FaceLiveness

    @cached_property
    def signer(self) -> PlatformSigner:
        """The platform's contract-signing key, loaded on first use (created in development and tests)."""
        return PlatformSigner.from_settings(self.settings)

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(days=self.settings.session_ttl_days)

    def unconfigured_providers(self) -> list[Unconfigured]:
        """Outside parties with neither a sandbox nor a real adapter (the server refuses to start)."""
        return [p for p in (self.sms, self.carrier, self.face) if isinstance(p, Unconfigured)]


def build_container(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None,
    sms: SmsProvider | None = None, carrier: CarrierVerifier | None = None, face: FaceLiveness | None = None,
) -> Container:
    """Wire a service. Adapters passed in win; otherwise sandboxes when MIAODAI_SANDBOX is on,
    and with it off, placeholders that refuse to be used (never a silent fallback to a sandbox)."""
    clock = clock or SystemClock()
    db = db or Database(settings.database_url)
    keyring = load_keyring(settings.keyring_file, create=settings.is_development)
    vault = Vault(keyring, settings.keyring_file)
    if settings.sandbox:
        sandbox_carrier, sandbox_face = build_kyc_providers(settings)
        sms = sms or SandboxSmsProvider(db, vault, clock)
        carrier, face = carrier or sandbox_carrier, face or sandbox_face
    else:
        sms = sms or Unconfigured("SMS/voice", "miaodai.identity.sms.SmsProvider")  # type: ignore[assignment]
        carrier = carrier or Unconfigured(  # type: ignore[assignment]
            "carrier three-element verification", "miaodai.identity.kyc_providers.CarrierVerifier")
        face = face or Unconfigured("face liveness", "miaodai.identity.kyc_providers.FaceLiveness")  # type: ignore[assignment]
    return Container(
        settings=settings,
        db=db,
        clock=clock,
        vault=vault,
        audit=AuditLog(clock),
        sms=sms,
        carrier=carrier,
        face=face,
    )
