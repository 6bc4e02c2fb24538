"""Payment orders at the channel: stored with the change that needs them, sent, and settled exactly once.

The life of an order, and why each step is where it is:

1. **Stored** (``created``) in the same transaction as the business change — a loan's payout attempt
   — so an order exists if and only if the change does (an outbox row). One order per
   ``business_key`` ("loan:12:payout:1"), enforced by a unique constraint; the order number is the
   channel's idempotency key, so whatever we resend, the channel pays at most once per order.
2. **Sent**: the order is marked ``processing`` and committed *before* the channel is called, then
   the call is made with no transaction open. A crash on either side of the call leaves an order
   that :func:`recover` queries: ``not_found`` means it never arrived, and it is sent again under the
   same number; anything else is the channel's truth.
3. **Settled**: a final answer — from the submit, a signed callback or a query — is applied in one
   transaction with the business effect (the loan's payout entry and activation, or its voiding; a
   collection's repayment posting; a refund's: :mod:`payments.settlement`, by the order's purpose).
   Final states never change again; a later contradicting answer is recorded as a discrepancy for
   reconciliation, never posted. ``unknown`` and indefinite failures (SYSTEMERROR) are not failures:
   the order stays ``processing`` and is queried until the channel knows.

So a payout attempt is paid at most once (one order number), a new attempt exists only after a
definite failure of the previous one, and nothing is lost: every order not final is in
:func:`recover`'s reach.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from miaodai.core.errors import DomainError
from miaodai.core.failpoints import failpoint
from miaodai.core.ports import Platform
from miaodai.core.providers import ProviderTimeout
from miaodai.identity.models import KYC_NAME_FIELD, KycIdentity
from miaodai.loans.models import Loan
from miaodai.payments import settlement
from miaodai.payments.channel import CallbackRejected, ChannelAnswer, ChannelOrder, ChannelStatus, OrderKind
from miaodai.payments.errors import PaymentErrors
from miaodai.payments.models import (
    CARD_NUMBER_FIELD,
    ChannelCallback,
    OrderStatus,
    PaymentMethod,
    PaymentMethodStatus,
    PaymentOrder,
    PaymentOrderEvent,
)
from miaodai.payments.ports import PaymentPorts
from miaodai.payments.settlement import DISBURSEMENT, record_event

log = structlog.get_logger(__name__)

# When to ask the channel about an order still processing: soon, then less and less often.
CHECK_DELAYS = (timedelta(seconds=10), timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
                timedelta(minutes=30), timedelta(hours=2))


def _next_check(now: datetime, checks: int) -> datetime:
    return now + CHECK_DELAYS[min(checks, len(CHECK_DELAYS) - 1)]


def new_order_no(now: datetime) -> str:
    return f"MD{now:%Y%m%d}{secrets.token_hex(8).upper()}"


def payout_method(session: Session, borrower_id: int) -> PaymentMethod:
    """The borrower's default active method, which the loan is paid out to."""
    method = session.execute(
        select(PaymentMethod).where(PaymentMethod.borrower_id == borrower_id,
                                    PaymentMethod.status == PaymentMethodStatus.ACTIVE)
        .order_by(PaymentMethod.is_default.desc(), PaymentMethod.id)
    ).scalars().first()
    if method is None:
        raise DomainError(PaymentErrors.PAYOUT_METHOD_REQUIRED)
    return method


def create_order(session: Session, ports: PaymentPorts, *, kind: OrderKind, purpose: str, business_key: str,
                 borrower_id: int, loan_id: int | None, method: PaymentMethod, amount_fen: int, now: datetime,
                 attempt: int | None = None, repayment_purpose: str | None = None,
                 prepayment_mode: str | None = None, instruction_id: int | None = None,
                 note: str | None = None, request_key: str | None = None) -> PaymentOrder:
    """Store an order in the caller's transaction, with the business change that needs it (the outbox):
    it is sent after that transaction commits, or by :func:`recover` if the process dies first."""
    if amount_fen <= 0:
        raise ValueError("a payment order is a positive amount of fen")
    # Every caller holds the loan already (locked): the session's identity map answers, no query.
    loan = session.get(Loan, loan_id) if loan_id is not None else None
    order = PaymentOrder(
        order_no=new_order_no(now), business_key=business_key, kind=kind.value, purpose=purpose,
        channel=ports.channel.name, borrower_id=borrower_id, loan_id=loan_id,
        product_id=loan.product_id if loan is not None else None, attempt=attempt,
        payment_method_id=method.id, amount_fen=amount_fen, status=OrderStatus.CREATED, created_at=now,
        next_check_at=now, checks=0, repayment_purpose=repayment_purpose, prepayment_mode=prepayment_mode,
        instruction_id=instruction_id, note=note, request_key=request_key,
    )
    session.add(order)
    session.flush()
    record_event(session, order, "created", at=now, status=OrderStatus.CREATED.value)
    return order


def create_payout_order(session: Session, ports: PaymentPorts, loan: Loan, *, now: datetime,
                        request_key: str | None = None) -> PaymentOrder:
    """The order of the loan's current payout attempt, stored in the caller's transaction."""
    return create_order(session, ports, kind=OrderKind.PAYOUT, purpose=DISBURSEMENT,
                        business_key=f"loan:{loan.id}:payout:{loan.payout_attempts}", borrower_id=loan.borrower_id,
                        loan_id=loan.id, method=payout_method(session, loan.borrower_id), amount_fen=loan.principal_fen,
                        now=now, attempt=loan.payout_attempts, request_key=request_key)


class LoanPayouts:
    """The payment orders of loans' payouts, as the loans domain asks for them (``loans.ports.PayoutOrders``;
    the container builds one and hands itself in as the port)."""

    def __init__(self, ports: PaymentPorts) -> None:
        self._ports = ports

    def ordered_by(self, session: Session, loan_id: int, request_key: str) -> bool:
        return payout_ordered_by(session, loan_id, request_key)

    def order(self, session: Session, loan: Loan, *, now: datetime, request_key: str | None) -> None:
        create_payout_order(session, self._ports, loan, now=now, request_key=request_key)

    def send(self, loan_id: int) -> None:
        send_loan_payout(self._ports, loan_id)

    def require_method(self, session: Session, borrower_id: int) -> None:
        payout_method(session, borrower_id)


def payout_ordered_by(session: Session, loan_id: int, request_key: str) -> bool:
    """Whether the request under ``request_key`` already ordered a payout of the loan."""
    return session.execute(select(PaymentOrder.id).where(
        PaymentOrder.loan_id == loan_id, PaymentOrder.purpose == DISBURSEMENT,
        PaymentOrder.request_key == request_key)).first() is not None


def _channel_order(session: Session, ports: Platform, order: PaymentOrder) -> ChannelOrder:
    method = session.get(PaymentMethod, order.payment_method_id)
    name_enc = session.execute(
        select(KycIdentity.name_enc).where(KycIdentity.borrower_id == order.borrower_id)).scalar_one()
    vault = ports.vault
    return ChannelOrder(
        order_no=order.order_no, kind=OrderKind(order.kind), amount_fen=order.amount_fen,
        account_no=vault.decrypt(method.number_enc, CARD_NUMBER_FIELD),
        account_name=vault.decrypt(name_enc, KYC_NAME_FIELD), bank_code=method.bank_code,
        notify_url=f"{ports.settings.public_base_url.rstrip('/')}/v1/payments/callbacks/{order.channel}",
        account_kind=method.kind.value, agreement_no=method.agreement_no,
    )


def send(ports: PaymentPorts, order_id: int, *, resend: bool = False) -> PaymentOrder:
    """Send an order that was stored but not sent (or, with ``resend``, one the channel said it never
    received); apply the answer. Anything else is left alone: someone already sent it."""
    failpoint("payments.send.before_mark")  # stored (created), not yet marked as sent
    now = ports.clock.now()
    with ports.db.transaction() as session:
        order = session.execute(select(PaymentOrder).where(PaymentOrder.id == order_id).with_for_update()).scalar_one()
        wanted = OrderStatus.PROCESSING if resend else OrderStatus.CREATED
        if order.status is not wanted:
            return order
        order.status, order.sent_at, order.next_check_at = OrderStatus.PROCESSING, now, _next_check(now, 0)
        record_event(session, order, "sent", at=now, status=OrderStatus.PROCESSING.value)
        request = _channel_order(session, ports, order)
    # Committed as processing before the call: a crash from here on leaves an order recover() queries.
    failpoint("payments.send.before_submit")  # marked processing, the channel not yet called
    try:
        answer = ports.channel.submit(request)
        failpoint("payments.send.after_submit")  # the channel has the order; its answer is not stored
    except ProviderTimeout:
        with ports.db.transaction() as session:
            order = session.get(PaymentOrder, order_id)
            record_event(session, order, "no_answer", at=ports.clock.now(), status=ChannelStatus.UNKNOWN.value)
        return order
    return apply_answer(ports, answer, event="answered").order or order


@dataclass(frozen=True)
class Applied:
    order: PaymentOrder | None
    outcome: str  # applied | pending | duplicate | stale | discrepancy | unknown_order | not_found


def apply_answer(ports: PaymentPorts, answer: ChannelAnswer, *, event: str) -> Applied:
    """Apply one channel answer (a synchronous answer, a query, a callback, a reconciliation line) to its
    order, in one transaction with the order row locked: recorded as an event, and settled (exactly once,
    by :mod:`payments.settlement`) when it makes the order final. ``event`` names where it came from."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        order = session.execute(
            select(PaymentOrder).where(PaymentOrder.order_no == answer.order_no).with_for_update()
        ).scalar_one_or_none()
        if order is None:
            log.warning("payment_answer_for_unknown_order", event=event, status=answer.status.value)
            return Applied(None, "unknown_order")
        record_event(session, order, event, at=now, status=answer.status.value, code=answer.code,
               detail=answer.message)
        if order.status in (OrderStatus.SUCCEEDED, OrderStatus.FAILED):
            final_says = OrderStatus.SUCCEEDED if answer.status is ChannelStatus.SUCCEEDED else (
                OrderStatus.FAILED if answer.is_definite_failure else None)
            if final_says is None:
                return Applied(order, "stale")  # e.g. a "processing" callback arriving after the result
            if final_says is order.status:
                return Applied(order, "duplicate")
            record_event(session, order, "discrepancy", at=now, status=answer.status.value, code=answer.code,
                   detail=f"order already {order.status.value}")
            log.error("payment_discrepancy", order_id=order.id, ours=order.status.value, channel=answer.status.value)
            return Applied(order, "discrepancy")
        if answer.status is ChannelStatus.SUCCEEDED and answer.amount_fen not in (None, order.amount_fen):
            record_event(session, order, "discrepancy", at=now, status=answer.status.value, code=answer.code,
                   detail=f"channel amount {answer.amount_fen} != ours {order.amount_fen}")
            order.next_check_at = None  # for staff and reconciliation, not for automatic settlement
            log.error("payment_amount_mismatch", order_id=order.id)
            return Applied(order, "discrepancy")
        if answer.status is ChannelStatus.SUCCEEDED or answer.is_definite_failure:
            settlement.settle(session, ports, order, answer, now=now)
            return Applied(order, "applied")
        if event == "queried":  # the schedule counts our queries: a submit's "processing" is checked after 10 s
            order.checks += 1
        order.code = answer.code
        order.next_check_at = _next_check(now, order.checks)
        if answer.status is ChannelStatus.NOT_FOUND:
            return Applied(order, "not_found")
        return Applied(order, "pending")


def check(ports: PaymentPorts, order_id: int) -> PaymentOrder:
    """Ask the channel about an order still processing; send it again if the channel never got it."""
    with ports.db.autocommit() as session:
        order = session.get(PaymentOrder, order_id)
    if order is None or order.status is not OrderStatus.PROCESSING:
        return order
    try:
        answer = ports.channel.query(order.order_no)
    except ProviderTimeout:
        return order
    applied = apply_answer(ports, answer, event="queried")
    if applied.outcome == "not_found":
        return send(ports, order_id, resend=True)
    return applied.order or order


def recover(ports: PaymentPorts, *, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Send what was stored but never sent, and query what is processing and due for a check.
    Safe to run at any time, from any number of processes (each order is locked while it moves)."""
    now = now or ports.clock.now()
    with ports.db.autocommit() as session:
        due = session.execute(
            select(PaymentOrder.id, PaymentOrder.status)
            .where(or_(PaymentOrder.status == OrderStatus.CREATED,
                       (PaymentOrder.status == OrderStatus.PROCESSING) & (PaymentOrder.next_check_at <= now)))
            .order_by(PaymentOrder.id).limit(limit)
        ).all()
    counts = {"sent": 0, "checked": 0}
    for order_id, status in due:
        if status is OrderStatus.CREATED:
            send(ports, order_id)
            counts["sent"] += 1
        else:
            check(ports, order_id)
            counts["checked"] += 1
    return counts


def receive_callback(ports: PaymentPorts, channel_name: str, body: bytes,
                     headers: dict[str, str]) -> tuple[int, bytes]:
    """A channel's callback: believed only with a valid signature, applied once, always recorded.
    Returns the HTTP status and body to answer with (the channel's exact ack once it is applied)."""
    channel = ports.channel
    now = ports.clock.now()
    digest = hashlib.sha256(body).hexdigest()
    if channel_name != channel.name:
        return 404, b"unknown channel"
    try:
        answer = channel.parse_callback(body, headers)
    except CallbackRejected as exc:
        log.warning("payment_callback_rejected", channel=channel_name, reason=exc.reason)
        with ports.db.transaction() as session:
            session.add(ChannelCallback(channel=channel_name, received_at=now, verified=False, outcome="rejected",
                                        body_sha256=digest))
        return 400, b"invalid signature"
    failpoint("payments.callback.verified")  # believed, nothing applied yet
    applied = apply_answer(ports, answer, event="callback")
    with ports.db.transaction() as session:
        session.add(ChannelCallback(channel=channel_name, received_at=now, verified=True, notify_id=answer.notify_id,
                                    order_no=answer.order_no, outcome=applied.outcome, body_sha256=digest))
    return 200, channel.ack_body


def loan_payouts(ports: Platform, loan_id: int) -> list[tuple[PaymentOrder, list[PaymentOrderEvent]]]:
    """The payout orders of a loan with their events, oldest first: what the borrower's timeline shows."""
    with ports.db.autocommit() as session:
        orders = session.execute(select(PaymentOrder).where(PaymentOrder.loan_id == loan_id,
                                                            PaymentOrder.purpose == DISBURSEMENT)
                                 .order_by(PaymentOrder.id)).scalars().all()
        events = session.execute(select(PaymentOrderEvent).where(PaymentOrderEvent.order_id.in_([o.id for o in orders]))
                                 .order_by(PaymentOrderEvent.id)).scalars().all() if orders else []
    return [(order, [e for e in events if e.order_id == order.id]) for order in orders]


def send_loan_payout(ports: PaymentPorts, loan_id: int) -> PaymentOrder | None:
    """Send the loan's payout order that is waiting (called right after the signing commits; recover()
    sends it instead if this process dies first)."""
    with ports.db.autocommit() as session:
        order_id = session.execute(
            select(PaymentOrder.id).where(PaymentOrder.loan_id == loan_id, PaymentOrder.purpose == DISBURSEMENT,
                                          PaymentOrder.status == OrderStatus.CREATED)
        ).scalar_one_or_none()
    return send(ports, order_id) if order_id is not None else None
