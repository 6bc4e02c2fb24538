"""Drawdowns (借款) from request to an active loan: quote, reserve, contract, sign, payout.

Each use case is one transaction that writes its audit entry and, where money is concerned, its
ledger entry. Ordering a payout also stores the payment order (``payments.orders``) in the same
transaction; the payments layer sends it to the channel and settles the loan through
:func:`settle_payout_in` when the channel's answer is final.

Ledger entries of a payout (idempotency keys in brackets — replays post nothing new):

* payout ordered  ``[loan:<id>:payout:<n>:ordered]``  Dr principal receivable / Cr payout in transit
* payout paid     ``[loan:<id>:payout:<n>:paid]``     Dr payout in transit / Cr cash at the channel
* payout failed   ``[loan:<id>:payout:<n>:voided]``   the reversal of the "ordered" entry

So a failed payout leaves nothing receivable, and at most one "paid" entry can exist per attempt,
while a loan leaves ``disbursing`` exactly once for ``active``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.core.money import Money
from miaodai.core.ports import Platform
from miaodai.identity.consent_service import require_consents
from miaodai.identity.models import ConsentKind
from miaodai.identity.sessions import AuthContext
from miaodai.ledger.accounts import Account
from miaodai.ledger.models import JournalEntry
from miaodai.ledger.service import Leg, post, reverse
from miaodai.loans import contract_service, line_service
from miaodai.loans.errors import LoanErrors
from miaodai.loans.locking import for_loan_update, lock_loan
from miaodai.loans.models import CreditLine, Loan, LoanContract, LoanInstallment, LoanProduct
from miaodai.loans.ports import LoanPorts
from miaodai.loans.product_service import quote_under_product
from miaodai.loans.quotes import terms_or_error
from miaodai.loans.schedule import DayCount, LoanTerms, RepaymentMethod, Schedule, build_schedule
from miaodai.loans.states import LineStatus, LoanStatus, check_transition

log = structlog.get_logger(__name__)

# Documents a borrower must have in force to borrow.
DRAWDOWN_CONSENTS = (ConsentKind.PRIVACY_POLICY, ConsentKind.USER_AGREEMENT)


@dataclass(frozen=True)
class DrawdownRequest:
    line_id: int
    principal_fen: int
    method: RepaymentMethod
    term_months: int | None
    term_days: int | None
    request_key: str

    def same_as(self, loan: Loan) -> bool:
        return (loan.credit_line_id, loan.principal_fen, loan.method, loan.term_months, loan.term_days) == (
            self.line_id, self.principal_fen, self.method, self.term_months, self.term_days)


def loan_terms(loan: Loan, start: date | None = None) -> LoanTerms:
    """The loan's frozen terms (from its start date, or ``start``)."""
    return LoanTerms(
        principal_fen=loan.principal_fen, annual_rate=loan.annual_rate, method=loan.method,
        start_date=start or loan.start_date, term_months=loan.term_months, term_days=loan.term_days,
        monthly_fee_rate=loan.monthly_fee_rate, day_count=DayCount(loan.day_count),
    )


def loan_schedule(loan: Loan) -> Schedule:
    return build_schedule(loan_terms(loan))


def owned_loan(session: Session, borrower_id: int, loan_id: int, *, lock: bool = False) -> Loan:
    query = select(Loan).where(Loan.id == loan_id, Loan.borrower_id == borrower_id)
    loan = session.execute(for_loan_update(query) if lock else query).scalar_one_or_none()  # loans.locking
    if loan is None:
        raise DomainError(LoanErrors.LOAN_NOT_FOUND, params={"loan_id": loan_id})
    return loan


def request_drawdown(ports: LoanPorts, auth: AuthContext, request: DrawdownRequest) -> tuple[Loan, bool]:
    """Quote, reserve the line and draft the contract. Returns (loan, created); a replayed key returns the first."""
    try:
        return _request_drawdown(ports, auth, request)
    except IntegrityError:
        # The same key raced in on another connection and committed first: answer with its loan.
        with ports.db.transaction() as session:
            existing = _by_request_key(session, auth.borrower_id, request.request_key)
        if existing is None:
            raise
        return _replayed(existing, request), False


def _by_request_key(session: Session, borrower_id: int, key: str) -> Loan | None:
    return session.execute(
        select(Loan).where(Loan.borrower_id == borrower_id, Loan.request_key == key)).scalar_one_or_none()


def _replayed(existing: Loan, request: DrawdownRequest) -> Loan:
    if not request.same_as(existing):
        raise DomainError(LoanErrors.REQUEST_KEY_REUSED)
    return existing


def _request_drawdown(ports: LoanPorts, auth: AuthContext, request: DrawdownRequest) -> tuple[Loan, bool]:
    now = ports.clock.now()
    today = business_date(now)
    with ports.db.transaction() as session:
        existing = _by_request_key(session, auth.borrower_id, request.request_key)
        if existing is not None:
            return _replayed(existing, request), False
        line_service.verified_borrower(session, auth.borrower_id)
        require_consents(session, auth.borrower_id, DRAWDOWN_CONSENTS, now=now)
        line = session.get(CreditLine, request.line_id)
        if line is None or line.borrower_id != auth.borrower_id:
            raise DomainError(LoanErrors.LINE_NOT_FOUND)
        if line.status is not LineStatus.ACTIVE or line.expires_on < today:
            status = line.status.value if line.status is not LineStatus.ACTIVE else "expired"
            raise DomainError(LoanErrors.LINE_NOT_USABLE, params={"status": status})
        line_service.refuse_if_overdue(session, ports, auth.borrower_id, today)
        ports.payouts.require_method(session, auth.borrower_id)  # asked for before anything is held or drafted
        product = session.get(LoanProduct, line.product_id)
        assert product is not None  # a foreign key
        spec = product.spec()
        terms = terms_or_error(
            principal_fen=request.principal_fen, annual_rate=line.annual_rate, method=request.method,
            start_date=today, term_months=request.term_months, term_days=request.term_days,
        )
        schedule = quote_under_product(spec, terms)
        if not line_service.reserve(session, line.id, request.principal_fen, now=now):
            session.refresh(line)
            raise DomainError(LoanErrors.LINE_INSUFFICIENT, params={
                "available_yuan": Money(line.available_fen).to_yuan(), "available_fen": line.available_fen,
                "amount_yuan": Money(request.principal_fen).to_yuan()})
        priced = schedule.terms
        loan = Loan(
            loan_no=f"MD{today:%Y%m%d}{secrets.token_hex(4).upper()}", borrower_id=auth.borrower_id,
            credit_line_id=line.id, product_id=product.id, status=LoanStatus.REQUESTED,
            principal_fen=priced.principal_fen, method=priced.method, term_months=priced.term_months,
            term_days=priced.term_days, annual_rate=priced.annual_rate, monthly_fee_rate=priced.monthly_fee_rate,
            day_count=priced.day_count.value, penalty_annual_rate=spec.penalty_rate(priced.annual_rate),
            late_fee_fen=spec.late_fee_fen, grace_days=spec.grace_days, cost_cap=spec.cost_cap,
            allocation_order=",".join(b.value for b in spec.allocation_order), apr=schedule.apr,
            total_interest_fen=schedule.total_interest_fen, total_fee_fen=schedule.total_fee_fen,
            start_date=today, principal_outstanding_fen=priced.principal_fen, overpayment_fen=0, days_past_due=0,
            payout_attempts=0, request_key=request.request_key, device_id=auth.device_id, requested_at=now,
        )
        session.add(loan)
        session.flush()
        contract_service.draft(session, ports, loan, schedule, now=now)
        ports.audit.record(
            session, actor=auth.actor, action="loan.request", subject=f"loan:{loan.id}",
            details={"loan_no": loan.loan_no, "line_id": line.id, "principal_fen": loan.principal_fen,
                     "method": loan.method.value, "term_months": loan.term_months, "term_days": loan.term_days,
                     "apr": str(loan.apr), "device_id": auth.device_id},
        )
    return loan, True


def open_contract(ports: Platform, auth: AuthContext, loan_id: int) -> tuple[LoanContract, str]:
    """The contract to read (and its text). An unsigned draft from an earlier day is redrawn first:
    its dates would be stale, and the borrower must sign the text they read today."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        loan = owned_loan(session, auth.borrower_id, loan_id, lock=True)
        contract = contract_service.contract_of(session, loan.id)
        if loan.status is LoanStatus.REQUESTED and contract.drafted_on != business_date(now):
            contract = _redraft(session, ports, loan, now=now)
        return contract, contract_service.document_of(ports, contract)


def _redraft(session: Session, ports: Platform, loan: Loan, *, now: datetime) -> LoanContract:
    product = session.get(LoanProduct, loan.product_id)
    assert product is not None  # a foreign key
    schedule = quote_under_product(product.spec(), loan_terms(loan, start=business_date(now)))
    loan.start_date = schedule.terms.start_date
    loan.apr = schedule.apr
    loan.total_interest_fen = schedule.total_interest_fen
    loan.total_fee_fen = schedule.total_fee_fen
    return contract_service.draft(session, ports, loan, schedule, now=now)


def sign(ports: LoanPorts, auth: AuthContext, loan_id: int, *, read_sha256: str, code: str | None,
         request_key: str | None = None) -> Loan:
    """The borrower signs the text they read with a code sent for that text (``contract_service.confirm``:
    every signing, however recent the login); the platform countersigns; the payout is ordered. The same
    ``request_key`` again (a retry of a request whose answer was lost) finds the loan it signed and changes
    nothing. A wrong code is committed as a counted guess before it is raised."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        loan = owned_loan(session, auth.borrower_id, loan_id, lock=True)
        if _already_ordered(session, ports, loan, request_key):
            return loan
        check_transition(loan.status, LoanStatus.SIGNED)
        contract = contract_service.signable(session, ports, loan, read_sha256=read_sha256, now=now)
        confirmed = contract_service.confirm(session, ports, auth, contract, code=code, now=now)
        if not isinstance(confirmed, DomainError):
            contract_service.sign(session, ports, loan, contract, confirmed, device_id=auth.device_id,
                                  actor=auth.actor, now=now)
            loan.status = LoanStatus.SIGNED
            loan.signed_at = now
            _order_payout(session, ports, loan, now=now, actor=auth.actor, request_key=request_key)
    if isinstance(confirmed, DomainError):
        raise confirmed
    return loan


def retry_payout(ports: LoanPorts, auth: AuthContext, loan_id: int, *, request_key: str | None = None) -> Loan:
    """After a definite payout failure (the loan is back to signed): order a new payout (once per
    ``request_key``, like :func:`sign`)."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        loan = owned_loan(session, auth.borrower_id, loan_id, lock=True)
        if _already_ordered(session, ports, loan, request_key):
            return loan
        _order_payout(session, ports, loan, now=now, actor=auth.actor, request_key=request_key)
    return loan


def send_payout(ports: LoanPorts, loan_id: int) -> None:
    """Send the payout order that signing (or a retry) stored, right after its transaction committed. If sending
    fails the request has still done what it was asked — the order is stored and the payments worker's recovery
    sends it — so the failure is logged, not raised: the borrower is answered, not shown a 500."""
    try:
        ports.payouts.send(loan_id)
    except Exception:
        log.exception("payout_send_failed_after_commit", loan_id=loan_id)


def _already_ordered(session: Session, ports: LoanPorts, loan: Loan, request_key: str | None) -> bool:
    return request_key is not None and ports.payouts.ordered_by(session, loan.id, request_key)


def _order_payout(session: Session, ports: LoanPorts, loan: Loan, *, now: datetime, actor: str,
                  request_key: str | None = None) -> None:
    check_transition(loan.status, LoanStatus.DISBURSING)
    loan.payout_attempts += 1
    loan.status = LoanStatus.DISBURSING
    post(session, kind="payout_ordered", idempotency_key=f"loan:{loan.id}:payout:{loan.payout_attempts}:ordered",
         business_date=business_date(now), now=now, loan_id=loan.id, memo=f"payout ordered for {loan.loan_no}",
         legs=[Leg(Account.PRINCIPAL_RECEIVABLE, loan.principal_fen, loan_id=loan.id),
               Leg(Account.PAYOUT_IN_TRANSIT, -loan.principal_fen, loan_id=loan.id)])
    ports.audit.record(session, actor=actor, action="loan.payout_ordered", subject=f"loan:{loan.id}",
                       details={"attempt": loan.payout_attempts, "principal_fen": loan.principal_fen})
    ports.payouts.order(session, loan, now=now, request_key=request_key)  # loans.ports.PayoutOrders


@dataclass(frozen=True)
class PayoutResult:
    """What the payment channel finally said about one payout attempt (never "unknown")."""

    attempt: int
    succeeded: bool
    channel: str
    at: datetime
    reference: str
    reason: str = ""


def settle_payout(ports: Platform, loan_id: int, result: PayoutResult, *, actor: str) -> Loan:
    """Apply a definite payout result. Replaying a result already applied changes nothing.

    A result for anything but the loan's current attempt while it is disbursing is refused loudly
    (LOAN_PAYOUT_RESULT_UNEXPECTED): e.g. "paid" for an attempt already voided is a channel
    discrepancy for reconciliation and operations, never something to post silently.
    """
    with ports.db.transaction() as session:
        return settle_payout_in(session, ports, loan_id, result, actor=actor)


def settle_payout_in(session: Session, ports: Platform, loan_id: int, result: PayoutResult, *,
                     actor: str) -> Loan:
    """:func:`settle_payout` inside the caller's transaction (the payments layer settles the order and
    the loan together)."""
    key = f"loan:{loan_id}:payout:{result.attempt}"
    outcome_key = f"{key}:paid" if result.succeeded else f"{key}:voided"
    loan = lock_loan(session, loan_id)  # the loans locking protocol: before reading what changes
    if loan is None:
        raise DomainError(LoanErrors.LOAN_NOT_FOUND, params={"loan_id": loan_id})
    if _entry_id(session, outcome_key) is not None:
        return loan  # this very result was applied before
    if loan.status is not LoanStatus.DISBURSING or loan.payout_attempts != result.attempt:
        raise DomainError(LoanErrors.PAYOUT_RESULT_UNEXPECTED, params={
            "loan_id": loan.id, "attempt": result.attempt, "status": loan.status.value})
    paid_on = business_date(result.at)
    if result.succeeded:
        post(session, kind="payout_paid", idempotency_key=outcome_key, business_date=paid_on, now=result.at,
             loan_id=loan.id, memo=f"payout {result.reference} via {result.channel}",
             legs=[Leg(Account.PAYOUT_IN_TRANSIT, loan.principal_fen, loan_id=loan.id),
                   Leg(Account.CASH, -loan.principal_fen, loan_id=loan.id, channel=result.channel)])
        _activate(session, loan, paid_on=paid_on, at=result.at)
    else:
        ordered = _entry_id(session, f"{key}:ordered")
        assert ordered is not None  # posted with the order, in the same transaction as the status change
        reverse(session, entry_id=ordered, idempotency_key=outcome_key, business_date=paid_on, now=result.at,
                memo=f"payout {result.reference} failed: {result.reason}")
        check_transition(loan.status, LoanStatus.SIGNED)
        loan.status = LoanStatus.SIGNED
    ports.audit.record(
        session, actor=actor, action="loan.payout_paid" if result.succeeded else "loan.payout_failed",
        subject=f"loan:{loan.id}",
        details={"attempt": result.attempt, "channel": result.channel, "reference": result.reference,
                 "reason": result.reason},
    )
    return loan


def _entry_id(session: Session, key: str) -> int | None:
    return session.execute(select(JournalEntry.id).where(JournalEntry.idempotency_key == key)).scalar_one_or_none()


def _activate(session: Session, loan: Loan, *, paid_on: date, at: datetime) -> None:
    """The money left: the schedule runs from the actual payout date."""
    check_transition(loan.status, LoanStatus.ACTIVE)
    schedule = build_schedule(loan_terms(loan, start=paid_on))
    loan.start_date = paid_on
    loan.status = LoanStatus.ACTIVE
    loan.disbursed_at = at
    loan.total_interest_fen = schedule.total_interest_fen
    loan.total_fee_fen = schedule.total_fee_fen
    session.add_all(
        LoanInstallment(
            loan_id=loan.id, period=i.period, due_date=i.due_date, principal_fen=i.principal_fen,
            interest_fen=i.interest_fen, fee_fen=i.fee_fen, penalty_fen=0, principal_paid_fen=0,
            interest_paid_fen=0, fee_paid_fen=0, penalty_paid_fen=0, posted_due=False,
        )
        for i in schedule.installments
    )


def cancel(ports: Platform, auth: AuthContext, loan_id: int) -> Loan:
    """Withdraw a drawdown before any money has left; the reserved credit comes back to the line."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        loan = owned_loan(session, auth.borrower_id, loan_id, lock=True)
        if loan.status is LoanStatus.DISBURSING:
            # The bank may be paying right now: only a definite failure (settle_payout) can free the loan.
            raise DomainError(LoanErrors.ILLEGAL_TRANSITION, params={"current": loan.status.value,
                                                                     "target": LoanStatus.CANCELLED.value})
        check_transition(loan.status, LoanStatus.CANCELLED)
        loan.status = LoanStatus.CANCELLED
        loan.closed_at = now
        loan.principal_outstanding_fen = 0
        line_service.release(session, loan.credit_line_id, loan.principal_fen, now=now)
        ports.audit.record(session, actor=auth.actor, action="loan.cancel", subject=f"loan:{loan.id}",
                           details={"loan_no": loan.loan_no})
    return loan


def borrower_loans(ports: Platform, borrower_id: int) -> list[Loan]:
    with ports.db.transaction() as session:
        return list(session.execute(
            select(Loan).where(Loan.borrower_id == borrower_id).order_by(Loan.id.desc())).scalars())


def installments_of(session: Session, loan_id: int) -> list[LoanInstallment]:
    return list(session.execute(_INSTALLMENTS, {"loan_id": loan_id}).scalars())


# Built once (a statement memoizes its cache key): every repayment reads a schedule.
_INSTALLMENTS = (select(LoanInstallment).where(LoanInstallment.loan_id == bindparam("loan_id"))
                 .order_by(LoanInstallment.period))
