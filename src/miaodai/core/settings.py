"""Settings read from the environment (prefix ``MIAODAI_``) or a ``.env`` file.

Outside development the service refuses to start with placeholder secrets or with
the development keyring that is created on the fly.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_MARKERS = ("changeme", "change-me", "placeholder", "dev-only")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MIAODAI_", env_file=".env", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite:///var/miaodai.db"
    # JSON keyring with the data-encryption keys and the blind-index key (see docs/operations.md).
    keyring_file: Path = Path("var/keyring.json")
    # Ed25519 private key (PKCS8 PEM, mode 0600) that signs every contract's SHA-256; created on first use
    # in development and test, required elsewhere (see miaodai.contracts.signing).
    contract_signing_key_file: Path = Path("var/contract-signing-key.pem")
    # Sandboxes for every outside party; the sandbox-only endpoints exist only when this is on.
    sandbox: bool = True
    log_level: str = "INFO"
    log_json: bool = True
    max_body_bytes: int = 64 * 1024
    # uvicorn's own proxy handling in ``miaodai serve`` (off by default). The app itself takes the client's
    # address from X-Forwarded-For only when the peer is one of MIAODAI_TRUSTED_PROXIES (see core/http.py).
    trust_forwarded_for: bool = False
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: CIDRs, as a JSON list or comma
    # separated ("10.0.0.0/8,127.0.0.1"). Empty: no header is believed, the client is the TCP peer.
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = ()
    # Strict-Transport-Security's max-age on answers over HTTPS and on every answer in production (0: never
    # sent); see core/security_headers.py.
    hsts_max_age_seconds: int = Field(default=365 * 24 * 3600, ge=0)
    # Idempotency-Key store of money-moving POSTs: how long a key's first response is kept (the API promises
    # at least a day), and how long a request holds its key before a retry may take it over (its process died);
    # the hold must outlast the slowest money-moving request, or a slow one and its retry could both run.
    idempotency_ttl_hours: int = 24
    idempotency_lock_seconds: int = Field(default=60, ge=1)

    # Phone login (one-time codes).
    otp_ttl_seconds: int = 300
    otp_max_wrong_guesses: int = 5
    otp_resend_cooldown_seconds: int = 60
    otp_max_per_hour: int = 5
    otp_max_per_day: int = 10
    otp_max_per_ip_per_hour: int = 30
    otp_max_per_device_per_hour: int = 10
    # Wrong codes (docs/api.md, "Wrong codes and lockouts"): the guesser's network and device are stopped
    # first; a number is locked (except on devices it has already logged in from) after the daily cap.
    otp_max_wrong_per_ip_per_hour: int = 30
    otp_max_wrong_per_device_per_hour: int = 10
    otp_max_wrong_per_ip_per_phone_per_hour: int = 5
    otp_max_wrong_per_phone_per_day: int = 10
    session_ttl_days: int = 30
    step_up_ttl_seconds: int = 300

    # Real-name verification.
    kyc_min_age: int = 18
    kyc_max_age: int = 60
    kyc_max_identity_attempts_per_day: int = 5
    kyc_max_face_attempts_per_day: int = 5
    provider_timeout_seconds: float = 3.0
    # How long each sandbox party takes to answer (0 for benchmarks that measure only our own work).
    sandbox_latency_seconds: float = Field(default=0.05, ge=0, le=10)

    # The borrower's web app (/app) sets its cookies Secure; browsers accept that over plain HTTP only on
    # 127.0.0.1/localhost. Turn off only to try the app from a phone on a LAN without TLS.
    web_secure_cookies: bool = True
    # The lender's licence as the app's about page names it (网络小额贷款经营许可证 number); empty on a demo install,
    # which the page says.
    lender_licence: str = ""
    # Where payment channels send their callbacks: this service's public base URL. Unset, ``miaodai serve``
    # makes it the address it listens on (``--host``/``--port``; 0.0.0.0 as 127.0.0.1); other commands
    # (``payments recover``) use this default. Set it to the address the channel can reach in production.
    public_base_url: str = "http://127.0.0.1:8000"
    # The sandbox payment channel keeps its own records (it is an outside party) in this SQLite file.
    sandbox_channel_store: Path = Path("var/sandbox-channel.db")
    # The background worker that sends stored orders, queries unfinished ones and (sandbox) delivers
    # the sandbox channel's callbacks.
    payments_worker_enabled: bool = True
    payments_worker_interval_seconds: float = Field(default=1.0, gt=0)
    # How long the sandbox channel takes to finish a payout or collection after accepting it.
    sandbox_channel_settle_seconds: float = Field(default=2, ge=0, le=3600)

    # The product a credit application asks for when it names none (the demo seed creates this one).
    credit_default_product: str = "DEMO-12"
    # The most credit applications one borrower may make (each one queries the bureau, which costs money and
    # shows on their credit record): per business day, and per 7 days counting today.
    credit_max_applications_per_day: int = Field(default=3, ge=1)
    credit_max_applications_per_7_days: int = Field(default=5, ge=1)
    # The bank's card-binding codes one borrower may have sent in a Beijing day (each start is also a
    # four-element query of their identity), and those one reserved phone may receive from every borrower.
    card_binding_codes_per_borrower_per_day: int = Field(default=10, ge=1)
    card_binding_codes_per_phone_per_day: int = Field(default=5, ge=1)

    # Audit chain: how often the background sealer runs, and how old an unsealed entry may get.
    audit_seal_interval_seconds: float = 0.5
    audit_unsealed_bound_seconds: int = 10
    audit_sealer_enabled: bool = True

    # A staff session ends 12 hours after login whatever happens (ASVS L2's absolute timeout); a console
    # session also ends after 15 minutes without a page view (the idle timeout).
    staff_session_ttl_hours: int = 12
    staff_idle_minutes: int = 15

    # Extra secret mixed into session-token hashes; must be set in production.
    session_pepper: str = Field(default="dev-only-session-pepper")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _proxies_as_networks(cls, value: tuple[IPv4Network | IPv6Network, ...]) -> tuple[Any, ...]:
        return tuple(ip_network(str(network), strict=False) for network in value)

    @field_validator("idempotency_ttl_hours")
    @classmethod
    def _keep_keys_a_day_at_least(cls, hours: int) -> int:
        if hours < 24:
            raise ValueError("MIAODAI_IDEMPOTENCY_TTL_HOURS must be at least 24: clients are promised a day of retries")
        return hours

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            lowered = self.session_pepper.lower()
            if any(marker in lowered for marker in PLACEHOLDER_MARKERS) or len(self.session_pepper) < 32:
                raise ValueError(
                    "MIAODAI_SESSION_PEPPER is a placeholder or shorter than 32 characters; "
                    "set a random secret before running in production"
                )
            if self.sandbox:
                raise ValueError("MIAODAI_SANDBOX must be false in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_development(self) -> bool:
        return self.env is not Environment.PRODUCTION


@lru_cache
def get_settings() -> Settings:
    return Settings()
