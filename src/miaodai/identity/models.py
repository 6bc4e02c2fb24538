"""Tables of the identity domain. Personal data is stored only encrypted (``*_enc``)
with keyed blind indexes (``*_bidx``) for lookups; see ``core.crypto``."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from miaodai.core.db import Base, IdType, UTCDateTime, enum_column

# The names bound into each ciphertext (AES-GCM associated data) and the blind-index purposes.
# Every writer and reader, and keys.ENCRYPTED_COLUMNS, take them from here: a value encrypted
# under one name does not decrypt under another.
PHONE_FIELD = "borrower.phone"
KYC_NAME_FIELD = "kyc.name"
KYC_ID_NUMBER_FIELD = "kyc.id_number"
STAFF_TOTP_FIELD = "staff.totp_secret"
PHONE_INDEX = "phone"
ID_NUMBER_INDEX = "id_number"
NAME_INDEX = "name"  # the verified name, normalised (identity.read_models.name_index): staff search by name
DEVICE_INDEX = "device"
IP_INDEX = "ip"


_enum = enum_column


class KycStatus(StrEnum):
    NONE = "none"
    CARRIER_VERIFIED = "carrier_verified"  # name + ID + phone matched; face still to do
    VERIFIED = "verified"


class BorrowerStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class OtpPurpose(StrEnum):
    LOGIN = "login"
    STEP_UP = "step_up"
    CONTRACT_SIGN = "contract_sign"  # signs one contract: the code's hash is bound to its number and SHA-256


class OtpChannel(StrEnum):
    SMS = "sms"
    VOICE = "voice"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # recorded before the carrier is called, so concurrent requests count it
    SENT = "sent"
    FAILED = "failed"


class KycAttemptKind(StrEnum):
    IDENTITY = "identity"
    FACE = "face"


class ConsentKind(StrEnum):
    PRIVACY_POLICY = "privacy_policy"
    USER_AGREEMENT = "user_agreement"
    CREDIT_BUREAU_QUERY = "credit_bureau_query"
    CARRIER_DATA = "carrier_data"


class Borrower(Base):
    __tablename__ = "borrowers"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    phone_enc: Mapped[str] = mapped_column(String(255))
    phone_bidx: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[BorrowerStatus] = mapped_column(_enum(BorrowerStatus), default=BorrowerStatus.ACTIVE)
    kyc_status: Mapped[KycStatus] = mapped_column(_enum(KycStatus), default=KycStatus.NONE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KycIdentity(Base):
    """The verified identity of a borrower; one per ID number across the whole service."""

    __tablename__ = "kyc_identities"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), unique=True)
    name_enc: Mapped[str] = mapped_column(String(255))
    id_number_enc: Mapped[str] = mapped_column(String(255))
    id_number_bidx: Mapped[str] = mapped_column(String(64), unique=True)
    # Not unique (namesakes); NULL on rows verified before migration 0016 until `miaodai customers backfill-index`.
    name_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    birth_date: Mapped[date] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(1))
    region_code: Mapped[str] = mapped_column(String(6))
    carrier_verified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    face_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class KycAttempt(Base):
    """Every verification attempt and its outcome code, for daily limits and review."""

    __tablename__ = "kyc_attempts"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"))
    kind: Mapped[KycAttemptKind] = mapped_column(_enum(KycAttemptKind))
    outcome: Mapped[str] = mapped_column(String(48))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_kyc_attempts_borrower_kind_time", "borrower_id", "kind", "created_at"),)


class IdentityFlag(Base):
    """A risk signal raised during onboarding (e.g. an ID number already bound elsewhere)."""

    __tablename__ = "identity_flags"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(48))
    related_borrower_id: Mapped[int | None] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"))
    # Blind index of the client's device id (X-Device-Id), never the raw value.
    device_key_bidx: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(120))
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("borrower_id", "device_key_bidx"),)


class BorrowerSession(Base):
    """An opaque, revocable login token (stored only as a hash) bound to a device."""

    __tablename__ = "borrower_sessions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    step_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OtpChallenge(Base):
    """A one-time code sent to a phone: stored as a keyed hash, single use, bound to phone and purpose."""

    __tablename__ = "otp_challenges"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    phone_bidx: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[OtpPurpose] = mapped_column(_enum(OtpPurpose))
    channel: Mapped[OtpChannel] = mapped_column(_enum(OtpChannel))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    wrong_guesses: Mapped[int] = mapped_column(Integer, default=0)
    delivery: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus))
    ip_bidx: Mapped[str] = mapped_column(String(64))
    device_key_bidx: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_otp_challenges_phone_time", "phone_bidx", "created_at"),
        Index("ix_otp_challenges_ip_time", "ip_bidx", "created_at"),
        Index("ix_otp_challenges_device_time", "device_key_bidx", "created_at"),
    )


class RateCounter(Base):
    """One count of one cap (``kind``) for one key in one fixed window, raised atomically by
    :mod:`miaodai.identity.counters`. Keys that are personal data are blind indexes, never clear."""

    __tablename__ = "rate_counters"

    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    n: Mapped[int] = mapped_column(Integer)


class ConsentDocument(Base):
    __tablename__ = "consent_documents"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    kind: Mapped[ConsentKind] = mapped_column(_enum(ConsentKind))
    version: Mapped[str] = mapped_column(String(16))
    title_zh: Mapped[str] = mapped_column(String(120))
    title_en: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str] = mapped_column(String(64))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("kind", "version"),)


class Consent(Base):
    """One grant of one consent document version; revoking sets ``revoked_at`` (rows are never deleted)."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"))
    document_id: Mapped[int] = mapped_column(ForeignKey("consent_documents.id"))
    kind: Mapped[ConsentKind] = mapped_column(_enum(ConsentKind))
    version: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_consents_borrower_kind", "borrower_id", "kind"),)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret_enc: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_totp_step: Mapped[int | None] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # First login (and after an administrator's reset): the one-time password must be changed, and an account
    # whose TOTP secret was never confirmed (None) enrols a new one by scanning a QR code.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffRoleGrant(Base):
    __tablename__ = "staff_role_grants"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(48), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    granted_by: Mapped[int | None] = mapped_column(IdType)


class StaffSession(Base):
    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # api: a bearer token of /v1/staff; console: the console's cookie (idle timeout too); setup: a first
    # login's session that may only change the password and enrol TOTP (the secret being enrolled here).
    scope: Mapped[str] = mapped_column(String(16), default="api", server_default="api")
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ip_masked: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    setup_totp_secret_enc: Mapped[str | None] = mapped_column(String(255))
