"""The wiring of one running service: settings, database, clock, keys, audit log and providers.

Built once by :func:`build_container` (from ``app.create_app`` or the CLI). Tests build
their own with a fixed clock and their database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from miaodai.contracts.signing import PlatformSigner
from miaodai.core.audit import AuditLog
from miaodai.core.clock import Clock, SystemClock
from miaodai.core.crypto import Vault, load_keyring
from miaodai.core.db import Database
from miaodai.core.providers import Unconfigured
from miaodai.core.rollups import DailyRollup
from miaodai.core.settings import Settings
from miaodai.credit.bureau import CreditBureau, SandboxBureau
from miaodai.credit.carrier_data import CarrierData, SandboxCarrierData
from miaodai.identity.kyc_providers import CarrierVerifier, FaceLiveness, build_kyc_providers
from miaodai.identity.sms import SmsProvider
from miaodai.loans.disclosure import ProductTerms
from miaodai.loans.ports import PayoutOrders
from miaodai.payments.card_verification import CardVerifier, SandboxCardVerifier
from miaodai.payments.channel import PaymentChannel
from miaodai.payments.orders import LoanPayouts
from miaodai.payments.wallet_provider import WalletProvider
from miaodai.sandbox.sms import SandboxSmsProvider

if TYPE_CHECKING:
    from miaodai.credit.ports import CreditPorts
    from miaodai.credit.registry import PolicyCache
    from miaodai.payments.ports import PaymentPorts


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
    bureau: CreditBureau
    carrier_data: CarrierData
    card_verifier: CardVerifier

    @cached_property
    def credit_policy(self) -> PolicyCache:
        """The active ruleset and models, parsed once per version (imported late: it loads the scorecard)."""
        from miaodai.credit.registry import PolicyCache

        return PolicyCache()

    @cached_property
    def product_terms(self) -> ProductTerms:
        """Products' terms read at most once a minute (a line's all-in APR is shown without a round trip); one
        per container, so each test's database has its own."""
        return ProductTerms()

    @cached_property
    def payouts(self) -> PayoutOrders:
        """Payment orders of loans' payouts: the loans domain's port, implemented by payments."""
        return LoanPayouts(self)

    @cached_property
    def channel(self) -> PaymentChannel:
        """The payment channel for payouts and collections, opened on first use (the sandbox keeps its
        own records in ``MIAODAI_SANDBOX_CHANNEL_STORE``)."""
        if not self.settings.sandbox:
            return Unconfigured(  # type: ignore[return-value]
                "payment channel", "miaodai.payments.channel.PaymentChannel")
        from miaodai.sandbox.wallet import SandboxWallet
        from miaodai.sandbox.wallet_debits import SandboxWalletChannel

        wallet = self.wallets  # the sandbox channel asks the sandbox wallets about their agreements
        return SandboxWalletChannel(
            "sandbox", self.settings.sandbox_channel_store,
            self.vault.blind_index("payment-channel", "sandbox").encode(), self.clock,
            latency_seconds=self.settings.sandbox_latency_seconds,
            timeout_seconds=self.settings.provider_timeout_seconds,
            settle_seconds=self.settings.sandbox_channel_settle_seconds,
            wallet=wallet if isinstance(wallet, SandboxWallet) else None,
        )

    @cached_property
    def wallets(self) -> WalletProvider:
        """Alipay and WeChat Pay, for signing withholding agreements and cancelling them (the sandbox
        wallet's codes are keyed from the keyring, so every worker process checks the codes any of them
        issued; the agreements it signed and cancelled it keeps in the database)."""
        if not self.settings.sandbox:
            return Unconfigured(  # type: ignore[return-value]
                "e-wallet (Alipay / WeChat Pay)", "miaodai.payments.wallet_provider.WalletProvider")
        from miaodai.sandbox.wallet import SandboxWallet

        return SandboxWallet(
            self.vault.blind_index("wallet", "sandbox").encode(), self.settings.public_base_url,
            db=self.db, clock=self.clock,
            timeout_seconds=self.settings.provider_timeout_seconds,
            latency_seconds=self.settings.sandbox_latency_seconds,
        )

    @cached_property
    def daily_rollups(self) -> tuple[DailyRollup, ...]:
        """The dashboards' daily roll-ups the end-of-day batch brings up to date, each its domain's own."""
        from miaodai.credit.dashboards import ApplicationsRollup
        from miaodai.loans.portfolio import ROLLUPS as LOAN_ROLLUPS
        from miaodai.payments.dashboards import CallbacksRollup, OrdersRollup

        return (ApplicationsRollup(), OrdersRollup(), CallbacksRollup(), *LOAN_ROLLUPS)

    @cached_property
    def signer(self) -> PlatformSigner:
        """The platform's contract-signing key, loaded on first use (created in development and tests)."""
        return PlatformSigner.from_settings(self.settings)

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(days=self.settings.session_ttl_days)

    def unconfigured_providers(self) -> list[Unconfigured]:
        """Outside parties with neither a sandbox nor a real adapter (the server refuses to start)."""
        parties = (self.sms, self.carrier, self.face, self.bureau, self.carrier_data, self.card_verifier)
        if not self.settings.sandbox:  # (with the sandbox on, the channel's store is opened on first use)
            parties += (self.channel, self.wallets)
        return [p for p in parties if isinstance(p, Unconfigured)]


def build_container(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None,
    sms: SmsProvider | None = None, carrier: CarrierVerifier | None = None, face: FaceLiveness | None = None,
    bureau: CreditBureau | None = None, carrier_data: CarrierData | None = None,
    card_verifier: CardVerifier | None = None,
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
        timeout = settings.provider_timeout_seconds
        latency = settings.sandbox_latency_seconds
        bureau = bureau or SandboxBureau(timeout_seconds=timeout, latency_seconds=latency)
        carrier_data = carrier_data or SandboxCarrierData(timeout_seconds=timeout, latency_seconds=latency)
        # Keyed from the keyring, so every worker process checks the codes any of them had sent.
        card_verifier = card_verifier or SandboxCardVerifier(
            sms, vault.blind_index("card-verifier", "sandbox").encode(), timeout_seconds=timeout,
            latency_seconds=latency)
    else:
        sms = sms or Unconfigured("SMS/voice", "miaodai.identity.sms.SmsProvider")  # type: ignore[assignment]
        carrier = carrier or Unconfigured(  # type: ignore[assignment]
            "carrier three-element verification", "miaodai.identity.kyc_providers.CarrierVerifier")
        face = face or Unconfigured("face liveness", "miaodai.identity.kyc_providers.FaceLiveness")  # type: ignore[assignment]
        bureau = bureau or Unconfigured("credit bureau", "miaodai.credit.bureau.CreditBureau")  # type: ignore[assignment]
        carrier_data = carrier_data or Unconfigured(  # type: ignore[assignment]
            "carrier data", "miaodai.credit.carrier_data.CarrierData")
        card_verifier = card_verifier or Unconfigured(  # type: ignore[assignment]
            "four-element card verification", "miaodai.payments.card_verification.CardVerifier")
    return Container(
        settings=settings,
        db=db,
        clock=clock,
        vault=vault,
        audit=AuditLog(clock),
        sms=sms,
        carrier=carrier,
        face=face,
        bureau=bureau,
        carrier_data=carrier_data,
        card_verifier=card_verifier,
    )


def _container_satisfies_every_port(container: Container) -> tuple[CreditPorts, PaymentPorts]:
    """Never called: mypy proves here that the container is what each domain's port asks for (the
    credit and payment ports extend loans', identity's and the platform's)."""
    return container, container
