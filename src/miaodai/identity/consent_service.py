"""Consents (PIPL art. 29): versioned documents, each granted separately, revocable.

A grant is *in force* only while it is unrevoked and points at the version of its
document that is in effect now (the latest version whose ``effective_at`` has come).
Publishing a newer version therefore takes every older grant out of force, and the
borrower must agree again. Later steps call :func:`require_consents` inside their own
transaction. Grant rows are never deleted: revoking stamps ``revoked_at``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import and_, bindparam, exists, select
from sqlalchemy.orm import Session

from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.identity.consent_errors import ConsentErrors
from miaodai.identity.models import Consent, ConsentDocument, ConsentKind
from miaodai.identity.sessions import AuthContext

# What the carrier three-element check needs (it sends the name, ID and phone to the carrier).
CARRIER_CHECK_CONSENTS = (ConsentKind.PRIVACY_POLICY, ConsentKind.USER_AGREEMENT, ConsentKind.CARRIER_DATA)
# What any processing of identity data (e.g. the face check) needs.
BASIC_CONSENTS = (ConsentKind.PRIVACY_POLICY, ConsentKind.USER_AGREEMENT)


@dataclass(frozen=True)
class Standing:
    """Where a borrower stands with one kind of document."""

    kind: ConsentKind
    current: ConsentDocument
    grant: Consent | None  # the grant in force, if any
    reason: str  # in_force | never_granted | revoked | outdated (granted an older version)

    @property
    def in_force(self) -> bool:
        return self.grant is not None


def _version_key(version: str) -> tuple[int, ...]:
    # "1.10" is newer than "1.9"; non-numeric parts sort first rather than crash.
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def parse_kind(kind: str) -> ConsentKind:
    try:
        return ConsentKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in ConsentKind)
        raise DomainError(ConsentErrors.UNKNOWN_KIND, params={"kind": kind[:64], "known": known}) from None


def all_documents(session: Session) -> list[ConsentDocument]:
    stmt = select(ConsentDocument).order_by(ConsentDocument.kind, ConsentDocument.effective_at, ConsentDocument.id)
    return list(session.execute(stmt).scalars())


def current_documents(session: Session, now: datetime) -> dict[ConsentKind, ConsentDocument]:
    """The version of each document in effect at ``now``."""
    return _in_effect(all_documents(session), now)


class _Dated(Protocol):
    @property
    def kind(self) -> ConsentKind: ...
    @property
    def version(self) -> str: ...
    @property
    def effective_at(self) -> datetime: ...


_D = TypeVar("_D", bound=_Dated)


def _in_effect(documents: Iterable[_D], now: datetime) -> dict[ConsentKind, _D]:
    """Of each kind, the document (or a row with its kind, version, effective_at) in effect at ``now``."""
    current: dict[ConsentKind, _D] = {}
    for doc in documents:
        if doc.effective_at > now:
            continue  # published ahead of its effective date
        held = current.get(doc.kind)
        if held is None or (doc.effective_at, _version_key(doc.version)) > (
            held.effective_at, _version_key(held.version)
        ):
            current[doc.kind] = doc
    return current


def find_document(session: Session, kind: str, version: str, *, now: datetime) -> ConsentDocument:
    consent_kind = parse_kind(kind)
    doc = session.execute(
        select(ConsentDocument).where(ConsentDocument.kind == consent_kind, ConsentDocument.version == version)
    ).scalar_one_or_none()
    if doc is None:
        current = current_documents(session, now).get(consent_kind)
        params = {"kind": kind, "version": version[:16], "current_version": current.version if current else "-"}
        raise DomainError(ConsentErrors.DOCUMENT_NOT_FOUND, params=params)
    return doc


def grants_of(session: Session, borrower_id: int) -> list[Consent]:
    stmt = select(Consent).where(Consent.borrower_id == borrower_id).order_by(Consent.granted_at, Consent.id)
    return list(session.execute(stmt).scalars())


# Every document with the borrower's grants of it, in one round trip (standings are read on every
# application and every step that needs a consent).
_DOCUMENTS_AND_GRANTS = (
    select(ConsentDocument, Consent)
    .outerjoin(Consent, and_(Consent.document_id == ConsentDocument.id, Consent.borrower_id == bindparam("borrower")))
    .order_by(ConsentDocument.kind, ConsentDocument.effective_at, ConsentDocument.id)
)


def standings(session: Session, borrower_id: int, *, now: datetime) -> dict[ConsentKind, Standing]:
    rows = session.execute(_DOCUMENTS_AND_GRANTS, {"borrower": borrower_id}).all()
    current = _in_effect(dict.fromkeys(doc for doc, _ in rows), now)
    grants = sorted((grant for _, grant in rows if grant is not None), key=lambda g: (g.granted_at, g.id))
    result: dict[ConsentKind, Standing] = {}
    for kind, doc in current.items():
        of_kind = [g for g in grants if g.kind == kind]
        live = [g for g in of_kind if g.revoked_at is None]
        grant = next((g for g in reversed(live) if g.document_id == doc.id), None)
        if grant is not None:
            reason = "in_force"
        elif live:
            reason = "outdated"
        else:
            reason = "revoked" if of_kind else "never_granted"
        result[kind] = Standing(kind, doc, grant, reason)
    return result


# Only what deciding "in force" needs — no document bodies, no ORM objects: the credit application asks
# this on every request. A kind is in force when an unrevoked grant of its current version exists.
_IN_FORCE = (
    select(ConsentDocument.id, ConsentDocument.kind, ConsentDocument.version, ConsentDocument.effective_at,
           exists().where(Consent.document_id == ConsentDocument.id, Consent.borrower_id == bindparam("borrower"),
                          Consent.revoked_at.is_(None)).label("granted"))
    .order_by(ConsentDocument.kind, ConsentDocument.effective_at, ConsentDocument.id)
)


def in_force(session: Session, borrower_id: int, *, now: datetime) -> dict[ConsentKind, bool]:
    """Per kind with a version in effect: whether the borrower's consent to it is in force — the same answer
    as ``standings(...)[kind].in_force``, in one light read."""
    rows = session.connection().execute(_IN_FORCE, {"borrower": borrower_id}).all()
    return {kind: bool(row.granted) for kind, row in _in_effect(rows, now).items()}


def require_consents(
    session: Session, borrower_id: int, kinds: Iterable[ConsentKind], *, now: datetime
) -> None:
    """Raise CONSENT_REQUIRED naming every document in ``kinds`` not in force for the borrower."""
    standing = standings(session, borrower_id, now=now)
    missing = [standing[kind] for kind in kinds if kind in standing and not standing[kind].in_force]
    if not missing:
        return
    raise DomainError(
        ConsentErrors.REQUIRED,
        params={
            "missing": [s.kind.value for s in missing],
            "documents": [{"kind": s.kind.value, "version": s.current.version, "reason": s.reason} for s in missing],
            "_titles_zh": "、".join(f"《{s.current.title_zh}》" for s in missing),
            "_titles_en": ", ".join(s.current.title_en for s in missing),
        },
    )


def grant(ports: Platform, auth: AuthContext, kind: ConsentKind, version: str) -> tuple[Consent, bool]:
    """Record agreement to one version of one document from the caller's device.

    Agreeing again to what is already in force returns the existing grant (``False``):
    a retried request must not pile up grants.
    """
    with ports.db.transaction() as session:
        now = ports.clock.now()
        current = current_documents(session, now)[kind]
        doc = session.execute(
            select(ConsentDocument).where(ConsentDocument.kind == kind, ConsentDocument.version == version)
        ).scalar_one_or_none()
        params = {"kind": kind.value, "version": version, "current_version": current.version}
        if doc is None:
            raise DomainError(ConsentErrors.VERSION_UNKNOWN, params=params)
        if doc.id != current.id:
            raise DomainError(ConsentErrors.VERSION_NOT_CURRENT, params=params)
        existing = standings(session, auth.borrower_id, now=now)[kind].grant
        if existing is not None:
            return existing, False
        consent = Consent(
            borrower_id=auth.borrower_id, document_id=doc.id, kind=kind, version=doc.version,
            device_id=auth.device_id, granted_at=now,
        )
        session.add(consent)
        session.flush()
        ports.audit.record(
            session, actor=auth.actor, action="consent.granted", subject=f"borrower:{auth.borrower_id}",
            details={"consent_id": consent.id, "kind": kind.value, "version": doc.version,
                     "device_id": auth.device_id, "body_sha256": doc.body_sha256},
        )
        return consent, True


def revoke(ports: Platform, auth: AuthContext, kind: str) -> list[Consent]:
    """Withdraw consent to a document (every live grant of it, whatever its version)."""
    consent_kind = parse_kind(kind)
    with ports.db.transaction() as session:
        now = ports.clock.now()
        live = [g for g in grants_of(session, auth.borrower_id) if g.kind == consent_kind and g.revoked_at is None]
        if not live:
            raise DomainError(ConsentErrors.NOT_GRANTED, params={"kind": consent_kind.value})
        for consent in live:
            consent.revoked_at = now
        ports.audit.record(
            session, actor=auth.actor, action="consent.revoked", subject=f"borrower:{auth.borrower_id}",
            details={"kind": consent_kind.value, "consent_ids": [c.id for c in live], "device_id": auth.device_id},
        )
        return live


@dataclass(frozen=True)
class ConsentOverview:
    standings: dict[ConsentKind, Standing]
    history: list[Consent]


def overview(ports: Platform, borrower_id: int) -> ConsentOverview:
    with ports.db.transaction() as session:
        now = ports.clock.now()
        return ConsentOverview(standings(session, borrower_id, now=now), grants_of(session, borrower_id))


@dataclass(frozen=True)
class DocumentListing:
    documents: list[ConsentDocument]
    current_ids: set[int]


def list_documents(ports: Platform) -> DocumentListing:
    with ports.db.transaction() as session:
        current = current_documents(session, ports.clock.now())
        return DocumentListing(all_documents(session), {doc.id for doc in current.values()})


def get_document(ports: Platform, kind: str, version: str) -> tuple[ConsentDocument, bool]:
    """One version of a document with its text, and whether it is the version in effect."""
    with ports.db.transaction() as session:
        now = ports.clock.now()
        doc = find_document(session, kind, version, now=now)
        return doc, current_documents(session, now).get(doc.kind) is doc
