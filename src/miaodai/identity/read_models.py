"""What other domains read of the identity domain's tables, as SQL they compose into their own statements.

The staff's customer view reads a borrower's whole identity side here too (:func:`identity_picture`), and finds
borrowers by the blind indexes of their phone, ID number and name (:func:`borrowers_by_index`).

A credit decision reads the applicant on one row (one round trip): the borrower's verification status and
encrypted phone, the verified identity, and the device the request came from. Identity owns these columns and
the joins that find them; the reader adds its own columns to the same SELECT.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.selectable import Select

from miaodai.core.crypto import Vault
from miaodai.identity.models import (
    KYC_ID_NUMBER_FIELD,
    KYC_NAME_FIELD,
    NAME_INDEX,
    PHONE_FIELD,
    Borrower,
    BorrowerSession,
    BorrowerStatus,
    Consent,
    ConsentDocument,
    ConsentKind,
    DeliveryStatus,
    Device,
    IdentityFlag,
    KycAttempt,
    KycAttemptKind,
    KycIdentity,
    KycStatus,
    OtpChallenge,
    OtpChannel,
    OtpPurpose,
)

# The identity and the device under one-letter aliases: the credit application's row must stay within psycopg's
# query cache (tests/unit/test_hot_statements.py), and every byte of its text counts.
_K = aliased(KycIdentity, name="k")
_D = aliased(Device, name="d")

# Columns: kyc_status, phone_enc, phone_bidx, name_enc, id_number_enc, id_number_bidx, birth_date, device_bidx.
APPLICANT_COLUMNS = (
    Borrower.kyc_status, Borrower.phone_enc, Borrower.phone_bidx, _K.name_enc, _K.id_number_enc,
    _K.id_number_bidx, _K.birth_date, _D.device_key_bidx.label("device_bidx"),
)
# The same values as expressions, for conditions on the applicant's row (block lists, the device's applicants).
ID_NUMBER_BIDX = _K.id_number_bidx
PHONE_BIDX = Borrower.phone_bidx
DEVICE_BIDX = _D.device_key_bidx


def applicant_row(*columns: Any) -> Select[Any]:
    """One row of the borrower (bind parameter ``borrower_id``) with an identity on file, with the device the
    request came from (``device_id``; NULL columns when it is unknown): :data:`APPLICANT_COLUMNS` followed by
    ``columns``. No row: no identity on file."""
    return (
        select(*APPLICANT_COLUMNS, *columns)
        .join(_K, _K.borrower_id == Borrower.id)
        .outerjoin(_D, _D.id == bindparam("device_id"))
        .where(Borrower.id == bindparam("borrower_id"))
    )


def borrower_locked(*columns: Any) -> Select[Any]:
    """``columns`` (the id when none) on the borrower's row (bind parameter ``borrower_id``), locking it until
    the transaction ends: what serializes one borrower's decisions. The row is only locked, never changed here."""
    row = select(*(columns or (Borrower.id,))).where(Borrower.id == bindparam("borrower_id"))
    return row.with_for_update(of=Borrower)


# -- the staff's customer view (backoffice.search, backoffice.customer360) ------------------------------------
# Plain rows with the personal data still encrypted: the reader masks (or, for an audited reveal, decrypts) it.


def normalized_name(name: str) -> str:
    """A name as its blind index sees it: NFKC (full-width letters and compatibility forms folded), every kind
    of whitespace removed, case folded (Latin names); "张 三", "张三" and "张　三" are one name."""
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


def name_index(vault: Vault, name: str) -> str:
    """The blind index of a verified name (``kyc_identities.name_bidx``): written by every writer of an identity,
    looked up by the staff's search by name."""
    return vault.blind_index(normalized_name(name), NAME_INDEX)


class LookupKind(StrEnum):
    PHONE = "phone"
    ID_NUMBER = "id_number"
    NAME = "name"


_LOOKUP_COLUMNS = {
    LookupKind.PHONE: Borrower.phone_bidx,
    LookupKind.ID_NUMBER: KycIdentity.id_number_bidx,
    LookupKind.NAME: KycIdentity.name_bidx,
}


def borrowers_by_index(session: Session, kind: LookupKind, bidx: str, *, limit: int) -> list[int]:
    """The borrowers whose phone, ID number or name has the blind index ``bidx`` (ids ascending, at most
    ``limit``): an equality lookup on an indexed column, nothing decrypted."""
    column = _LOOKUP_COLUMNS[kind]
    stmt = select(Borrower.id).outerjoin(KycIdentity, KycIdentity.borrower_id == Borrower.id)
    return list(session.scalars(stmt.where(column == bidx).order_by(Borrower.id).limit(limit)))


@dataclass(frozen=True)
class BorrowerRow:
    """A borrower and their verified identity (``None`` fields before verification); personal data encrypted."""

    borrower_id: int
    status: BorrowerStatus
    kyc_status: KycStatus
    created_at: datetime
    phone_enc: str
    name_enc: str | None
    id_number_enc: str | None
    birth_date: date | None
    gender: str | None
    region_code: str | None
    carrier_verified_at: datetime | None
    face_verified_at: datetime | None


_BORROWER_ROWS = select(
    Borrower.id.label("borrower_id"), Borrower.status, Borrower.kyc_status, Borrower.created_at, Borrower.phone_enc,
    KycIdentity.name_enc, KycIdentity.id_number_enc, KycIdentity.birth_date, KycIdentity.gender,
    KycIdentity.region_code, KycIdentity.carrier_verified_at, KycIdentity.face_verified_at,
).outerjoin(KycIdentity, KycIdentity.borrower_id == Borrower.id)


def borrower_rows(session: Session, borrower_ids: Sequence[int]) -> list[BorrowerRow]:
    """The borrowers of ``borrower_ids`` that exist, ids ascending, in one statement."""
    if not borrower_ids:
        return []
    rows = session.execute(_BORROWER_ROWS.where(Borrower.id.in_(list(borrower_ids))).order_by(Borrower.id))
    return [BorrowerRow(**row._mapping) for row in rows]


@dataclass(frozen=True)
class KycAttemptRow:
    kind: KycAttemptKind
    outcome: str
    created_at: datetime


@dataclass(frozen=True)
class FlagRow:
    kind: str
    related_borrower_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class ConsentRow:
    kind: ConsentKind
    version: str
    title_zh: str
    title_en: str
    granted_at: datetime
    revoked_at: datetime | None
    device_id: int | None


@dataclass(frozen=True)
class DeviceRow:
    device_id: int
    label: str
    trusted: bool
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class SessionRow:
    session_id: int
    device_id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    state: str  # active | expired | revoked, at the ``now`` the picture was read at


def session_state(revoked_at: datetime | None, expires_at: datetime, now: datetime) -> str:
    return "revoked" if revoked_at else "expired" if expires_at <= now else "active"


@dataclass(frozen=True)
class CodeMessageRow:
    """A one-time code sent to the borrower's phone (login, step-up, contract signing): never the code itself."""

    purpose: OtpPurpose
    channel: OtpChannel
    delivery: DeliveryStatus
    created_at: datetime
    consumed_at: datetime | None


@dataclass(frozen=True)
class IdentityPicture:
    borrower: BorrowerRow
    kyc_attempts: list[KycAttemptRow]
    flags: list[FlagRow]
    consents: list[ConsentRow]
    devices: list[DeviceRow]
    sessions: list[SessionRow]
    codes_sent: list[CodeMessageRow]


def identity_picture(session: Session, borrower_id: int, *, now: datetime,
                     recent: int = 200) -> IdentityPicture | None:
    """Everything identity holds about one borrower, newest first, each list one statement (at most ``recent``
    rows of the sent codes and sessions; a session's state as of ``now``); None when there is no such borrower."""
    found = borrower_rows(session, [borrower_id])
    if not found:
        return None
    phone_bidx = select(Borrower.phone_bidx).where(Borrower.id == borrower_id).scalar_subquery()
    attempts = session.execute(
        select(KycAttempt.kind, KycAttempt.outcome, KycAttempt.created_at)
        .where(KycAttempt.borrower_id == borrower_id).order_by(KycAttempt.id.desc()))
    flags = session.execute(
        select(IdentityFlag.kind, IdentityFlag.related_borrower_id, IdentityFlag.created_at)
        .where(IdentityFlag.borrower_id == borrower_id).order_by(IdentityFlag.id.desc()))
    consents = session.execute(
        select(Consent.kind, Consent.version, ConsentDocument.title_zh, ConsentDocument.title_en, Consent.granted_at,
               Consent.revoked_at, Consent.device_id)
        .join(ConsentDocument, ConsentDocument.id == Consent.document_id)
        .where(Consent.borrower_id == borrower_id).order_by(Consent.id.desc()))
    devices = session.execute(
        select(Device.id, Device.label, Device.trusted, Device.first_seen_at, Device.last_seen_at)
        .where(Device.borrower_id == borrower_id).order_by(Device.last_seen_at.desc(), Device.id.desc()))
    sessions = session.execute(
        select(BorrowerSession.id, BorrowerSession.device_id, BorrowerSession.created_at,
               BorrowerSession.last_seen_at, BorrowerSession.expires_at, BorrowerSession.revoked_at)
        .where(BorrowerSession.borrower_id == borrower_id).order_by(BorrowerSession.id.desc()).limit(recent))
    codes = session.execute(
        select(OtpChallenge.purpose, OtpChallenge.channel, OtpChallenge.delivery, OtpChallenge.created_at,
               OtpChallenge.consumed_at)
        .where(OtpChallenge.phone_bidx == phone_bidx).order_by(OtpChallenge.id.desc()).limit(recent))
    return IdentityPicture(
        borrower=found[0], kyc_attempts=[KycAttemptRow(*r) for r in attempts], flags=[FlagRow(*r) for r in flags],
        consents=[ConsentRow(*r) for r in consents], devices=[DeviceRow(*r) for r in devices],
        sessions=[SessionRow(*r, state=session_state(r.revoked_at, r.expires_at, now)) for r in sessions],
        codes_sent=[CodeMessageRow(*r) for r in codes],
    )


# The encrypted value of each field a staff member may reveal, with the name bound into its ciphertext.
REVEALABLE = {
    "phone": (Borrower.phone_enc, PHONE_FIELD),
    "full_name": (KycIdentity.name_enc, KYC_NAME_FIELD),
    "id_number": (KycIdentity.id_number_enc, KYC_ID_NUMBER_FIELD),
}


def sealed_field(session: Session, borrower_id: int, field: str) -> tuple[str, str] | None:
    """The ciphertext of one of the borrower's :data:`REVEALABLE` fields and its field name (for
    ``Vault.decrypt``), or None when the borrower or the value does not exist."""
    column, aad = REVEALABLE[field]
    stmt = (select(column).select_from(Borrower).outerjoin(KycIdentity, KycIdentity.borrower_id == Borrower.id)
            .where(Borrower.id == borrower_id))
    value = session.scalars(stmt).one_or_none()
    return None if value is None else (value, aad)


def missing_name_index(session: Session, *, after_id: int, limit: int) -> list[tuple[int, str]]:
    """Identities verified before names had a blind index: (id, name_enc) by ascending id, for the backfill."""
    rows = session.execute(
        select(KycIdentity.id, KycIdentity.name_enc).where(KycIdentity.name_bidx.is_(None), KycIdentity.id > after_id)
        .order_by(KycIdentity.id).limit(limit))
    return [(identity_id, name_enc) for identity_id, name_enc in rows]


def set_name_index(session: Session, identity_id: int, bidx: str) -> None:
    session.execute(update(KycIdentity).where(KycIdentity.id == identity_id, KycIdentity.name_bidx.is_(None))
                    .values(name_bidx=bidx))
