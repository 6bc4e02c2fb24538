"""Real-name verification (实名认证) use cases: identity (name + ID + carrier check), then face.

Each step runs in two short transactions around the provider call rather than one long
one: holding a transaction (on SQLite, the database's single write lock) across a
carrier call of up to ``provider_timeout_seconds`` would stall every other writer.

1. *Open*: lock the borrower row, check the state, the daily limit and the consents,
   validate what was typed, and write the ``KycAttempt`` as ``pending`` (so parallel
   requests count against the limit). What is typed is checked first and a typo (the ID
   number's checksum or birth date, the name's characters) or an age outside the policy is
   refused without an attempt: nobody was asked, so nothing is used up. Any other refusal
   here (the ID number on another account) commits the attempt with its code.
2. Call the provider, outside any transaction.
3. *Close*: write the attempt's outcome and, on success, the verified identity.

A refusal is returned out of the transaction and raised after the commit, so the
attempt row and its audit entry survive. Audit details never hold personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date, local_display, start_of_business_day
from miaodai.core.errors import DomainError, ErrorSpec
from miaodai.core.masking import mask_id_number, mask_name
from miaodai.core.providers import ProviderTimeout
from miaodai.identity.consent_service import BASIC_CONSENTS, CARRIER_CHECK_CONSENTS, require_consents, standings
from miaodai.identity.kyc_errors import (
    AGE_REJECTIONS,
    CARRIER_FAILURES,
    FACE_FAILURES,
    ID_REJECTIONS,
    NAME_REJECTIONS,
    KycErrors,
)
from miaodai.identity.models import (
    ID_NUMBER_INDEX,
    KYC_ID_NUMBER_FIELD,
    KYC_NAME_FIELD,
    PHONE_FIELD,
    Borrower,
    IdentityFlag,
    KycAttempt,
    KycAttemptKind,
    KycIdentity,
    KycStatus,
)
from miaodai.identity.ports import IdentityPorts
from miaodai.identity.read_models import name_index
from miaodai.identity.resident_id import (
    AgeNotEligible,
    InvalidName,
    InvalidResidentId,
    ResidentId,
    check_age,
    normalize_name,
    parse_resident_id,
)
from miaodai.identity.sessions import AuthContext

log = structlog.get_logger(__name__)
FLAG_ID_ON_OTHER_ACCOUNT = "id_number_on_other_account"
OUTCOME_PENDING = "pending"
OUTCOME_PASSED = "passed"
# A provider that does not answer, or fails, is not the borrower's doing: it does not use up an attempt.
NOT_COUNTED = (KycErrors.CARRIER_TIMEOUT.code, KycErrors.FACE_TIMEOUT.code, KycErrors.PROVIDER_UNAVAILABLE.code)


@dataclass(frozen=True)
class Refusal:
    spec: ErrorSpec
    params: dict[str, Any]


@dataclass(frozen=True)
class _OpenIdentity:
    attempt_id: int
    name: str
    resident_id: ResidentId
    phone_e164: str


# --- shared steps ---------------------------------------------------------------------------------

def _locked_borrower(session: Session, borrower_id: int) -> Borrower:
    # FOR UPDATE serialises one borrower's parallel submissions on PostgreSQL; SQLite
    # transactions already begin IMMEDIATE and so run one at a time.
    return session.execute(select(Borrower).where(Borrower.id == borrower_id).with_for_update()).scalar_one()


def _limit(ports: IdentityPorts, kind: KycAttemptKind) -> int:
    settings = ports.settings
    if kind is KycAttemptKind.IDENTITY:
        return settings.kyc_max_identity_attempts_per_day
    return settings.kyc_max_face_attempts_per_day


def attempts_used(session: Session, borrower_id: int, kind: KycAttemptKind, now: datetime) -> int:
    """Attempts of this business day (Asia/Shanghai) that count against the daily limit."""
    since = start_of_business_day(business_date(now))
    stmt = select(func.count()).select_from(KycAttempt).where(
        KycAttempt.borrower_id == borrower_id, KycAttempt.kind == kind, KycAttempt.created_at >= since,
        KycAttempt.outcome.not_in(NOT_COUNTED),
    )
    return session.execute(stmt).scalar_one()


def _ensure_attempts_left(ports: IdentityPorts, session: Session, borrower_id: int, kind: KycAttemptKind) -> None:
    now = ports.clock.now()
    limit = _limit(ports, kind)
    if attempts_used(session, borrower_id, kind, now) < limit:
        return
    reset = start_of_business_day(business_date(now) + timedelta(days=1))
    wait = max(int((reset - now).total_seconds()), 1)
    identity = kind is KycAttemptKind.IDENTITY
    spec = KycErrors.IDENTITY_ATTEMPTS_EXHAUSTED if identity else KycErrors.FACE_ATTEMPTS_EXHAUSTED
    raise DomainError(
        spec, params={"limit": limit, "retry_at": local_display(reset), "retry_after_seconds": wait},
        headers={"Retry-After": str(wait)},
    )


def _new_attempt(session: Session, borrower_id: int, kind: KycAttemptKind, now: datetime) -> KycAttempt:
    attempt = KycAttempt(borrower_id=borrower_id, kind=kind, outcome=OUTCOME_PENDING, created_at=now)
    session.add(attempt)
    session.flush()
    return attempt


def _refuse(
    ports: IdentityPorts, session: Session, auth: AuthContext, attempt: KycAttempt, refusal: Refusal
) -> DomainError:
    """Record the refused attempt and its audit entry; the caller raises after commit."""
    attempt.outcome = refusal.spec.code
    session.flush()
    used = attempts_used(session, auth.borrower_id, attempt.kind, ports.clock.now())
    ports.audit.record(
        session, actor=auth.actor, action=f"kyc.{attempt.kind.value}_refused", subject=f"borrower:{auth.borrower_id}",
        details={"attempt_id": attempt.id, "outcome": refusal.spec.code},
    )
    remaining = max(_limit(ports, attempt.kind) - used, 0)
    return DomainError(refusal.spec, params={**refusal.params, "attempts_remaining": remaining})


def _close_refused(ports: IdentityPorts, auth: AuthContext, attempt_id: int, refusal: Refusal) -> DomainError:
    with ports.db.transaction() as session:
        attempt = session.execute(select(KycAttempt).where(KycAttempt.id == attempt_id)).scalar_one()
        return _refuse(ports, session, auth, attempt, refusal)


def _provider_failed(
    ports: IdentityPorts, auth: AuthContext, attempt_id: int, party: str, exc: Exception
) -> DomainError:
    """A real adapter that errors (bad gateway, malformed answer...): close the attempt, do not
    count it, and tell the borrower to retry, rather than leave it pending behind a 500."""
    log.error("kyc_provider_error", party=party, error=type(exc).__name__, attempt_id=attempt_id)
    return _close_refused(ports, auth, attempt_id, Refusal(KycErrors.PROVIDER_UNAVAILABLE, {}))


# --- identity: name + ID number + carrier check ---------------------------------------------------

def check_claim(ports: IdentityPorts, name: str, id_number: str, today: date) -> tuple[str, ResidentId] | Refusal:
    """Validate the typed name and ID number and apply the age policy (no I/O)."""
    settings = ports.settings
    try:
        clean_name = normalize_name(name)
        resident_id = parse_resident_id(id_number, today=today)
        check_age(resident_id.birth_date, today, min_age=settings.kyc_min_age, max_age=settings.kyc_max_age)
    except InvalidName as exc:
        return Refusal(NAME_REJECTIONS[exc.rejection], {})
    except InvalidResidentId as exc:
        return Refusal(ID_REJECTIONS[exc.rejection], {})
    except AgeNotEligible as exc:
        params: dict[str, Any] = {"min_age": settings.kyc_min_age, "max_age": settings.kyc_max_age}
        if exc.eligible_on is not None:
            params["eligible_on"] = exc.eligible_on.isoformat()
        return Refusal(AGE_REJECTIONS[exc.rejection], params)
    return clean_name, resident_id


def _owner_of(ports: IdentityPorts, session: Session, id_number: str) -> int | None:
    bidx = ports.vault.blind_index(id_number, ID_NUMBER_INDEX)
    return session.execute(
        select(KycIdentity.borrower_id).where(KycIdentity.id_number_bidx == bidx)
    ).scalar_one_or_none()


def _refuse_duplicate(
    ports: IdentityPorts, session: Session, auth: AuthContext, attempt: KycAttempt, owner_id: int
) -> DomainError:
    """The ID number is verified on another account: refuse, and flag it for the risk team."""
    flag = IdentityFlag(
        borrower_id=auth.borrower_id, kind=FLAG_ID_ON_OTHER_ACCOUNT, related_borrower_id=owner_id,
        created_at=ports.clock.now(),
    )
    session.add(flag)
    session.flush()
    ports.audit.record(
        session, actor=auth.actor, action="kyc.duplicate_id_flagged", subject=f"borrower:{auth.borrower_id}",
        details={"flag_id": flag.id, "attempt_id": attempt.id, "related_borrower_id": owner_id},
    )
    return _refuse(ports, session, auth, attempt, Refusal(KycErrors.ID_ON_OTHER_ACCOUNT, {}))


def _open_identity(ports: IdentityPorts, auth: AuthContext, name: str, id_number: str) -> _OpenIdentity:
    with ports.db.transaction() as session:
        now = ports.clock.now()
        borrower = _locked_borrower(session, auth.borrower_id)
        if borrower.kyc_status is not KycStatus.NONE:
            raise DomainError(KycErrors.ALREADY_VERIFIED)
        _ensure_attempts_left(ports, session, borrower.id, KycAttemptKind.IDENTITY)
        require_consents(session, borrower.id, CARRIER_CHECK_CONSENTS, now=now)
        claim = check_claim(ports, name, id_number, business_date(now))
        if isinstance(claim, Refusal):  # a typo (checksum, birth date) or an age, seen before anyone is asked:
            left = _limit(ports, KycAttemptKind.IDENTITY) - attempts_used(  # not an attempt; nothing is written
                session, borrower.id, KycAttemptKind.IDENTITY, now)
            raise DomainError(claim.spec, params={**claim.params, "attempts_remaining": left})
        attempt = _new_attempt(session, borrower.id, KycAttemptKind.IDENTITY, now)
        opened: _OpenIdentity | DomainError
        if (owner := _owner_of(ports, session, claim[1].number)) is not None and owner != borrower.id:
            opened = _refuse_duplicate(ports, session, auth, attempt, owner)
        else:
            phone = ports.vault.decrypt(borrower.phone_enc, PHONE_FIELD)
            opened = _OpenIdentity(attempt.id, claim[0], claim[1], phone)
    if isinstance(opened, DomainError):
        raise opened  # after the commit: the refused attempt is on record
    return opened


def _close_identity(ports: IdentityPorts, auth: AuthContext, opened: _OpenIdentity, reference: str) -> None:
    vault, rid = ports.vault, opened.resident_id
    error: DomainError | None = None
    with ports.db.transaction() as session:
        now = ports.clock.now()
        borrower = _locked_borrower(session, auth.borrower_id)
        attempt = session.execute(select(KycAttempt).where(KycAttempt.id == opened.attempt_id)).scalar_one()
        identity = KycIdentity(
            borrower_id=borrower.id, name_enc=vault.encrypt(opened.name, KYC_NAME_FIELD),
            id_number_enc=vault.encrypt(rid.number, KYC_ID_NUMBER_FIELD),
            id_number_bidx=vault.blind_index(rid.number, ID_NUMBER_INDEX), name_bidx=name_index(vault, opened.name),
            birth_date=rid.birth_date,
            gender=rid.gender.value, region_code=rid.region_code, carrier_verified_at=now,
        )
        try:
            # The unique blind index is the last word: a parallel submission of the same
            # ID number on another account that passed step 1 fails here, not twice.
            with session.begin_nested():
                session.add(identity)
        except IntegrityError:
            owner = _owner_of(ports, session, rid.number)
            if owner is not None and owner != borrower.id:
                error = _refuse_duplicate(ports, session, auth, attempt, owner)
            else:
                error = _refuse(ports, session, auth, attempt, Refusal(KycErrors.ALREADY_VERIFIED, {}))
        else:
            attempt.outcome = OUTCOME_PASSED
            borrower.kyc_status = KycStatus.CARRIER_VERIFIED
            ports.audit.record(
                session, actor=auth.actor, action="kyc.identity_verified", subject=f"borrower:{borrower.id}",
                details={"attempt_id": attempt.id, "kyc_identity_id": identity.id, "carrier_reference": reference},
            )
    if error is not None:
        raise error


def submit_identity(ports: IdentityPorts, auth: AuthContext, name: str, id_number: str) -> None:
    """Verify name + ID number, then the carrier three-element check with the login phone."""
    opened = _open_identity(ports, auth, name, id_number)
    try:
        result = ports.carrier.verify(opened.name, opened.resident_id.number, opened.phone_e164)
    except ProviderTimeout:
        raise _close_refused(ports, auth, opened.attempt_id, Refusal(KycErrors.CARRIER_TIMEOUT, {})) from None
    except Exception as exc:
        raise _provider_failed(ports, auth, opened.attempt_id, "carrier", exc) from None
    failure = CARRIER_FAILURES.get(result.outcome)
    if failure is not None:
        raise _close_refused(ports, auth, opened.attempt_id, Refusal(failure, {}))
    _close_identity(ports, auth, opened, result.reference)


# --- face liveness and match ----------------------------------------------------------------------

def _open_face(ports: IdentityPorts, auth: AuthContext) -> tuple[int, str]:
    """Step 1 of the face check: returns the attempt id and the ID number to match against."""
    with ports.db.transaction() as session:
        now = ports.clock.now()
        borrower = _locked_borrower(session, auth.borrower_id)
        if borrower.kyc_status is KycStatus.NONE:
            raise DomainError(KycErrors.FACE_BEFORE_IDENTITY)
        if borrower.kyc_status is KycStatus.VERIFIED:
            raise DomainError(KycErrors.ALREADY_VERIFIED)
        _ensure_attempts_left(ports, session, borrower.id, KycAttemptKind.FACE)
        require_consents(session, borrower.id, BASIC_CONSENTS, now=now)
        identity = _identity_of(session, borrower.id)
        attempt = _new_attempt(session, borrower.id, KycAttemptKind.FACE, now)
        return attempt.id, ports.vault.decrypt(identity.id_number_enc, KYC_ID_NUMBER_FIELD)


def _close_face(ports: IdentityPorts, auth: AuthContext, attempt_id: int, reference: str) -> None:
    with ports.db.transaction() as session:
        now = ports.clock.now()
        borrower = _locked_borrower(session, auth.borrower_id)
        attempt = session.execute(select(KycAttempt).where(KycAttempt.id == attempt_id)).scalar_one()
        identity = _identity_of(session, borrower.id)
        attempt.outcome = OUTCOME_PASSED
        identity.face_verified_at = now
        borrower.kyc_status = KycStatus.VERIFIED
        ports.audit.record(
            session, actor=auth.actor, action="kyc.face_verified", subject=f"borrower:{borrower.id}",
            details={"attempt_id": attempt.id, "face_reference": reference},
        )


def submit_face(ports: IdentityPorts, auth: AuthContext, liveness_token: str) -> None:
    """Check the face SDK's liveness session against the verified ID number."""
    attempt_id, id_number = _open_face(ports, auth)
    try:
        result = ports.face.check(liveness_token, id_number)
    except ProviderTimeout:
        raise _close_refused(ports, auth, attempt_id, Refusal(KycErrors.FACE_TIMEOUT, {})) from None
    except Exception as exc:
        raise _provider_failed(ports, auth, attempt_id, "face", exc) from None
    failure = FACE_FAILURES.get(result.outcome)
    if failure is not None:
        raise _close_refused(ports, auth, attempt_id, Refusal(failure, {}))
    _close_face(ports, auth, attempt_id, result.reference)


# --- where a borrower stands ----------------------------------------------------------------------

def _identity_of(session: Session, borrower_id: int) -> KycIdentity:
    return session.execute(select(KycIdentity).where(KycIdentity.borrower_id == borrower_id)).scalar_one()


@dataclass(frozen=True)
class AttemptBudget:
    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


@dataclass(frozen=True)
class KycOverview:
    """What the borrower sees: status, masked identity, today's attempts and the next step."""

    status: KycStatus
    masked_name: str | None
    masked_id_number: str | None
    carrier_verified_at: datetime | None
    face_verified_at: datetime | None
    attempts: dict[KycAttemptKind, AttemptBudget]
    missing_consents: list[str]

    @property
    def next_step(self) -> str:
        if self.status is KycStatus.VERIFIED:
            return "done"
        if self.status is KycStatus.CARRIER_VERIFIED:
            return "face"
        return "grant_consents" if self.missing_consents else "identity"


def overview(ports: IdentityPorts, borrower_id: int) -> KycOverview:
    with ports.db.transaction() as session:
        now = ports.clock.now()
        borrower = session.execute(select(Borrower).where(Borrower.id == borrower_id)).scalar_one()
        identity = session.execute(
            select(KycIdentity).where(KycIdentity.borrower_id == borrower_id)
        ).scalar_one_or_none()
        budgets = {
            kind: AttemptBudget(attempts_used(session, borrower_id, kind, now), _limit(ports, kind))
            for kind in KycAttemptKind
        }
        standing = standings(session, borrower_id, now=now)
        missing = [k.value for k in CARRIER_CHECK_CONSENTS if k in standing and not standing[k].in_force]
    name = id_number = None
    if identity is not None:
        name = mask_name(ports.vault.decrypt(identity.name_enc, KYC_NAME_FIELD))
        id_number = mask_id_number(ports.vault.decrypt(identity.id_number_enc, KYC_ID_NUMBER_FIELD))
    return KycOverview(
        borrower.kyc_status, name, id_number, identity.carrier_verified_at if identity else None,
        identity.face_verified_at if identity else None, budgets, missing,
    )
