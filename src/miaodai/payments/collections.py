"""Collections (代扣) and refunds: money taken from a borrower's card or wallet for a loan, and money
held for a borrower paid back — each as one payment order at the channel (:mod:`payments.orders`).

Three ways money is collected, all posted through the loan engine's repayment posting
(:func:`miaodai.loans.repayment_service.post_in`) in the transaction that settles the order
(:mod:`payments.settlement`, which also holds the purposes and the auto-debit policy), under the order
number as its key, so a collection is posted once whatever answers arrive and in whatever order:

* **Repay now** (:func:`request_repayment`): the borrower chooses what to pay (what is due, a payoff,
  or a partial prepayment) and a method; the order is keyed by the request's ``Idempotency-Key``, so a
  retried tap finds the order it already made, even after the key layer has forgotten the request.
* **Auto-debit** (:func:`run_auto_debit`): the end-of-day batch leaves an instruction per installment
  falling due; on the day, the worker collects it from the default method. Never more than is due at
  that moment (a borrower who repaid meanwhile is not debited again); after *insufficient funds* it
  tries again later the same day for a smaller amount (half the last try: 阶梯扣款), so a partly
  funded card still pays part, and stops at :data:`~payments.settlement.MAX_ATTEMPTS` or the day's cut-off.
* Whatever the purpose, a loan has at most one collection at the channel at a time (checked under
  the loan's row lock), so two collections can never both take the same money.

Money that arrives for a purpose that no longer fits (a payoff quoted yesterday and collected today,
a prepayment the loan no longer allows) is posted as an ordinary repayment — more than is due is held
for the borrower — and money for a loan no longer on the book (written off while the debit was out) is
held in suspense for staff. Money the channel took is never refused.

Refunds (:func:`request_refund`) pay back what a loan holds for the borrower (an overpayment) as a
payout order: the held amount moves to "payout in transit" when the order is made and leaves cash when
the channel confirms; a definite failure puts it back.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from miaodai.core.clock import BUSINESS_TZ, business_date
from miaodai.core.db import rows_changed, table_of
from miaodai.core.errors import DomainError
from miaodai.core.money import Money
from miaodai.ledger.accounts import Account
from miaodai.ledger.rules import credit, debit
from miaodai.ledger.service import post
from miaodai.loans import loan_service, repayment_service
from miaodai.loans.errors import LoanErrors
from miaodai.loans.locking import lock_loan
from miaodai.loans.models import CollectionInstruction, Loan, LoanInstallment
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.loans.repayment_service import Purpose
from miaodai.loans.states import ON_BOOK
from miaodai.payments import orders
from miaodai.payments.channel import OrderKind
from miaodai.payments.errors import PaymentErrors
from miaodai.payments.models import OrderStatus, PaymentMethod, PaymentMethodStatus, PaymentOrder
from miaodai.payments.ports import PaymentPorts
from miaodai.payments.settlement import (
    AUTO_DEBIT,
    DAY_CUTOFF,
    INSUFFICIENT_FUNDS,
    MIN_ATTEMPT_FEN,
    REFUND,
    REPAYMENT,
    InstructionStatus,
    owed_today,
)

# -- repay now -----------------------------------------------------------------------------------------


def request_repayment(ports: PaymentPorts, borrower_id: int, loan_id: int, *, key: str, purpose: Purpose,
                      amount_fen: int | None, mode: PrepaymentMode | None,
                      method_id: int | None) -> PaymentOrder:
    """Collect a repayment the borrower asked for, from ``method_id`` (the default method if None)."""
    now = ports.clock.now()
    business_key = f"loan:{loan_id}:repay:{hashlib.sha256(key.encode()).hexdigest()[:40]}"
    with ports.db.transaction() as session:
        loan = loan_service.owned_loan(session, borrower_id, loan_id, lock=True)
        existing = session.execute(select(PaymentOrder).where(PaymentOrder.business_key == business_key)
                                   ).scalar_one_or_none()
        if existing is not None:
            _same_request(existing, purpose, amount_fen, mode, method_id)
            return existing
        if loan.status not in ON_BOOK:
            raise DomainError(LoanErrors.NOT_REPAYABLE, params={"status": loan.status.value})
        _refuse_if_collecting(session, loan.id)
        amount = _amount(session, loan, purpose, amount_fen, mode, business_date(now))
        method = _collecting_method(session, borrower_id, method_id)
        order = orders.create_order(
            session, ports, kind=OrderKind.COLLECTION, purpose=REPAYMENT, business_key=business_key,
            borrower_id=borrower_id, loan_id=loan.id, method=method, amount_fen=amount, now=now,
            repayment_purpose=purpose.value, prepayment_mode=mode.value if mode else None)
        ports.audit.record(session, actor=f"borrower:{borrower_id}", action="payments.repayment.requested",
                           subject=f"loan:{loan.id}", details={"order_no": order.order_no, "amount_fen": amount,
                                                              "purpose": purpose.value})
        order_id = order.id
    return orders.send(ports, order_id)


def _same_request(order: PaymentOrder, purpose: Purpose, amount_fen: int | None, mode: PrepaymentMode | None,
                  method_id: int | None) -> None:
    if (order.repayment_purpose != purpose.value or (amount_fen is not None and amount_fen != order.amount_fen)
            or (mode.value if mode else None) != order.prepayment_mode
            or (method_id is not None and method_id != order.payment_method_id)):
        raise DomainError(LoanErrors.REPAYMENT_KEY_REUSED)


def _refuse_if_collecting(session: Session, loan_id: int) -> None:
    """One collection at the channel per loan (the caller holds the loan's row lock)."""
    busy = _debit_in_flight(session, loan_id)
    if busy is not None:
        raise DomainError(PaymentErrors.REPAYMENT_IN_PROGRESS, params={"order_no": busy})


def _debit_in_flight(session: Session, loan_id: int) -> str | None:
    """The order number of the loan's collection still at the channel, if any."""
    return session.execute(
        select(PaymentOrder.order_no).where(
            PaymentOrder.loan_id == loan_id, PaymentOrder.kind == OrderKind.COLLECTION.value,
            PaymentOrder.status.in_((OrderStatus.CREATED, OrderStatus.PROCESSING)))
    ).scalars().first()


def _amount(session: Session, loan: Loan, purpose: Purpose, amount_fen: int | None, mode: PrepaymentMode | None,
            today: date) -> int:
    """What to collect, checked now so a refusal comes before any money moves."""
    payoff = repayment_service.payoff_quote(session, loan, today).total_fen
    if purpose is Purpose.PAYOFF:
        if amount_fen is not None and amount_fen != payoff:
            raise DomainError(PaymentErrors.PAYOFF_AMOUNT_CHANGED, params={
                "payoff_yuan": Money(payoff).to_yuan(), "amount_yuan": Money(amount_fen).to_yuan()})
        return payoff
    if amount_fen is None:
        raise DomainError(PaymentErrors.REPAYMENT_AMOUNT_REQUIRED)
    if amount_fen > payoff:
        raise DomainError(PaymentErrors.REPAYMENT_MORE_THAN_OWED, params={
            "amount_yuan": Money(amount_fen).to_yuan(), "payoff_yuan": Money(payoff).to_yuan()})
    if purpose is Purpose.PREPAYMENT:  # raises PREPAYMENT_TOO_SMALL with what is due and accrued
        repayment_service.prepayment_plan(session, loan, amount_fen, mode or PrepaymentMode.SHORTER_TERM, today)
    return amount_fen


def _collecting_method(session: Session, borrower_id: int, method_id: int | None) -> PaymentMethod:
    if method_id is None:
        method = orders.payout_method(session, borrower_id)
    else:
        method = session.get(PaymentMethod, method_id)
        if method is None or method.borrower_id != borrower_id or method.status is not PaymentMethodStatus.ACTIVE:
            raise DomainError(PaymentErrors.METHOD_NOT_FOUND)
    if not method.auto_debit:
        raise DomainError(PaymentErrors.METHOD_CANNOT_COLLECT, params={"last4": method.last4 or ""})
    return method


# -- auto-debit -------------------------------------------------------------------------------------------


def run_auto_debit(ports: PaymentPorts, *, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Try today's auto-debit instructions that are due: one order each, at most one per loan at a time.
    Safe to run from any number of workers (each instruction is claimed under its loan's row lock and its own)."""
    now = now or ports.clock.now()
    today = business_date(now)
    counts = {"debits": 0, "settled_without_debit": _fail_without_method(ports, today, now), "waiting": 0}
    with ports.db.autocommit() as session:
        due = session.execute(
            select(CollectionInstruction.id).where(
                CollectionInstruction.business_date == today,
                CollectionInstruction.status == InstructionStatus.PENDING,
                (CollectionInstruction.next_attempt_at.is_(None)) | (CollectionInstruction.next_attempt_at <= now))
            .order_by(CollectionInstruction.id).limit(limit)
        ).scalars().all()
    for instruction_id in due:
        outcome, order_id = _start_attempt(ports, instruction_id, now)
        counts[outcome] += 1
        if order_id is not None:
            orders.send(ports, order_id)
    return counts


def _fail_without_method(ports: PaymentPorts, today: date, now: datetime) -> int:
    """Today's due instructions of borrowers with no method that allows auto-debit, ended
    ``NO_AUTO_DEBIT_METHOD`` by one UPDATE: the outcome :func:`_start_attempt` gives each of them, without a
    transaction and a loan lock apiece (a defaulter whose salary went to a card the lender cannot debit has
    an instruction per unpaid installment every day, the bulk of a book's instructions).

    Only the rows :func:`_start_attempt` would end that way: before the day's cut-off, something still to
    collect on the instruction and owed on its loan today (what is due less what the loan holds), no
    collection at the channel for the loan (that one waits), and no active auto-debit method. Nothing moves
    money here, so no loan is locked (as for the batch's instructions); a row another worker took meanwhile
    is no longer ``pending`` and is left alone (the condition is checked again on the row itself), and a row
    another worker holds right now is skipped (``FOR UPDATE OF collection_instructions SKIP LOCKED`` on
    PostgreSQL): two workers never wait on each other's rows, so never deadlock, and the one-by-one pass that
    follows meets the skipped row under its lock."""
    if now.astimezone(BUSINESS_TZ).time() >= DAY_CUTOFF:
        return 0
    instructions, loans, items = (table_of(CollectionInstruction), table_of(Loan), table_of(LoanInstallment))
    methods, debits = table_of(PaymentMethod), table_of(PaymentOrder)
    unpaid = (items.c.principal_fen + items.c.interest_fen + items.c.fee_fen + items.c.penalty_fen
              - items.c.principal_paid_fen - items.c.interest_paid_fen - items.c.fee_paid_fen
              - items.c.penalty_paid_fen)
    owed = (select(func.coalesce(func.sum(unpaid), 0)).where(items.c.loan_id == loans.c.id, items.c.due_date <= today)
            .scalar_subquery())
    can_debit = select(methods.c.id).where(
        methods.c.borrower_id == loans.c.borrower_id, methods.c.status == PaymentMethodStatus.ACTIVE,
        methods.c.auto_debit.is_(True)).exists()
    collecting = select(debits.c.id).where(
        debits.c.loan_id == loans.c.id, debits.c.kind == OrderKind.COLLECTION.value,
        debits.c.status.in_((OrderStatus.CREATED, OrderStatus.PROCESSING))).exists()
    pending = ((instructions.c.business_date == today) & (instructions.c.status == InstructionStatus.PENDING)
               & (instructions.c.next_attempt_at.is_(None) | (instructions.c.next_attempt_at <= now)))
    hopeless = select(instructions.c.id).join(loans, loans.c.id == instructions.c.loan_id).where(
        pending, instructions.c.amount_fen > instructions.c.collected_fen, loans.c.status.in_(ON_BOOK),
        owed > loans.c.overpayment_fen, ~collecting, ~can_debit).with_for_update(of=instructions, skip_locked=True)
    with ports.db.transaction() as session:
        return rows_changed(session.execute(
            update(instructions).where(instructions.c.id.in_(hopeless), pending)
            .values(status=InstructionStatus.FAILED, last_code="NO_AUTO_DEBIT_METHOD")))


def _start_attempt(ports: PaymentPorts, instruction_id: int, now: datetime) -> tuple[str, int | None]:
    today = business_date(now)
    with ports.db.transaction() as session:
        loan_id = session.execute(select(CollectionInstruction.loan_id)
                                  .where(CollectionInstruction.id == instruction_id)).scalar_one()
        loan = lock_loan(session, loan_id)
        assert loan is not None
        # Its own row lock too: the bulk UPDATE above ends instructions without the loan's lock.
        instruction = session.get(CollectionInstruction, instruction_id, with_for_update=True,
                                  populate_existing=True)
        if instruction.status != InstructionStatus.PENDING:
            return "waiting", None  # another worker took it
        if now.astimezone(BUSINESS_TZ).time() >= DAY_CUTOFF:
            instruction.status, instruction.last_code = InstructionStatus.FAILED, "DAY_CUTOFF"
            return "settled_without_debit", None
        owed = owed_today(session, loan, today) if loan.status in ON_BOOK else 0
        wanted = min(instruction.amount_fen - instruction.collected_fen, owed)
        if wanted <= 0:
            instruction.status, instruction.last_code = InstructionStatus.DONE, "NOTHING_DUE"
            return "settled_without_debit", None
        if _debit_in_flight(session, loan.id) is not None:
            instruction.next_attempt_at = now + timedelta(minutes=5)
            return "waiting", None
        method = _auto_debit_method(session, loan.borrower_id)
        if method is None:
            instruction.status, instruction.last_code = InstructionStatus.FAILED, "NO_AUTO_DEBIT_METHOD"
            return "settled_without_debit", None
        amount = _attempt_amount(session, instruction, wanted)
        instruction.attempts += 1
        instruction.status = InstructionStatus.COLLECTING
        order = orders.create_order(
            session, ports, kind=OrderKind.COLLECTION, purpose=AUTO_DEBIT,
            business_key=f"instruction:{instruction.id}:attempt:{instruction.attempts}",
            borrower_id=loan.borrower_id, loan_id=loan.id, method=method, amount_fen=amount, now=now,
            repayment_purpose=Purpose.DUE.value, instruction_id=instruction.id)
        return "debits", order.id


def _auto_debit_method(session: Session, borrower_id: int) -> PaymentMethod | None:
    """The default method if it allows auto-debit, else the oldest active one that does."""
    return session.execute(
        select(PaymentMethod).where(PaymentMethod.borrower_id == borrower_id,
                                    PaymentMethod.status == PaymentMethodStatus.ACTIVE,
                                    PaymentMethod.auto_debit.is_(True))
        .order_by(PaymentMethod.is_default.desc(), PaymentMethod.id)
    ).scalars().first()


def _attempt_amount(session: Session, instruction: CollectionInstruction, wanted: int) -> int:
    """The full amount wanted, unless the last try found too little money: then half that try (阶梯扣款)."""
    last = session.execute(
        select(PaymentOrder.amount_fen, PaymentOrder.status, PaymentOrder.code)
        .where(PaymentOrder.instruction_id == instruction.id).order_by(PaymentOrder.id.desc()).limit(1)
    ).first()
    if last is not None and last.status is OrderStatus.FAILED and last.code == INSUFFICIENT_FUNDS:
        return min(wanted, max(last.amount_fen // 2, MIN_ATTEMPT_FEN))
    return wanted


# -- refunds ----------------------------------------------------------------------------------------------


def request_refund(ports: PaymentPorts, loan_id: int, amount_fen: int, *, key: str, reason: str,
                   actor: str) -> PaymentOrder:
    """Pay back money a loan holds for its borrower (an overpayment) to the borrower's default method."""
    with ports.db.transaction() as session:
        order_id = order_refund_in(session, ports, loan_id, amount_fen, key=key, reason=reason, actor=actor).id
    return orders.send(ports, order_id)


def order_refund_in(session: Session, ports: PaymentPorts, loan_id: int, amount_fen: int, *, key: str, reason: str,
                    actor: str) -> PaymentOrder:
    """:func:`request_refund`'s order, stored in the caller's transaction (the back office runs it when a checker
    approves); the caller sends it with ``orders.send`` after the commit. The same key twice orders once."""
    now = ports.clock.now()
    business_key = f"loan:{loan_id}:refund:{hashlib.sha256(key.encode()).hexdigest()[:40]}"
    loan = lock_loan(session, loan_id)
    if loan is None:
        raise DomainError(LoanErrors.LOAN_NOT_FOUND, params={"loan_id": loan_id})
    existing = session.execute(select(PaymentOrder).where(PaymentOrder.business_key == business_key)
                               ).scalar_one_or_none()
    if existing is not None:
        if existing.amount_fen != amount_fen:
            raise DomainError(LoanErrors.REPAYMENT_KEY_REUSED)
        return existing
    if amount_fen > loan.overpayment_fen:
        raise DomainError(PaymentErrors.REFUND_MORE_THAN_HELD, params={
            "amount_yuan": Money(amount_fen).to_yuan(), "held_yuan": Money(loan.overpayment_fen).to_yuan()})
    method = orders.payout_method(session, loan.borrower_id)
    order = orders.create_order(session, ports, kind=OrderKind.PAYOUT, purpose=REFUND,
                                business_key=business_key, borrower_id=loan.borrower_id, loan_id=loan.id,
                                method=method, amount_fen=amount_fen, now=now, note=reason[:200])
    post(session, kind="refund_ordered", idempotency_key=f"order:{order.order_no}:ordered",
         business_date=business_date(now), now=now, loan_id=loan.id,
         legs=[debit(Account.OVERPAYMENT_LIABILITY, amount_fen), credit(Account.PAYOUT_IN_TRANSIT, amount_fen)],
         memo=f"refund {order.order_no}: {reason[:80]}")
    loan.overpayment_fen -= amount_fen
    ports.audit.record(session, actor=actor, action="payments.refund.requested", subject=f"loan:{loan.id}",
                       details={"order_no": order.order_no, "amount_fen": amount_fen, "reason": reason[:200]})
    return order
