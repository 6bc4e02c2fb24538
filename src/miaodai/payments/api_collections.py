"""Repay now (the borrower's collection), its progress, and refunds by staff. Thin: parse, call
``payments.collections``, shape the answer. Both money-moving POSTs need an ``Idempotency-Key``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from miaodai.core.idempotency import IdempotencyDep
from miaodai.deps import ContainerDep, CurrentBorrower, RowId, RowIdField
from miaodai.identity.staff_deps import require_permission
from miaodai.identity.staff_service import StaffContext
from miaodai.loans import loan_service
from miaodai.loans.api_products import Fen
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.loans.repayment_service import Purpose
from miaodai.payments import collections, order_texts
from miaodai.payments.api import MethodView, PayoutEvent, method_view
from miaodai.payments.channel import OrderKind
from miaodai.payments.models import (
    OrderStatus,
    PaymentMethod,
    PaymentMethodKind,
    PaymentOrder,
    PaymentOrderEvent,
)

router = APIRouter(tags=["repayments"])

class RepayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Purpose = Field(default=Purpose.DUE, description="due: what is due (more is held for you); payoff: "
                             "settle the whole loan today; prepayment: early partial repayment")
    amount_fen: Fen | None = Field(default=None, description="Required except for payoff (then it must equal the "
                                   "quote, or be left out)")
    mode: PrepaymentMode | None = Field(default=None, description="Prepayments: shorter term or smaller installments")
    payment_method_id: RowIdField | None = Field(default=None, description="The card or wallet; the default if absent")


class CollectionView(BaseModel):
    order_no: str
    purpose: str = Field(description="repayment (you asked) | auto_debit (on the due date) | refund (paid to you)")
    repayment_purpose: str | None
    status: OrderStatus
    status_zh: str
    status_en: str
    amount_fen: int
    method: MethodView | None
    failure_reason: str | None
    created_at: datetime
    finished_at: datetime | None
    events: list[PayoutEvent]


def _views(container: ContainerDep, borrower_id: int, orders: list[PaymentOrder]) -> list[CollectionView]:
    if not orders:
        return []
    with container.db.autocommit() as session:
        methods = {m.id: m for m in session.execute(
            select(PaymentMethod).where(PaymentMethod.borrower_id == borrower_id)).scalars()}
        events = session.execute(select(PaymentOrderEvent).where(
            PaymentOrderEvent.order_id.in_([o.id for o in orders])).order_by(PaymentOrderEvent.id)).scalars().all()
    views = []
    for order in orders:
        method = methods.get(order.payment_method_id)
        kind = method.kind if method else PaymentMethodKind.BANK_CARD
        statuses = order_texts.collection_status_texts(kind)
        zh, en = statuses[order.status.value]
        if order.purpose == collections.REFUND and order.status is OrderStatus.SUCCEEDED:
            zh, en = statuses["refunded"]
        text_of = (order_texts.payout_event_text if order.kind == OrderKind.PAYOUT.value
                   else order_texts.collection_event_text)
        views.append(CollectionView(
            order_no=order.order_no, purpose=order.purpose, repayment_purpose=order.repayment_purpose,
            status=order.status, status_zh=zh, status_en=en, amount_fen=order.amount_fen,
            method=method_view(method) if method else None,
            failure_reason=order.message if order.status is OrderStatus.FAILED else None,
            created_at=order.created_at, finished_at=order.finished_at,
            events=[PayoutEvent(at=e.at, event=e.event, channel_status=e.status, code=e.code,
                                text_zh=text[0], text_en=text[1])
                    for e in events if e.order_id == order.id and e.event != "discrepancy"
                    for text in (text_of(kind, e.event, e.status, e.code, e.detail),)],
        ))
    return views


@router.post("/v1/loans/{loan_id}/repayments", status_code=202,
             summary="Repay now from a card or wallet (Idempotency-Key): the debit is sent to the bank at once "
                     "and its result follows at GET .../repayments")
def repay(loan_id: RowId, container: ContainerDep, auth: CurrentBorrower, idem: IdempotencyDep,
          body: RepayBody = RepayBody()) -> CollectionView:
    def repaid() -> CollectionView:
        order = collections.request_repayment(
            container, auth.borrower_id, loan_id, key=idem.key, purpose=body.purpose, amount_fen=body.amount_fen,
            mode=body.mode, method_id=body.payment_method_id)
        return _views(container, auth.borrower_id, [order])[0]

    return idem.run(f"borrower:{auth.borrower_id}", status_code=202, handler=repaid)  # type: ignore[return-value]


@router.get("/v1/loans/{loan_id}/repayments",
            summary="Debits and refunds of my loan, newest first, step by step with times")
def loan_collections(loan_id: RowId, container: ContainerDep, auth: CurrentBorrower) -> list[CollectionView]:
    with container.db.autocommit() as session:
        loan_service.owned_loan(session, auth.borrower_id, loan_id)  # someone else's is as absent as none
        orders = session.execute(select(PaymentOrder).where(
            PaymentOrder.loan_id == loan_id,
            (PaymentOrder.kind == OrderKind.COLLECTION.value) | (PaymentOrder.purpose == collections.REFUND))
            .order_by(PaymentOrder.id.desc()).limit(100)).scalars().all()
    return _views(container, auth.borrower_id, list(orders))


class RefundBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_fen: Fen
    reason: str = Field(min_length=2, max_length=200, description="Why; the borrower is shown it")


Refunder = Annotated[StaffContext, Depends(require_permission("payment.refund"))]


@router.post("/v1/staff/loans/{loan_id}/refunds", status_code=202,
             summary="Pay back money the loan holds for the borrower (an overpayment) to their default method")
def refund(loan_id: RowId, body: RefundBody, staff: Refunder, container: ContainerDep,
           idem: IdempotencyDep) -> CollectionView:
    def refunded() -> CollectionView:
        order = collections.request_refund(container, loan_id, body.amount_fen, key=idem.key, reason=body.reason,
                                           actor=staff.actor)
        return _views(container, order.borrower_id, [order])[0]

    return idem.run(f"staff:{staff.actor}"[:64], status_code=202, handler=refunded)  # type: ignore[return-value]
