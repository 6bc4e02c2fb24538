"""Settling a payment order: what the channel's final answer does to the business, by the order's purpose.

:mod:`payments.orders` makes an order final (``succeeded`` or ``failed``) and calls :func:`settle` in the
same transaction: a payout attempt is paid or voided on its loan (``loans.loan_service``), a collection is
posted to its loan as a repayment (and its auto-debit instruction moves on), a refund leaves cash or goes
back to the loan. Exactly once: :func:`settle` runs only in the transaction that makes the order final
(the order's row locked), and every posting is keyed by the order number.

The handlers sit here, below both modules that use them: :mod:`payments.collections` makes debit and refund
orders and :mod:`payments.orders` sends them and settles their answers through this module, so neither
imports the other in a circle. The order purposes and the auto-debit policy, which collections reads when
it starts a try and settling reads when one ends, are defined here too.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.core.clock import BUSINESS_TZ, business_date
from miaodai.core.errors import DomainError
from miaodai.core.failpoints import failpoint
from miaodai.core.ports import Platform
from miaodai.ledger.accounts import Account
from miaodai.ledger.models import JournalEntry
from miaodai.ledger.rules import credit, debit
from miaodai.ledger.service import post, reverse
from miaodai.loans import loan_service, repayment_service
from miaodai.loans.locking import lock_loan
from miaodai.loans.models import CollectionInstruction, Loan
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.loans.repayment_service import Purpose, RepaymentRequest
from miaodai.loans.states import ON_BOOK
from miaodai.payments.channel import ChannelAnswer, ChannelStatus
from miaodai.payments.models import OrderStatus, PaymentOrder, PaymentOrderEvent

log = structlog.get_logger(__name__)

# An order's purpose: what its settlement does.
DISBURSEMENT = "disbursement"  # a loan's payout attempt
REPAYMENT = "repayment"  # a debit the borrower asked for (repay now)
AUTO_DEBIT = "auto_debit"  # a debit of an end-of-day collection instruction
REFUND = "refund"  # money a loan held for the borrower, paid back
COLLECTING = (REPAYMENT, AUTO_DEBIT)

# The auto-debit policy (payments.collections starts the tries; settling one decides the next).
INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
MAX_ATTEMPTS = 4  # auto-debit tries per instruction and day
RETRY_AFTER = (timedelta(hours=2), timedelta(hours=3), timedelta(hours=4))
DAY_CUTOFF = time(21, 0)  # no auto-debit attempt starts after 21:00 Beijing time
MIN_ATTEMPT_FEN = 1_000  # 10 yuan: a smaller try is not worth a debit (and its SMS) to the borrower


class InstructionStatus:
    PENDING = "pending"  # to be tried (again) at next_attempt_at
    COLLECTING = "collecting"  # an order is at the channel
    DONE = "done"  # collected in full, or nothing was due any more
    FAILED = "failed"  # gave up for the day: overdue handling takes it from here
    EXPIRED = "expired"  # its day ended before it was ever tried (the end-of-day batch closes it)


def record_event(session: Session, order: PaymentOrder, event: str, *, at: datetime, status: str,
                 code: str | None = None, detail: str | None = None) -> None:
    """A step in the order's life, as the borrower's timeline, staff and reconciliation read it."""
    session.add(PaymentOrderEvent(order_id=order.id, at=at, event=event, status=status, code=code,
                                  detail=(detail or None) and detail[:200]))


def settle(session: Session, ports: Platform, order: PaymentOrder, answer: ChannelAnswer, *,
           now: datetime) -> None:
    """Make the order final from the channel's answer and apply its business effect, in the caller's
    transaction (``payments.orders``, holding the order's row lock)."""
    succeeded = answer.status is ChannelStatus.SUCCEEDED
    order.status = OrderStatus.SUCCEEDED if succeeded else OrderStatus.FAILED
    order.channel_txn_id = answer.channel_txn_id
    order.code, order.message = answer.code, answer.message[:200]
    order.finished_at = answer.finished_at or now
    order.settled_at, order.next_check_at = now, None
    failpoint("payments.settle.before_post")  # inside the settling transaction: dies uncommitted
    if order.purpose == DISBURSEMENT:
        assert order.loan_id is not None and order.attempt is not None
        loan_service.settle_payout_in(session, ports, order.loan_id, loan_service.PayoutResult(
            attempt=order.attempt, succeeded=succeeded, channel=order.channel, at=order.finished_at,
            reference=answer.channel_txn_id or order.order_no, reason=answer.message,
        ), actor=f"channel:{order.channel}")
    elif order.purpose in COLLECTING:
        settle_collection(session, ports, order, succeeded=succeeded, now=now)
    elif order.purpose == REFUND:
        settle_refund(session, ports, order, succeeded=succeeded, now=now)
    else:
        raise ValueError(f"payment order {order.id} has an unknown purpose {order.purpose!r}")


# -- collections ----------------------------------------------------------------------------------------


def settle_collection(session: Session, ports: Platform, order: PaymentOrder, *, succeeded: bool,
                      now: datetime) -> None:
    if succeeded:
        _post_collected(session, ports, order)
    if order.instruction_id is not None:
        _after_attempt(session, order, succeeded=succeeded, now=now)


def _post_collected(session: Session, ports: Platform, order: PaymentOrder) -> None:
    assert order.loan_id is not None and order.finished_at is not None
    actor = f"channel:{order.channel}"
    request = RepaymentRequest(
        loan_id=order.loan_id, amount_fen=order.amount_fen, idempotency_key=f"order:{order.order_no}",
        channel=order.channel, received_at=order.finished_at,
        purpose=Purpose(order.repayment_purpose or Purpose.DUE.value),
        mode=PrepaymentMode(order.prepayment_mode) if order.prepayment_mode else None)
    loan = lock_loan(session, order.loan_id)  # the loans locking protocol: lock, then read its status
    assert loan is not None
    if loan.status not in ON_BOOK:
        _hold_in_suspense(session, ports, order, actor)
        return
    try:
        repayment_service.post_in(session, ports, request, actor=actor)
    except DomainError as refused:  # refused before anything was written: the money is still posted
        if request.purpose is Purpose.DUE:
            raise
        log.warning("collection_posted_as_due", order_id=order.id, refused=refused.spec.code)
        record_event(session, order, "posted_as_due", at=ports.clock.now(), status="succeeded",
                     code=refused.spec.code)
        repayment_service.post_in(session, ports, RepaymentRequest(
            loan_id=request.loan_id, amount_fen=request.amount_fen, idempotency_key=request.idempotency_key,
            channel=request.channel, received_at=request.received_at), actor=actor)


def _hold_in_suspense(session: Session, ports: Platform, order: PaymentOrder, actor: str) -> None:
    """Money collected for a loan no longer on the book: held unmatched (Dr cash / Cr suspense) for staff
    to refund or apply; never lost, never posted to a loan that cannot take it."""
    now = ports.clock.now()
    post(session, kind="collection_unmatched", idempotency_key=f"order:{order.order_no}:suspense",
         business_date=business_date(order.finished_at or now), now=now,
         legs=[debit(Account.CASH, order.amount_fen, channel=order.channel),
               credit(Account.SUSPENSE, order.amount_fen)],
         memo=f"collection {order.order_no} for loan {order.loan_id}, no longer on the book")
    record_event(session, order, "held_in_suspense", at=now, status="succeeded")
    ports.audit.record(session, actor=actor, action="payments.collection.suspense",
                       subject=f"loan:{order.loan_id}",
                       details={"order_no": order.order_no, "amount_fen": order.amount_fen})
    log.error("collection_for_closed_loan", order_id=order.id)


def owed_today(session: Session, loan: Loan, today: date) -> int:
    """What is due on ``today`` and not paid, less what the loan already holds for the borrower."""
    rows = loan_service.installments_of(session, loan.id)
    due = sum(repayment_service.outstanding(r) for r in rows if r.due_date <= today)
    return max(due - loan.overpayment_fen, 0)


def _after_attempt(session: Session, order: PaymentOrder, *, succeeded: bool, now: datetime) -> None:
    instruction = session.execute(select(CollectionInstruction).where(
        CollectionInstruction.id == order.instruction_id).with_for_update()).scalar_one()
    instruction.last_code = order.code
    if succeeded:
        instruction.collected_fen += order.amount_fen
    retry_at = now + RETRY_AFTER[min(instruction.attempts, len(RETRY_AFTER)) - 1]
    loan = session.get(Loan, order.loan_id)
    assert loan is not None  # an auto-debit's order is for its instruction's loan
    if instruction.collected_fen >= instruction.amount_fen or (
            succeeded and owed_today(session, loan, instruction.business_date) == 0):
        instruction.status = InstructionStatus.DONE
    elif (instruction.attempts >= MAX_ATTEMPTS or (not succeeded and order.code != INSUFFICIENT_FUNDS)
          or business_date(retry_at) != instruction.business_date
          or retry_at.astimezone(BUSINESS_TZ).time() >= DAY_CUTOFF
          or (not succeeded and order.amount_fen <= MIN_ATTEMPT_FEN)):
        instruction.status = InstructionStatus.FAILED
    else:
        instruction.status, instruction.next_attempt_at = InstructionStatus.PENDING, retry_at


# -- refunds ----------------------------------------------------------------------------------------------


def settle_refund(session: Session, ports: Platform, order: PaymentOrder, *, succeeded: bool,
                  now: datetime) -> None:
    """Success: the money leaves cash. Definite failure: the order's entry is reversed and the amount is
    held for the borrower again."""
    day = business_date(now)
    assert order.loan_id is not None
    loan = lock_loan(session, order.loan_id)  # the loans locking protocol: before posting to the loan
    assert loan is not None
    if succeeded:
        post(session, kind="refund_paid", idempotency_key=f"order:{order.order_no}:paid", business_date=day, now=now,
             loan_id=order.loan_id, legs=[debit(Account.PAYOUT_IN_TRANSIT, order.amount_fen),
                                          credit(Account.CASH, order.amount_fen, channel=order.channel)],
             memo=f"refund {order.order_no} paid")
        return
    ordered = session.execute(select(JournalEntry.id).where(
        JournalEntry.idempotency_key == f"order:{order.order_no}:ordered")).scalar_one()
    reverse(session, entry_id=ordered, idempotency_key=f"order:{order.order_no}:voided", business_date=day, now=now,
            memo=f"refund {order.order_no} failed: {order.code}")
    loan.overpayment_fen += order.amount_fen
