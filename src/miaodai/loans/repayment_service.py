"""Money received for a loan: posted once per caller key, allocated, and recorded in the ledger.

Three purposes, all through :func:`post_repayment` (the payments layer calls it for cards, wallets and
auto-debit; the sandbox endpoint stands in for a channel until then):

* ``due`` — pay what is due (penalty → fee → interest → principal by default, oldest installment
  first, :func:`miaodai.loans.repayment_math.allocate`); the rest is held as an overpayment (a
  liability) that the end-of-day batch applies when the next installment falls due.
* ``payoff`` — early full repayment: what is due, the principal not yet due and interest accrued to
  today (:func:`~miaodai.loans.repayment_math.payoff_amount`); no future interest, no future fees, no
  early-repayment fee. More than the payoff amount is held as an overpayment; less is refused.
* ``prepayment`` — early partial repayment: settle what is due, the interest accrued to today, and put
  the rest on principal; the installments not yet due are recomputed in the borrower's chosen mode
  (shorter term or smaller installments, :func:`~miaodai.loans.repayment_math.reschedule_after_prepayment`).

How each amount reaches the ledger is :mod:`miaodai.loans.accounting`. The same key twice posts once
(the second call answers with the first repayment); the same key with another amount, loan or purpose
is refused. A ``due`` repayment can be reversed (a bank chargeback, a mistaken posting) by
compensating entries — only the loan's latest repayment, and only while the money it left held is still
held — which puts the installments back exactly as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache

from sqlalchemy import Insert, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date
from miaodai.core.db import dialect_of
from miaodai.core.errors import DomainError
from miaodai.core.money import Money
from miaodai.core.ports import Platform
from miaodai.ledger.accounts import Account
from miaodai.ledger.models import JournalEntry
from miaodai.ledger.service import Leg, next_entry_id_sql, post, post_new, reverse
from miaodai.loans import line_service
from miaodai.loans.errors import LoanErrors
from miaodai.loans.loan_service import installments_of, loan_terms
from miaodai.loans.locking import for_loan_update, lock_loan
from miaodai.loans.models import Loan, LoanInstallment, Repayment
from miaodai.loans.products import Bucket
from miaodai.loans.repayment_math import (
    Allocation,
    AllocationLine,
    InstallmentState,
    Payoff,
    PrepaymentMode,
    accrued_interest,
    allocate,
    last_due_or_start,
    payoff_amount,
    reschedule_after_prepayment,
)
from miaodai.loans.states import ON_BOOK, LoanStatus, check_transition

_PAID = {Bucket.PENALTY: "penalty_paid_fen", Bucket.FEE: "fee_paid_fen", Bucket.INTEREST: "interest_paid_fen",
         Bucket.PRINCIPAL: "principal_paid_fen"}


class Purpose(StrEnum):
    DUE = "due"
    PAYOFF = "payoff"
    PREPAYMENT = "prepayment"


@dataclass(frozen=True)
class RepaymentRequest:
    loan_id: int
    amount_fen: int
    idempotency_key: str
    channel: str
    received_at: datetime
    purpose: Purpose = Purpose.DUE
    mode: PrepaymentMode | None = None  # prepayments only

    def same_as(self, row: Repayment) -> bool:
        recorded = json.loads(row.allocation)
        return (row.loan_id, row.amount_fen, row.kind, row.channel, recorded.get("mode")) == (
            self.loan_id, self.amount_fen, self.purpose.value, self.channel, self.mode.value if self.mode else None)


@dataclass(frozen=True)
class Posted:
    repayment_id: int
    journal_entry_id: int | None
    created: bool  # False when the key had been posted before


# -- reading ----------------------------------------------------------------------------------------


def _states(rows: list[LoanInstallment]) -> list[InstallmentState]:
    return [InstallmentState.of(r) for r in rows]


def _interest_from(session: Session, loan: Loan, states: list[InstallmentState], as_of: date) -> date:
    """The date interest is settled through: the last due date (or the start), or a prepayment since."""
    settled = last_due_or_start(loan_terms(loan), states, as_of)
    prepaid_on = session.execute(
        select(Repayment.received_on).where(
            Repayment.loan_id == loan.id, Repayment.kind == Purpose.PREPAYMENT.value,
            Repayment.received_on > settled, Repayment.received_on <= as_of,
        ).order_by(Repayment.received_on.desc()).limit(1)
    ).scalar_one_or_none()
    return prepaid_on or settled


def payoff_quote(session: Session, loan: Loan, as_of: date) -> Payoff:
    """What paying the whole loan off on ``as_of`` takes."""
    states = _states(installments_of(session, loan.id))
    return payoff_amount(
        states, as_of=as_of, annual_rate=loan.annual_rate, day_count=loan_terms(loan).day_count,
        last_due_or_start=_interest_from(session, loan, states, as_of),
        outstanding_principal_fen=loan.principal_outstanding_fen,
    )


@dataclass(frozen=True)
class PrepaymentPlan:
    """A partial prepayment worked out before anything is posted: the borrower sees it first."""

    due: Allocation
    accrued_interest_fen: int
    principal_fen: int
    installments: tuple  # the recomputed installments not yet due (schedule.Installment)


def prepayment_plan(session: Session, loan: Loan, amount_fen: int, mode: PrepaymentMode, as_of: date) -> PrepaymentPlan:
    rows = installments_of(session, loan.id)
    states = _states(rows)
    due = allocate(states, amount_fen, order=_order(loan), as_of=as_of)
    still_due = sum(s.total_outstanding for s in states if s.due_date <= as_of) - due.applied_fen
    interest_from = _interest_from(session, loan, states, as_of)
    settled = _apply_states(states, due)
    accrued = accrued_interest(settled, as_of=as_of, annual_rate=loan.annual_rate,
                               day_count=loan_terms(loan).day_count, last_due_or_start=interest_from)
    future_principal = sum(s.principal_fen - s.principal_paid_fen for s in settled if s.due_date > as_of)
    principal = min(due.unapplied_fen - accrued, future_principal)
    if still_due > 0 or principal <= 0:
        raise DomainError(LoanErrors.PREPAYMENT_TOO_SMALL, params={
            "amount_yuan": Money(amount_fen).to_yuan(),
            "due_yuan": Money(sum(s.total_outstanding for s in states if s.due_date <= as_of)).to_yuan(),
            "accrued_yuan": Money(accrued).to_yuan()})
    new_rows = reschedule_after_prepayment(loan_terms(loan), settled, prepaid_principal_fen=principal, as_of=as_of,
                                           mode=mode, interest_from=interest_from)
    return PrepaymentPlan(due, accrued, principal, new_rows)


def _order(loan: Loan) -> tuple[Bucket, ...]:
    return tuple(Bucket(b) for b in loan.allocation_order.split(","))


def _apply_states(states: list[InstallmentState], allocation: Allocation) -> list[InstallmentState]:
    from miaodai.loans.repayment_math import apply

    return list(apply(states, allocation))


# -- posting ----------------------------------------------------------------------------------------


def post_repayment(ports: Platform, request: RepaymentRequest, *, actor: str) -> Posted:
    """Post money received for a loan, once per ``request.idempotency_key``."""
    try:
        return _post(ports, request, actor=actor)
    except IntegrityError:
        with ports.db.transaction() as session:  # the same key won a race on another connection
            existing = _by_key(session, request.idempotency_key)
        if existing is None:
            raise
        return _replayed(existing, request)


def _by_key(session: Session, key: str) -> Repayment | None:
    return session.execute(_BY_KEY, {"key": key}).scalar_one_or_none()


@cache
def _insert_repayment(dialect: str) -> Insert:
    table = Repayment.__table__
    return (insert(table).values(journal_entry_id=next_entry_id_sql(dialect))
            .returning(table.c.id, table.c.journal_entry_id))


# Built once (a statement memoizes its cache key).
_BY_KEY = select(Repayment).where(Repayment.idempotency_key == bindparam("key"))
# A key posted by a transaction that commits while this one waits for the loan's lock is not seen here
# (the subquery reads the statement's snapshot); the insert then fails on the unique key and
# post_repayment answers with the winner's repayment.
_LOCK_LOAN_AND_SEEK_KEY = for_loan_update(
    select(Loan, select(Repayment.id).where(Repayment.idempotency_key == bindparam("key"))
           .scalar_subquery().label("posted_id"))
    .where(Loan.id == bindparam("loan_id"))
)


def _replayed(existing: Repayment, request: RepaymentRequest) -> Posted:
    if not request.same_as(existing):
        raise DomainError(LoanErrors.REPAYMENT_KEY_REUSED)
    return Posted(existing.id, existing.journal_entry_id, created=False)


def _post(ports: Platform, request: RepaymentRequest, *, actor: str) -> Posted:
    with ports.db.transaction() as session:
        return post_in(session, ports, request, actor=actor)


def post_in(session: Session, ports: Platform, request: RepaymentRequest, *, actor: str) -> Posted:
    """:func:`post_repayment` in the caller's transaction (the payments layer posts a collection in the
    transaction that settles its order). Raises before writing anything when the request is refused."""
    if request.amount_fen <= 0:
        raise ValueError("a repayment is a positive amount of fen")
    as_of = business_date(request.received_at)
    # One round trip: lock the loan and see whether the key was posted already.
    found = session.execute(_LOCK_LOAN_AND_SEEK_KEY,
                            {"loan_id": request.loan_id, "key": request.idempotency_key}).first()
    if found is None or found.posted_id is not None:  # no such loan, or the key is known
        existing = _by_key(session, request.idempotency_key)
        if existing is not None:
            return _replayed(existing, request)
        raise DomainError(LoanErrors.LOAN_NOT_FOUND, params={"loan_id": request.loan_id})
    loan = found.Loan
    if loan.status not in ON_BOOK:
        raise DomainError(LoanErrors.NOT_REPAYABLE, params={"status": loan.status.value})
    rows = installments_of(session, loan.id)
    if request.purpose is Purpose.PAYOFF:
        allocation, details = _payoff(session, loan, rows, request.amount_fen, as_of)
    elif request.purpose is Purpose.PREPAYMENT:
        allocation, details = _prepay(session, loan, rows, request, as_of)
    else:
        allocation = allocate(_states(rows), request.amount_fen, order=_order(loan), as_of=as_of)
        details = {}
    # The row takes its journal entry's id in the same statement, so it names the entry from the start.
    repayment_id, entry_id = session.execute(_insert_repayment(dialect_of(session)), {
        "loan_id": loan.id, "idempotency_key": request.idempotency_key, "kind": request.purpose.value,
        "amount_fen": request.amount_fen, "channel": request.channel, "received_on": as_of,
        "posted_at": ports.clock.now(),
        "allocation": json.dumps({**allocation.as_dict(), **details,
                                  "mode": request.mode.value if request.mode else None}, sort_keys=True),
    }).one()
    legs = _legs(loan, rows, allocation, request.amount_fen, request.channel)
    post_new(session, kind="repayment", idempotency_key=f"loan:{loan.id}:repayment:{repayment_id}",
             business_date=as_of, now=ports.clock.now(), loan_id=loan.id, legs=legs,
             memo=f"{request.purpose.value} via {request.channel}", entry_id=entry_id)
    principal = allocation.bucket_total(Bucket.PRINCIPAL)
    if principal:  # a statement of its own: before the rows change, so it does not flush them early
        line_service.release(session, loan.credit_line_id, principal, now=ports.clock.now())
    _apply_rows(rows, allocation, as_of)
    loan.principal_outstanding_fen -= principal
    loan.overpayment_fen += allocation.unapplied_fen
    _settle_status(loan, rows, as_of, now=ports.clock.now())
    ports.audit.record(session, actor=actor, action=f"loan.repayment.{request.purpose.value}",
                       subject=f"loan:{loan.id}",
                       details={"repayment_id": repayment_id, "amount_fen": request.amount_fen,
                                    "channel": request.channel, "entry_id": entry_id})
    return Posted(repayment_id, entry_id, created=True)


def _legs(loan: Loan, rows: list[LoanInstallment], allocation: Allocation, amount_fen: int, channel: str) -> list[Leg]:
    """Dr cash; Cr what the allocation paid (receivable once posted due, else income); Cr held overpayment."""
    credits = _credits(rows, allocation)
    if allocation.unapplied_fen:
        credits[Account.OVERPAYMENT_LIABILITY] = allocation.unapplied_fen
    return [Leg(Account.CASH, amount_fen, loan_id=loan.id, channel=channel)] + [
        Leg(account, -fen, loan_id=loan.id) for account, fen in credits.items()]


def _credits(rows: list[LoanInstallment], allocation: Allocation) -> dict[Account, int]:
    """The accounts an allocation pays off: the receivable once an installment is posted due, else income."""
    posted = {r.period: r.posted_due for r in rows}
    credits: dict[Account, int] = {}
    for line in allocation.lines:
        due = posted.get(line.period, False)
        for bucket, receivable, income in (
            (Bucket.PRINCIPAL, Account.PRINCIPAL_RECEIVABLE, Account.PRINCIPAL_RECEIVABLE),
            (Bucket.INTEREST, Account.INTEREST_RECEIVABLE, Account.INTEREST_INCOME),
            (Bucket.FEE, Account.FEE_RECEIVABLE, Account.FEE_INCOME),
            (Bucket.PENALTY, Account.PENALTY_RECEIVABLE, Account.PENALTY_RECEIVABLE),
        ):
            if line.amount(bucket):
                account = receivable if due else income
                credits[account] = credits.get(account, 0) + line.amount(bucket)
    return credits


def apply_held(session: Session, loan: Loan, *, as_of: date, now: datetime, business_day: date) -> int:
    """Apply the money held for ``loan`` (its overpayment) to what is due on ``as_of``; returns the fen applied.

    Called by the end-of-day batch when installments fall due (the caller holds the loan row). Posted once
    per loan and business day: Dr overpayment liability / Cr the receivables paid.
    """
    key = f"loan:{loan.id}:held_applied:{business_day.isoformat()}"
    if loan.overpayment_fen <= 0 or session.execute(select(JournalEntry.id).where(
            JournalEntry.idempotency_key == key)).first():
        return 0
    rows = installments_of(session, loan.id)
    allocation = allocate(_states(rows), loan.overpayment_fen, order=_order(loan), as_of=as_of)
    applied = allocation.applied_fen
    if applied == 0:
        return 0
    legs = [Leg(Account.OVERPAYMENT_LIABILITY, applied, loan_id=loan.id)] + [
        Leg(account, -fen, loan_id=loan.id) for account, fen in _credits(rows, allocation).items()]
    post(session, kind="held_applied", idempotency_key=key, business_date=business_day, now=now, loan_id=loan.id,
         legs=legs, memo="held overpayment applied to what fell due")
    _apply_rows(rows, allocation, as_of)
    principal = allocation.bucket_total(Bucket.PRINCIPAL)
    loan.principal_outstanding_fen -= principal
    loan.overpayment_fen -= applied
    if principal:
        line_service.release(session, loan.credit_line_id, principal, now=now)
    _settle_status(loan, rows, as_of, now=now)
    return applied


def _apply_rows(rows: list[LoanInstallment], allocation: Allocation, as_of: date) -> None:
    by_period = {r.period: r for r in rows}
    for line in allocation.lines:
        row = by_period[line.period]
        for bucket, column in _PAID.items():
            setattr(row, column, getattr(row, column) + line.amount(bucket))
        if outstanding(row) == 0 and row.paid_off_on is None:
            row.paid_off_on = as_of


def outstanding(row: LoanInstallment) -> int:
    return (row.principal_fen - row.principal_paid_fen + row.interest_fen - row.interest_paid_fen
            + row.fee_fen - row.fee_paid_fen + row.penalty_fen - row.penalty_paid_fen)


def _settle_status(loan: Loan, rows: list[LoanInstallment], as_of: date, *, now: datetime) -> None:
    """Paid off when nothing is left; back to active when nothing due is unpaid any more."""
    if all(outstanding(r) == 0 for r in rows):
        check_transition(loan.status, LoanStatus.PAID_OFF)
        loan.status = LoanStatus.PAID_OFF
        loan.closed_at = now
        loan.days_past_due = 0
    elif loan.status is LoanStatus.OVERDUE and all(outstanding(r) == 0 for r in rows if r.due_date <= as_of):
        loan.status = LoanStatus.ACTIVE
        loan.days_past_due = 0


# For the loans domain's other writers that settle installments (a waiver of penalties, loans.servicing).
settle_status = _settle_status


def _payoff(session: Session, loan: Loan, rows: list[LoanInstallment], amount_fen: int,
            as_of: date) -> tuple[Allocation, dict[str, int]]:
    """Rewrite the installments not yet due into what the payoff settles: the first carries the accrued
    interest and all remaining principal; later ones are dropped (no future interest or fees)."""
    quote = payoff_quote(session, loan, as_of)
    if amount_fen < quote.total_fen:
        raise DomainError(LoanErrors.PAYOFF_AMOUNT_SHORT, params={
            "payoff_yuan": Money(quote.total_fen).to_yuan(), "amount_yuan": Money(amount_fen).to_yuan(),
            "payoff_fen": quote.total_fen})
    future = [r for r in rows if r.due_date > as_of]
    if future:
        first, dropped = future[0], future[1:]
        first.principal_fen = first.principal_paid_fen + quote.remaining_principal_fen
        first.interest_fen = first.interest_paid_fen + quote.accrued_interest_fen
        first.fee_fen = first.fee_paid_fen
        _drop(dropped, as_of)
    due_states = _states(rows)
    # Everything due, then the rewritten first future installment: one allocation, oldest first.
    allocation = allocate(due_states, amount_fen, order=_order(loan), as_of=future[0].due_date if future else as_of)
    return allocation, {"accrued_interest_fen": quote.accrued_interest_fen}


def _drop(rows: list[LoanInstallment], as_of: date) -> None:
    """Installments a prepayment made unnecessary: nothing owed (they never reached the ledger), settled."""
    for row in rows:
        row.principal_fen = row.principal_paid_fen
        row.interest_fen = row.interest_paid_fen
        row.fee_fen = row.fee_paid_fen
        row.paid_off_on = row.paid_off_on or as_of


def _prepay(session: Session, loan: Loan, rows: list[LoanInstallment], request: RepaymentRequest,
            as_of: date) -> tuple[Allocation, dict[str, int]]:
    mode = request.mode or PrepaymentMode.SHORTER_TERM
    plan = prepayment_plan(session, loan, request.amount_fen, mode, as_of)
    future = [r for r in rows if r.due_date > as_of]
    new = {i.period: i for i in plan.installments}
    first = future[0]
    # The prepaid principal and accrued interest are recorded as paid on the first future installment.
    for row in future:
        line = new.get(row.period)
        if line is None:
            _drop([row], as_of)
            continue
        row.due_date = line.due_date
        row.principal_fen = row.principal_paid_fen + line.principal_fen
        row.interest_fen = row.interest_paid_fen + line.interest_fen
        row.fee_fen = line.fee_fen
    first.principal_fen += plan.principal_fen
    first.interest_fen += plan.accrued_interest_fen
    extra = AllocationLine(first.period, interest_fen=plan.accrued_interest_fen, principal_fen=plan.principal_fen)
    lines = tuple(plan.due.lines) + (extra,)
    unapplied = request.amount_fen - sum(line.total_fen for line in lines)
    allocation = Allocation(request.amount_fen, _merge(lines), unapplied)
    return allocation, {"accrued_interest_fen": plan.accrued_interest_fen, "prepaid_principal_fen": plan.principal_fen}


def _merge(lines: tuple[AllocationLine, ...]) -> tuple[AllocationLine, ...]:
    merged: dict[int, AllocationLine] = {}
    for line in lines:
        was = merged.get(line.period, AllocationLine(line.period))
        merged[line.period] = AllocationLine(line.period, was.penalty_fen + line.penalty_fen,
                                             was.fee_fen + line.fee_fen, was.interest_fen + line.interest_fen,
                                             was.principal_fen + line.principal_fen)
    return tuple(merged.values())


# -- reversal ---------------------------------------------------------------------------------------


def reverse_repayment(ports: Platform, repayment_id: int, *, idempotency_key: str, actor: str,
                      reason: str) -> Repayment:
    """Undo a ``due`` repayment by compensating entries; the same key twice reverses once."""
    with ports.db.transaction() as session:
        return reverse_repayment_in(session, ports, repayment_id, idempotency_key=idempotency_key, actor=actor,
                                    reason=reason)


def reverse_repayment_in(session: Session, ports: Platform, repayment_id: int, *, idempotency_key: str, actor: str,
                         reason: str) -> Repayment:
    """:func:`reverse_repayment` in the caller's transaction (the back office runs it when a checker approves)."""
    now = ports.clock.now()
    done = _by_key(session, idempotency_key)
    if done is not None:
        if done.reverses_id != repayment_id:
            raise DomainError(LoanErrors.REPAYMENT_KEY_REUSED)
        return done
    original = session.get(Repayment, repayment_id)
    if original is None or original.kind == "reversal":
        raise DomainError(LoanErrors.REPAYMENT_NOT_FOUND, params={"repayment_id": repayment_id})
    loan = lock_loan(session, original.loan_id)  # the loans locking protocol: before reading what changes
    assert loan is not None
    allocation = json.loads(original.allocation)
    _check_reversible(session, loan, original, allocation)
    rows = {r.period: r for r in installments_of(session, loan.id)}
    principal = 0
    for line in allocation["lines"]:
        row = rows[line["period"]]
        for bucket, column in _PAID.items():
            setattr(row, column, getattr(row, column) - line[f"{bucket.value}_fen"])
        row.paid_off_on = None if outstanding(row) else row.paid_off_on
        principal += line["principal_fen"]
    loan.principal_outstanding_fen += principal
    loan.overpayment_fen -= allocation["unapplied_fen"]
    if principal and not line_service.reserve(session, loan.credit_line_id, principal, now=now):
        raise DomainError(LoanErrors.REPAYMENT_NOT_REVERSIBLE, params={
            "repayment_id": repayment_id, "_reason_zh": "额度已被再次使用，无法收回",
            "_reason_en": "the credit it restored has been drawn again"})
    if loan.status is LoanStatus.PAID_OFF:
        loan.status, loan.closed_at = LoanStatus.ACTIVE, None  # a correction, not a business transition
    today = business_date(now)
    if any(outstanding(r) for r in rows.values() if r.due_date <= today) and loan.status is LoanStatus.ACTIVE:
        oldest = min(r.due_date for r in rows.values() if outstanding(r) and r.due_date <= today)
        if oldest < today:
            loan.status, loan.days_past_due = LoanStatus.OVERDUE, (today - oldest).days
    reversal = Repayment(
        loan_id=loan.id, idempotency_key=idempotency_key, kind="reversal", amount_fen=-original.amount_fen,
        channel=original.channel, received_on=today, posted_at=now,
        allocation=json.dumps({"reason": reason}), reverses_id=original.id,
    )
    session.add(reversal)
    session.flush()
    assert original.journal_entry_id is not None
    entry = reverse(session, entry_id=original.journal_entry_id,
                    idempotency_key=f"loan:{loan.id}:repayment:{original.id}:reversed", business_date=today,
                    now=now, memo=f"reversal of repayment {original.id}: {reason}").entry
    reversal.journal_entry_id = entry.id
    ports.audit.record(session, actor=actor, action="loan.repayment.reverse", subject=f"loan:{loan.id}",
                       details={"repayment_id": original.id, "reason": reason, "entry_id": entry.id})
    return reversal


def _check_reversible(session: Session, loan: Loan, original: Repayment, allocation: dict) -> None:
    def refuse(zh: str, en: str) -> DomainError:
        return DomainError(LoanErrors.REPAYMENT_NOT_REVERSIBLE, params={
            "repayment_id": original.id, "_reason_zh": zh, "_reason_en": en})

    if session.execute(select(Repayment.id).where(Repayment.reverses_id == original.id)).first():
        raise refuse("已冲正过", "it was reversed already")
    if original.kind != Purpose.DUE.value:
        raise refuse("提前还款改变了还款计划", "an early repayment changed the schedule")
    later = session.execute(select(Repayment.id).where(
        Repayment.loan_id == loan.id, Repayment.id > original.id, Repayment.kind != "reversal",
        ~Repayment.id.in_(select(Repayment.reverses_id).where(Repayment.reverses_id.is_not(None))),
    )).first()
    if later:
        raise refuse("其后还有未冲正的还款", "a later repayment is still in effect")
    if loan.overpayment_fen < allocation["unapplied_fen"]:
        raise refuse("溢缴款已被使用", "the overpayment it left has been applied since")


def reversal_preview(session: Session, repayment_id: int) -> tuple[int, dict[str, int], dict[str, int]]:
    """The loan of a repayment and what reversing it would change, before and after (the loan's principal
    outstanding, the money held for the borrower, the amount the repayment took); refuses as the reversal would
    today (LOAN_REPAYMENT_NOT_FOUND, LOAN_REPAYMENT_NOT_REVERSIBLE). Reads only."""
    original = session.get(Repayment, repayment_id)
    if original is None or original.kind == "reversal":
        raise DomainError(LoanErrors.REPAYMENT_NOT_FOUND, params={"repayment_id": repayment_id})
    loan = session.get_one(Loan, original.loan_id)
    allocation = json.loads(original.allocation)
    _check_reversible(session, loan, original, allocation)
    principal = sum(line["principal_fen"] for line in allocation["lines"])
    before = {"repayment_fen": original.amount_fen, "principal_outstanding_fen": loan.principal_outstanding_fen,
              "overpayment_fen": loan.overpayment_fen}
    after = {"repayment_fen": 0, "principal_outstanding_fen": loan.principal_outstanding_fen + principal,
             "overpayment_fen": loan.overpayment_fen - allocation["unapplied_fen"]}
    return loan.id, before, after
