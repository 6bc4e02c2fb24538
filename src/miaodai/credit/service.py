"""Credit applications: a decision in the request that asks for it.

``apply`` runs in three steps, and holds no database connection while outside parties answer:

1. read (two statements in autocommit mode, no transaction around them): the borrower's consents, and
   one row with everything else — the verified identity, the product's terms, the active policy's
   versions, what our own book knows (lines, loans, lateness, last decline), the block lists, how many
   people applied from this device — each domain's part from its own read model (``identity.read_models``,
   ``loans.read_models``; credit's own here). The same row takes the application's slot of the day (an
   atomic counter): a burst of applications asks the bureau no more often than the cap allows, and a
   refusal from the applicant's own standing gives the slot back without asking anyone outside;
2. outside data, concurrently with one deadline: the bureau report and, under the carrier-data
   consent, the phone's tenure. A timeout or an error is recorded, never guessed around;
3. decide (pure: features, rules, champion score, challenger score in shadow, limit and price), then
   store (one transaction, under the borrower's row lock, re-checking for an open line): the
   application with its write-once decision and encrypted snapshot, the credit line when approved, a
   review case when referred, and the audit entry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog
from sqlalchemy import Date, and_, bindparam, distinct, exists, func, insert, select
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date
from miaodai.core.db import next_id, selects_may_write, table_of
from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.core.providers import ProviderError, ProviderTimeout
from miaodai.core.settings import Settings
from miaodai.credit.bureau import BureauReport
from miaodai.credit.errors import CreditErrors
from miaodai.credit.features import (
    ApplicationInput,
    Education,
    Features,
    InternalHistory,
    LoanPurpose,
    Occupation,
    build_features,
)
from miaodai.credit.models import (
    SNAPSHOT_FIELD,
    ApplicationStatus,
    BlockKind,
    BlockListEntry,
    CreditApplication,
    Decision,
    ReviewCase,
    ReviewKind,
)
from miaodai.credit.ports import CreditPorts
from miaodai.credit.pricing import offer
from miaodai.credit.reasons import explain, score_reason_codes
from miaodai.credit.registry import POLICY_COLUMNS, ActivePolicy, default_ruleset
from miaodai.credit.rules import BureauStatus, Facts, Finding, Outcome, Ruleset, evaluate, worst
from miaodai.identity import counters
from miaodai.identity import read_models as identity_read
from miaodai.identity.consent_service import BASIC_CONSENTS, in_force, require_consents
from miaodai.identity.models import (
    KYC_ID_NUMBER_FIELD,
    KYC_NAME_FIELD,
    PHONE_FIELD,
    ConsentKind,
    KycStatus,
)
from miaodai.identity.resident_id import age_on
from miaodai.identity.sessions import AuthContext
from miaodai.loans import read_models as loans_read
from miaodai.loans.errors import LoanErrors
from miaodai.loans.line_service import insert_line
from miaodai.loans.read_models import LoanHistory

log = structlog.get_logger(__name__)

MAX_MONTHLY_INCOME_FEN = 10_000_000_00  # 10 million yuan a month: above it, a typo
APPLICATION_CONSENTS = (*BASIC_CONSENTS, ConsentKind.CREDIT_BUREAU_QUERY)
_OUTSIDE = ThreadPoolExecutor(max_workers=16, thread_name_prefix="credit-outside")


@dataclass(frozen=True)
class ApplicationRequest:
    monthly_income_fen: int
    occupation: Occupation
    education: Education
    loan_purpose: LoanPurpose
    product_code: str


@dataclass
class _Known:
    """What step 1 read, for steps 2 and 3."""

    borrower_id: int
    product: ProductTerms
    product_id: int
    name: str
    id_number: str
    phone: str
    age: int
    carrier_consent: bool
    facts: dict[str, Any]
    internal: InternalHistory
    device_bidx: str | None
    policy: ActivePolicy


@dataclass
class Outside:
    report: BureauReport | None = None
    bureau_status: BureauStatus = BureauStatus.NOT_QUERIED
    phone_tenure_months: int | None = None
    carrier_status: str = "not_queried"
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    findings: list[Finding]
    reasons: list[dict[str, Any]]
    score_reasons: list[dict[str, Any]]
    score: float | None
    pd: float | None
    grade: str | None
    challenger: tuple[str, float, float] | None  # model id, score, pd
    limit_fen: int | None
    rate: Decimal | None
    reapply_on: date | None
    recommendation: str  # approve | decline: what a reviewer is told the model suggests


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def apply(ports: CreditPorts, auth: AuthContext, request: ApplicationRequest) -> Decided:
    started = time.perf_counter()
    if not 0 < request.monthly_income_fen <= MAX_MONTHLY_INCOME_FEN:
        raise DomainError(CreditErrors.INCOME_INVALID, params={"max_yuan": MAX_MONTHLY_INCOME_FEN // 100})
    application = ApplicationInput(request.monthly_income_fen, request.occupation, request.education,
                                   request.loan_purpose)
    now = ports.clock.now()
    today = business_date(now)
    with ports.db.autocommit() as session:  # reads only: no BEGIN/COMMIT round trips
        known = _read(ports, session, auth, request.product_code, now=now, today=today)
    timings = {"read_ms": _ms(started)}
    outside = fetch_outside(ports, known.id_number, known.name, known.phone, carrier=known.carrier_consent)
    timings.update(outside.timings)
    t = time.perf_counter()
    features = build_features(application=application, age=known.age, report=outside.report,
                              phone_tenure_months=outside.phone_tenure_months, internal=known.internal)
    facts = _facts(known, outside, today)
    outcome = decide(known.policy, features, facts, product=known.product,
                     monthly_income_fen=application.monthly_income_fen)
    timings["decide_ms"] = _ms(t)
    t = time.perf_counter()
    with ports.db.transaction() as session:
        return _store(ports, session, auth, known, application, features, facts, outside, outcome, timings,
                      now=now, today=today, started=started, store_started=t)


class ProductTerms(Protocol):
    """What a credit decision needs of the product: its amounts and its rate range (a ``ProductSpec`` has them)."""

    @property
    def min_amount_fen(self) -> int: ...
    @property
    def max_amount_fen(self) -> int: ...
    @property
    def min_annual_rate(self) -> Decimal: ...
    @property
    def max_annual_rate(self) -> Decimal: ...


@dataclass(frozen=True)
class _Terms:
    min_amount_fen: int
    max_amount_fen: int
    min_annual_rate: Decimal
    max_annual_rate: Decimal


@dataclass(frozen=True)
class BookSignals:
    """What our own records hold around an application, read in one round trip."""

    active_lines: int  # lines not closed
    existing_limit_fen: int  # their limits
    blocked_on: tuple[str, ...]  # which block lists hold the ID number, phone or device
    last_decline_on: date | None
    device_applicants: int  # distinct borrowers who applied from this device in the window, this one included


# credit_applications and the block list under short names in the applicant's row: the hot statement must stay
# within psycopg's query cache (tests/unit/test_hot_statements.py).
_A = table_of(CreditApplication).alias("a")
_B = table_of(BlockListEntry).alias("b")


def _book_columns(id_number_bidx: Any, phone_bidx: Any, device_bidx: Any) -> tuple[Any, ...]:
    """``BookSignals`` as labelled scalar subqueries, for bind parameters or for columns of an enclosing row
    (bind parameters ``borrower_id`` and ``since``): the open lines are loans' read model, the rest credit's."""
    borrower: Any = bindparam("borrower_id")

    def listed(kind: BlockKind, value: Any) -> Any:
        return exists().where(_B.c.kind == kind, _B.c.value_bidx == value).label(f"blocked_{kind}")

    return (
        *loans_read.open_line_columns(borrower),
        select(func.max(_A.c.application_date).label("n"))
        .where(_A.c.borrower_id == borrower, _A.c.status == ApplicationStatus.DECLINED)
        .scalar_subquery().label("last_decline_on"),
        select(func.count(distinct(_A.c.borrower_id)).label("n"))  # no device: NULL matches nothing
        .where(_A.c.device_bidx == device_bidx, _A.c.application_date >= bindparam("since", type_=Date()),
               _A.c.borrower_id != borrower)
        .scalar_subquery().label("others_on_device"),
        listed(BlockKind.ID_NUMBER, id_number_bidx), listed(BlockKind.PHONE, phone_bidx),
        listed(BlockKind.DEVICE, device_bidx),
    )


def _book_from(row: Any) -> BookSignals:
    m = row._mapping
    return BookSignals(
        active_lines=m["active_lines"], existing_limit_fen=int(m["limits"]),
        blocked_on=tuple(sorted(kind for kind in BlockKind if m[f"blocked_{kind}"])),
        last_decline_on=m["last_decline_on"], device_applicants=m["others_on_device"] + 1,
    )


_BOOK = select(*_book_columns(bindparam("id_number_bidx"), bindparam("phone_bidx"), bindparam("device_bidx")))


def book_signals(
    session: Session, *, borrower_id: int, id_number_bidx: str, phone_bidx: str, device_bidx: str | None, since: date,
) -> BookSignals:
    return _book_from(session.connection().execute(_BOOK, {
        "borrower_id": borrower_id, "id_number_bidx": id_number_bidx, "phone_bidx": phone_bidx,
        "device_bidx": device_bidx, "since": since}).one())


def _internal(history: LoanHistory, book: BookSignals) -> InternalHistory:
    return InternalHistory(
        active_lines=book.active_lines, existing_limit_fen=book.existing_limit_fen,
        outstanding_principal_fen=history.outstanding_principal_fen,
        monthly_repayment_fen=history.monthly_repayment_fen, loans_paid_off=history.loans_paid_off,
        max_overdue_days=history.max_overdue_days,
    )


def internal_history(session: Session, borrower_id: int, *, today: date, book: BookSignals) -> InternalHistory:
    """What our own book says: open lines and their limits (from ``book``), open loans, paid-off loans, lateness."""
    return _internal(loans_read.loan_history(session, borrower_id, today=today), book)


# The applicant's own standing that refuses an application before any outside party is asked: the
# application being reviewed, and how many applications were stored today and in the last 7 days (the cap).
_WEEK_DAYS = 7


def _applied_since(since: str) -> Any:
    """How many applications the borrower (``borrower_id``) has stored on or after the date bound to ``since``:
    what the cap counts, read before the decision and checked again in its INSERT."""
    return select(func.count().label("n")).where(_A.c.borrower_id == bindparam("borrower_id"),
                                      _A.c.application_date >= bindparam(since, type_=Date())).scalar_subquery()


def _standing_columns() -> tuple[Any, ...]:
    """Labelled scalar subqueries (bind parameters ``borrower_id``, ``today`` and ``week_since``)."""
    mine = _A.c.borrower_id == bindparam("borrower_id")
    return (
        select(func.max(_A.c.id).label("n")).where(mine, _A.c.status == ApplicationStatus.IN_REVIEW)
        .scalar_subquery().label("in_review"),
        _applied_since("today").label("applied_day"),
        _applied_since("week_since").label("applied_week"),
    )


# The hot statement, built once (constructing a statement costs about as much as running it). Everything
# step 1 needs but the consents comes back on the applicant's row, in one round trip, each domain's part from
# its own read model: identity's (the borrower, the verified identity, the device), loans' (the product's terms,
# the open lines, the loan history) and credit's (the active policy's versions, the block lists, the
# applications: last decline, the device's applicants, the one in review, the counts the cap counts).
_APPLICANT = (
    identity_read.applicant_row(
        *loans_read.PRODUCT_COLUMNS, *POLICY_COLUMNS,
        *_book_columns(identity_read.ID_NUMBER_BIDX, identity_read.PHONE_BIDX, identity_read.DEVICE_BIDX),
        *loans_read.history_columns(bindparam("borrower_id")), *_standing_columns())
    .outerjoin(loans_read.PRODUCT, loans_read.ACTIVE_PRODUCT)
)

# The slot: before any outside party is asked, the application takes one of the borrower's applications for
# the day on an atomic counter (identity's ``rate_counters``: an upsert counts concurrent requests one after
# the other), and goes on only while the slots taken today, its own included, stay within the caps. A burst
# of applications that all read the same standing (nothing stored yet) thus asks the bureau no more often
# than the cap allows; the stored applications stay what the cap counts, checked again by the INSERT. A
# refusal before the outside calls gives its slot back; once the bureau was asked, the slot stays spent.
# On PostgreSQL the slot is taken by the applicant's row itself (a data-modifying CTE: no round trip more);
# SQLite sends it as a statement of its own.
_SLOT_KIND = counters.Kind.CREDIT_APPLICATION_DAY
_SLOT = {dialect: counters.one_bump(dialect) for dialect in ("postgresql", "sqlite")}
_APPLICANT_TAKING_SLOT = _APPLICANT.add_columns(
    select(_SLOT["postgresql"].cte("slot").c.n).scalar_subquery().label("slot"))


def _device_window(policy: ActivePolicy | None) -> int:
    """The device-sharing rule's window in days (the packaged ruleset's before any policy was read)."""
    ruleset = policy.ruleset if policy is not None else default_ruleset()
    return int(ruleset.param("device_sharing", "window_days", 30))


def _read(
    ports: CreditPorts, session: Session, auth: AuthContext, product_code: str, *, now: datetime, today: date,
) -> _Known:
    # Column reads run on the connection: the session's ORM execution path costs CPU and adds nothing here.
    # The device window is the active policy's, which this same statement reads: count with the window of
    # the policy this process saw last, and count again below in the rare case the policy changed it.
    guessed_window = _device_window(ports.credit_policy.latest)
    connection, slot_key = session.connection(), str(auth.borrower_id)
    params = {
        "borrower_id": auth.borrower_id, "device_id": auth.device_id, "code": product_code,
        "since": today - timedelta(days=guessed_window), "week_since": _week_since(today),
        **loans_read.history_params(today), **counters.one_bump_params(_SLOT_KIND, slot_key, now)}
    if selects_may_write(ports.db.dialect):
        who = connection.execute(_APPLICANT_TAKING_SLOT, params).first()
        slot = who.slot if who is not None else 0
    else:
        slot = connection.execute(_SLOT[ports.db.dialect], params).scalar_one()
        who = connection.execute(_APPLICANT, params).first()
    try:
        return _known(ports, session, auth, product_code, who, slot, guessed_window, now=now, today=today)
    except DomainError:  # refused before anyone outside was asked: the slot goes back
        connection.execute(_SLOT[ports.db.dialect],
                           counters.one_bump_params(_SLOT_KIND, slot_key, now, delta=-1)).scalar_one()
        raise


def _known(
    ports: CreditPorts, session: Session, auth: AuthContext, product_code: str, who: Any, slot: int,
    guessed_window: int, *, now: datetime, today: date,
) -> _Known:
    if who is None or who.kyc_status is not KycStatus.VERIFIED:
        raise DomainError(CreditErrors.IDENTITY_REQUIRED)
    consents = in_force(session, auth.borrower_id, now=now)
    if not all(consents.get(k, True) for k in APPLICATION_CONSENTS):
        require_consents(session, auth.borrower_id, APPLICATION_CONSENTS, now=now)  # raises, naming each one
    carrier = consents.get(ConsentKind.CARRIER_DATA, False)
    if who.product_id is None:
        raise DomainError(LoanErrors.PRODUCT_NOT_FOUND, params={"product_code": product_code[:32]})
    policy = ports.credit_policy.from_row(session, who)
    window = _device_window(policy)
    book = _book_from(who) if window == guessed_window else book_signals(
        session, borrower_id=auth.borrower_id, id_number_bidx=who.id_number_bidx, phone_bidx=who.phone_bidx,
        device_bidx=who.device_bidx, since=today - timedelta(days=window))
    # Today's applications: those stored, or the slots taken before this one's if more (some still deciding).
    applied_day = max(who.applied_day, slot - 1)
    refusal = standing_refusal(
        policy.ruleset, ports.settings, today=today, active_lines=book.active_lines,
        last_decline_on=book.last_decline_on, in_review=who.in_review, applied_day=applied_day,
        applied_week=who.applied_week - who.applied_day + applied_day,
        dates=lambda: _recent_dates(session, auth.borrower_id, today))
    if refusal is not None:
        log.info("credit_application_refused", code=refusal.code, borrower_id=auth.borrower_id)
        raise refusal
    vault = ports.vault
    return _Known(
        borrower_id=auth.borrower_id, product_id=who.product_id,
        product=_Terms(who.min_amount_fen, who.max_amount_fen, who.min_annual_rate, who.max_annual_rate),
        name=vault.decrypt(who.name_enc, KYC_NAME_FIELD),
        id_number=vault.decrypt(who.id_number_enc, KYC_ID_NUMBER_FIELD),
        phone=vault.decrypt(who.phone_enc, PHONE_FIELD),
        age=age_on(who.birth_date, today), carrier_consent=carrier,
        facts={
            "identity_verified": True,
            "missing_consents": (),
            "blocked_on": book.blocked_on,
            "active_lines": book.active_lines,
            "last_decline_on": book.last_decline_on,
            "device_applicants": book.device_applicants,
        },
        internal=_internal(loans_read.history_from(who), book), device_bidx=who.device_bidx, policy=policy,
    )


def _week_since(today: date) -> date:
    return today - timedelta(days=_WEEK_DAYS - 1)  # today and the six days before it


def _cooling_off_days(ruleset: Ruleset) -> int | None:
    """The cooling-off rule's days when it declines (a ruleset may drop the rule, or only refer)."""
    for name, outcome, params in ruleset.rules:
        if name == "cooling_off" and outcome is Outcome.DECLINE:
            return int(params["days"])
    return None


def standing_refusal(
    ruleset: Ruleset, settings: Settings, *, today: date, active_lines: int, last_decline_on: date | None,
    in_review: int | None, applied_day: int, applied_week: int, dates: Callable[[], list[date]],
) -> DomainError | None:
    """What the applicant's own standing decides before anyone outside is asked, or None to go on.

    An open line: use it. Declined inside the cooling-off period: the date to apply again. An application
    being reviewed: wait for it (no second case in the queue). At the cap of applications per day or per 7
    days: the date the cap allows one again (``dates``: the stored applications' dates of the last 7 days,
    read only when refusing).
    """
    if active_lines:
        return DomainError(CreditErrors.TOO_MANY_LINES)
    if in_review is not None:
        return DomainError(CreditErrors.REVIEW_PENDING, params={"application_id": in_review})
    days = _cooling_off_days(ruleset)
    if days is not None and last_decline_on is not None and today < last_decline_on + timedelta(days=days):
        return DomainError(CreditErrors.COOLING_OFF,
                           params={"reapply_on": (last_decline_on + timedelta(days=days)).isoformat()})
    per_day, per_week = settings.credit_max_applications_per_day, settings.credit_max_applications_per_7_days
    if applied_day < per_day and applied_week < per_week:
        return None
    recent = sorted(dates(), reverse=True)
    reapply_on = today
    if applied_day >= per_day:
        reapply_on = today + timedelta(days=1)
    if len(recent) >= per_week:  # the window must slide past the per_week-th latest application
        reapply_on = max(reapply_on, recent[per_week - 1] + timedelta(days=_WEEK_DAYS))
    count, window = (applied_week, _WEEK_DAYS) if applied_week >= per_week else (applied_day, 1)
    return DomainError(CreditErrors.APPLICATION_LIMIT,
                       params={"count": count, "days": window, "reapply_on": reapply_on.isoformat()})


def _recent_dates(session: Session, borrower_id: int, today: date) -> list[date]:
    return list(session.connection().execute(
        select(_A.c.application_date).where(_A.c.borrower_id == borrower_id,
                                            _A.c.application_date >= _week_since(today))).scalars())


def fetch_outside(ports: CreditPorts, id_number: str, name: str, phone: str, *, carrier: bool) -> Outside:
    """The bureau report and (with consent) carrier data, concurrently, within one deadline.

    The carrier query goes to the pool and the bureau's runs on this thread meanwhile: a second pooled
    thread would only have this one waiting for it, at the cost of two thread hand-offs per application.
    A provider gives up at the deadline itself (``timeout_seconds``; the ``CreditBureau`` Protocol raises
    ``ProviderTimeout``), and the pooled answer is waited for no longer than the deadline.
    """
    outside = Outside()
    started = time.perf_counter()
    deadline = started + ports.settings.provider_timeout_seconds
    carrier_future = _OUTSIDE.submit(ports.carrier_data.phone_tenure_months, phone) if carrier else None
    try:
        outside.report = ports.bureau.report(id_number, name)
        outside.bureau_status = BureauStatus.OK
    except ProviderTimeout:
        outside.bureau_status = BureauStatus.TIMEOUT
    except ProviderError as exc:
        log.warning("bureau_error", code=exc.code)
        outside.bureau_status = BureauStatus.ERROR
    outside.timings["bureau_ms"] = _ms(started)
    if carrier_future is not None:
        try:
            outside.phone_tenure_months = carrier_future.result(timeout=max(0.0, deadline - time.perf_counter()))
            outside.carrier_status = "ok"
        except (FutureTimeout, ProviderTimeout):
            outside.carrier_status = "timeout"
        except ProviderError:
            outside.carrier_status = "error"
        outside.timings["carrier_ms"] = _ms(started)
    return outside


def _facts(known: _Known, outside: Outside, today: date) -> Facts:
    report = outside.report
    return Facts(
        **known.facts,
        bureau_status=outside.bureau_status,
        bureau_current_overdue_fen=report.current_overdue_fen if report else 0,
        bureau_written_off=report.written_off if report else False,
        bureau_fraud_list_hit=report.fraud_list_hit if report else False,
        internet_consumer_credit_fen=(report.internet_consumer_credit_fen if report else 0)
        + known.internal.existing_limit_fen,
        monthly_repayment_fen=(report.monthly_repayment_fen if report else 0) + known.internal.monthly_repayment_fen,
        application_date=today,
    )


def decide(
    policy: ActivePolicy, features: Features, facts: Facts, *, product: ProductTerms, monthly_income_fen: int,
) -> Verdict:
    """Rules, score, decision, limit and price — pure: a stored snapshot replays to the same verdict."""
    ruleset = policy.ruleset
    findings = evaluate(ruleset, features, facts)
    scored = policy.champion.score(features)
    shadow = None
    if policy.challenger is not None:
        challenger = policy.challenger.score(features)
        shadow = (policy.challenger.model_id, challenger.score, challenger.pd)
    grade_policy = ruleset.grades[scored.grade]
    rule_outcome = worst(findings)
    # Without the bureau's answer the score saw no bureau data: the rules alone decide (refer or decline).
    grade_outcome = grade_policy.outcome if facts.bureau_status is BureauStatus.OK else Outcome.PASS
    score_reasons = [{"variable": r.variable, "points": r.points, "best_points": r.best_points,
                      "shortfall": r.shortfall} for r in scored.reasons]
    reapply_on = None
    limit_fen = rate = None
    if facts.bureau_status is BureauStatus.OK and grade_policy.income_multiple > 0:
        offered = offer(
            ruleset, grade=scored.grade, monthly_income_fen=monthly_income_fen,
            existing_monthly_fen=facts.monthly_repayment_fen,
            existing_credit_fen=facts.internet_consumer_credit_fen, product_max_fen=product.max_amount_fen,
            min_rate=product.min_annual_rate, max_rate=product.max_annual_rate,
            # Nothing known about repaying: no bureau history, no loan paid off with us yet.
            thin_file=features.get("bureau_file_age_months") is None and not features.get("internal_loans_paid_off"),
        )
        if offered.limit_fen >= product.min_amount_fen:
            limit_fen, rate = offered.limit_fen, offered.annual_rate  # the offer, or the reviewer's default
    if rule_outcome is Outcome.DECLINE or grade_outcome is Outcome.DECLINE:
        decision = Decision.DECLINED
        reasons = [explain(f.code, dict(f.params)) for f in findings if f.outcome is Outcome.DECLINE]
        if not reasons:
            reasons = [explain("CREDIT_SCORE_TOO_LOW")]
        reasons += [explain(code) for code in score_reason_codes(
            (r["variable"] for r in score_reasons), (r["code"] for r in reasons))]
    elif rule_outcome is Outcome.REFER or grade_outcome is Outcome.REFER:
        decision = Decision.REVIEW
        reasons = [explain(f.code, dict(f.params)) for f in findings if f.outcome is Outcome.REFER]
        if not reasons:
            reasons = [explain("CREDIT_SCORE_REVIEW")]
    elif limit_fen is None:
        decision, reasons = Decision.DECLINED, [explain("CREDIT_INSUFFICIENT_CAPACITY")]
    else:
        decision, reasons = Decision.APPROVED, []
    # What a reviewer is told the automated policy suggests; deciding against it is an override.
    approvable = grade_policy.outcome is Outcome.PASS and limit_fen is not None
    recommendation = "approve" if approvable and rule_outcome is not Outcome.DECLINE else "decline"
    if decision is Decision.DECLINED:
        still_cooling = any(f.code == "CREDIT_COOLING_OFF" for f in findings)
        reapply_on = ruleset.reapply_on(facts.last_decline_on if still_cooling else facts.application_date)
    return Verdict(
        decision=decision, findings=findings, reasons=reasons, score_reasons=score_reasons,
        score=scored.score, pd=scored.pd, grade=scored.grade, challenger=shadow, limit_fen=limit_fen, rate=rate,
        reapply_on=reapply_on, recommendation=recommendation,
    )


def _store(
    ports: CreditPorts, session: Session, auth: AuthContext, known: _Known, application: ApplicationInput,
    features: Features, facts: Facts, outside: Outside, outcome: Verdict, timings: dict[str, float], *,
    now: datetime, today: date, started: float, store_started: float,
) -> Decided:
    # One decision at a time per borrower (the row lock): two racing applications cannot both open a line.
    # The application's id is drawn with the lock, so an approved line can name its application before the
    # application's row exists, and that row goes in whole (no UPDATE for its line afterwards).
    connection = session.connection()
    lines_now, application_id = connection.execute(_LOCK_AND_COUNT_LINES, {"borrower_id": known.borrower_id}).one()
    decision, reasons = outcome.decision, outcome.reasons
    if decision is Decision.APPROVED and lines_now:
        decision, reasons = Decision.DECLINED, [explain("CREDIT_TOO_MANY_LINES", {})]
    status = {Decision.APPROVED: ApplicationStatus.APPROVED, Decision.DECLINED: ApplicationStatus.DECLINED,
              Decision.REVIEW: ApplicationStatus.IN_REVIEW}[decision]
    policy = known.policy
    snapshot = {"application": {"monthly_income_fen": application.monthly_income_fen,
                                "occupation": application.occupation.value, "education": application.education.value,
                                "loan_purpose": application.loan_purpose.value},
                "features": features, "facts": facts.to_json(), "carrier_status": outside.carrier_status}
    values = {
        "borrower_id": known.borrower_id, "product_id": known.product_id, "device_id": auth.device_id,
        "device_bidx": known.device_bidx, "created_at": now, "application_date": today, "decision": decision,
        "ruleset_version": policy.ruleset.version, "ruleset_sha256": policy.ruleset.sha256,
        "model_id": policy.champion.model_id, "model_sha256": policy.champion.sha256,
        "score": _dec(outcome.score, "0.01"), "pd": _dec(outcome.pd, "0.000001"), "grade": outcome.grade,
        "challenger_model_id": outcome.challenger[0] if outcome.challenger else None,
        "challenger_score": _dec(outcome.challenger[1], "0.01") if outcome.challenger else None,
        "challenger_pd": _dec(outcome.challenger[2], "0.000001") if outcome.challenger else None,
        "bureau_status": outside.bureau_status.value,
        "bureau_reference": outside.report.reference if outside.report else None,
        "findings": json.dumps([{"rule": f.rule, "code": f.code, "outcome": f.outcome.value, "params": dict(f.params)}
                                for f in outcome.findings], ensure_ascii=False),
        "reasons": json.dumps(reasons, ensure_ascii=False),
        "score_reasons": json.dumps(outcome.score_reasons),
        "snapshot_enc": ports.vault.encrypt(json.dumps(snapshot, ensure_ascii=False), SNAPSHOT_FIELD),
        "timings": None,  # below, just before the INSERT
        "offered_limit_fen": outcome.limit_fen if decision is not Decision.DECLINED else None,
        "offered_rate": outcome.rate if decision is not Decision.DECLINED else None,
        "offered_expires_on": policy.ruleset.line_expires_on(today) if decision is Decision.APPROVED else None,
        "reapply_on": outcome.reapply_on if decision is Decision.DECLINED else None,
        "status": status, "decided_at": None if decision is Decision.REVIEW else now,
        "credit_line_id": None, "review_outcome": None,
    }
    # The timings go in with the row (no UPDATE afterwards): store_ms is the store step up to the INSERT — the
    # row lock, the open-line re-check, building and encrypting the row — and total_ms runs from the request's
    # start to the same point; the INSERT itself and the commit are not in them.
    timings["store_ms"] = _ms(store_started)
    timings["total_ms"] = _ms(started)
    values["timings"] = json.dumps(timings)
    values["decision_ms"] = round(timings["total_ms"])
    values["reason_code"] = reasons[0]["code"] if decision is Decision.DECLINED and reasons else None
    # Core statements, not the unit of work: three ORM flushes cost more CPU than the statements themselves.
    if decision is Decision.APPROVED:
        values["credit_line_id"] = insert_line(
            session, borrower_id=known.borrower_id, product_id=known.product_id, limit_fen=outcome.limit_fen,
            annual_rate=outcome.rate, risk_grade=outcome.grade, source=f"credit:application:{application_id}",
            expires_on=values["offered_expires_on"], now=now,
        )
    settings = ports.settings
    inserted = connection.execute(_INSERT_APPLICATION, {
        "id": application_id, **values, "today": today, "week_since": _week_since(today),
        "per_day": settings.credit_max_applications_per_day, "per_week": settings.credit_max_applications_per_7_days,
        "line_id": values["credit_line_id"] or 0})
    if inserted.first() is None:  # decided meanwhile by a concurrent application: refused, nothing kept
        raise _refused_meanwhile(ports, session, known.borrower_id, policy.ruleset, today,
                                 own_lines=1 if values["credit_line_id"] else 0)
    if decision is Decision.REVIEW:
        session.add(ReviewCase(application_id=application_id, kind=ReviewKind.REFERRED,
                               recommendation=outcome.recommendation, created_at=now))
    ports.audit.write(
        session, actor=auth.actor, action=f"credit.decision.{decision.value}",
        subject=f"credit_application:{application_id}",
        details={"ruleset": policy.ruleset.version, "model": policy.champion.model_id, "grade": outcome.grade,
                 "score": str(values["score"]), "bureau": outside.bureau_status.value,
                 "codes": [r["code"] for r in reasons], "credit_line_id": values["credit_line_id"]},
    )
    session.flush()  # the review case, if any
    return Decided(id=application_id, **{name: values[name] for name in _DECIDED_FIELDS})


@dataclass(frozen=True)
class Decided:
    """An application as just stored, with what its answer shows: a light copy of the row (building an ORM
    object costs more CPU than any statement of the request)."""

    id: int
    status: ApplicationStatus
    decision: Decision
    created_at: datetime
    decided_at: datetime | None
    grade: str | None
    reasons: str  # JSON, as stored
    offered_limit_fen: int | None
    offered_rate: Decimal | None
    offered_expires_on: date | None
    reapply_on: date | None
    credit_line_id: int | None


_DECIDED_FIELDS = tuple(name for name in Decided.__dataclass_fields__ if name != "id")


_APPLICATIONS = table_of(CreditApplication)
_OPEN_LINES = loans_read.open_line_count(bindparam("borrower_id"))


def _insert_if_still_allowed() -> Any:
    """The application's INSERT, made only if the borrower's standing still allows it (bind parameters: the
    row's columns, and ``today``, ``week_since``, ``per_day``, ``per_week``, ``line_id``).

    The row lock serializes a borrower's decisions, but on PostgreSQL a statement reads the database as it
    was when the statement began: the lock statement itself, which waited for a concurrent decision to
    commit, does not see it. The INSERT begins after the lock is held, so its condition sees every decision
    committed before: under the cap of applications per day and per 7 days, no other open line (``line_id``:
    the line this decision has just granted, 0 for none), no application in review. Checked in the statement
    the decision runs anyway, so a burst of concurrent applications cannot store more than the cap.
    """
    mine = _A.c.borrower_id == bindparam("borrower_id")
    allowed = and_(
        _applied_since("today") < bindparam("per_day"),
        _applied_since("week_since") < bindparam("per_week"),
        ~loans_read.other_open_line(bindparam("borrower_id"), bindparam("line_id")),
        ~exists().where(mine, _A.c.status == ApplicationStatus.IN_REVIEW),
    )
    columns = list(_APPLICATIONS.c)
    return insert(_APPLICATIONS).from_select(
        [c.name for c in columns], select(*(bindparam(c.name, type_=c.type) for c in columns)).where(allowed),
    ).returning(_APPLICATIONS.c.id)  # the row, or none: psycopg's rowcount of an INSERT … SELECT may be -1


_INSERT_APPLICATION = _insert_if_still_allowed()
_LOCK_AND_COUNT_LINES = identity_read.borrower_locked(_OPEN_LINES, next_id(_APPLICATIONS.c.id))


def _refused_meanwhile(
    ports: CreditPorts, session: Session, borrower_id: int, ruleset: Ruleset, today: date, *, own_lines: int,
) -> DomainError:
    """Why the INSERT's condition refused (read after the fact; the transaction is rolled back)."""
    params = {"borrower_id": borrower_id, "today": today, "week_since": _week_since(today)}
    row = session.connection().execute(select(_OPEN_LINES, *_standing_columns()), params).one()
    refusal = standing_refusal(
        ruleset, ports.settings, today=today, active_lines=row[0] - own_lines, last_decline_on=None,
        in_review=row.in_review, applied_day=row.applied_day, applied_week=row.applied_week,
        dates=lambda: _recent_dates(session, borrower_id, today))
    refusal = refusal or DomainError(CreditErrors.TOO_MANY_LINES)  # not expected: the condition has no other case
    log.info("credit_application_refused_at_store", borrower_id=borrower_id, code=refusal.code)
    return refusal


def open_lines(session: Session, borrower_id: int) -> int:
    return loans_read.open_lines(session, borrower_id)


def _dec(value: float | None, step: str) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal(step))


def borrower_applications(ports: Platform, borrower_id: int) -> list[CreditApplication]:
    with ports.db.transaction() as session:
        return list(session.execute(
            select(CreditApplication).where(CreditApplication.borrower_id == borrower_id)
            .order_by(CreditApplication.id.desc())
        ).scalars())


def _own(session: Session, borrower_id: int, application_id: int) -> CreditApplication:
    row = session.get(CreditApplication, application_id)
    if row is None or row.borrower_id != borrower_id:  # someone else's is as absent as a missing one
        raise DomainError(CreditErrors.APPLICATION_NOT_FOUND, params={"application_id": application_id})
    return row


def get_application(ports: Platform, borrower_id: int, application_id: int) -> CreditApplication:
    with ports.db.transaction() as session:
        return _own(session, borrower_id, application_id)


def latest_case(session: Session, application_id: int) -> ReviewCase | None:
    return session.execute(
        select(ReviewCase).where(ReviewCase.application_id == application_id).order_by(ReviewCase.id.desc())
    ).scalars().first()


_LOCK_BORROWER = identity_read.borrower_locked()


def request_human_review(ports: Platform, auth: AuthContext, application_id: int, note: str) -> ReviewCase:
    """PIPL art. 24: a borrower may ask a person to look at an automated decline."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        session.execute(_LOCK_BORROWER, {"borrower_id": auth.borrower_id})
        row = _own(session, auth.borrower_id, application_id)
        existing = latest_case(session, application_id)
        if existing is not None and row.decision is Decision.DECLINED:
            raise DomainError(CreditErrors.REVIEW_ALREADY_REQUESTED, params={"case_id": existing.id})
        if row.decision is not Decision.DECLINED or row.status is not ApplicationStatus.DECLINED:
            raise DomainError(CreditErrors.REVIEW_NOT_APPLICABLE, params={"status": row.status.value})
        case = ReviewCase(application_id=row.id, kind=ReviewKind.HUMAN_REVIEW_REQUEST, recommendation="decline",
                          borrower_note=note or None, created_at=now)
        session.add(case)
        row.status = ApplicationStatus.IN_REVIEW
        session.flush()
        ports.audit.record(session, actor=auth.actor, action="credit.human_review.requested",
                               subject=f"credit_application:{row.id}", details={"case_id": case.id})
    return case
