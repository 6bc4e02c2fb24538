"""What the borrower is shown of payments — bindings, methods, payout attempts and debits with their steps —
as the payments routers answer it and the app's pages (``miaodai.web``) render it: one shape for both, so a
page never shows more or other than the API (never more of a card than BIN + last 4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import select

from miaodai.core.masking import mask_phone
from miaodai.core.ports import Platform
from miaodai.loans import loan_service
from miaodai.payments import bins, order_texts, orders
from miaodai.payments.channel import OrderKind
from miaodai.payments.models import (
    RESERVED_PHONE_FIELD,
    BindingStatus,
    CardBinding,
    OrderStatus,
    PaymentMethod,
    PaymentMethodKind,
    PaymentOrder,
    PaymentOrderEvent,
)
from miaodai.payments.settlement import REFUND

_NO_AUTO_DEBIT = ("该银行暂不支持自动扣款，到期请手动还款，或绑定支持自动扣款的卡。",
                  "This bank does not support automatic debit: repay by hand when due, or bind a card that does.")


class Bank(BaseModel):
    code: str
    name_zh: str
    name_en: str


class BindingView(BaseModel):
    binding_id: str
    status: BindingStatus
    bank: Bank
    card_type: str
    last4: str
    code_sent_to: str = Field(description="The reserved phone, masked")
    expires_at: datetime
    auto_debit: bool
    notice_zh: str | None = None
    notice_en: str | None = None


class MethodView(BaseModel):
    id: int
    kind: PaymentMethodKind
    bank: Bank | None
    card_type: str | None
    bin: str | None
    last4: str | None
    masked_login: str | None = Field(default=None, description="E-wallets: the wallet login, masked to its last 4")
    auto_debit: bool
    is_default: bool
    bound_at: datetime
    notice_zh: str | None = None
    notice_en: str | None = None


def _bank(code: str | None) -> Bank | None:
    info = bins.bank(code) if code else None
    return Bank(code=info.code, name_zh=info.name_zh, name_en=info.name_en) if info else None


def _notice(auto_debit: bool) -> dict[str, str | None]:
    zh, en = (None, None) if auto_debit else _NO_AUTO_DEBIT
    return {"notice_zh": zh, "notice_en": en}


def binding_view(ports: Platform, binding: CardBinding) -> BindingView:
    phone = ports.vault.decrypt(binding.reserved_phone_enc, RESERVED_PHONE_FIELD)
    bank = _bank(binding.bank_code)
    assert bank is not None  # a binding is started only for a supported bank's card
    return BindingView(
        binding_id=binding.token, status=binding.status, bank=bank,
        card_type=binding.card_type, last4=binding.last4, code_sent_to=mask_phone(phone),
        expires_at=binding.expires_at, auto_debit=binding.auto_debit, **_notice(binding.auto_debit),
    )


def method_view(method: PaymentMethod) -> MethodView:
    return MethodView(
        id=method.id, kind=method.kind, bank=_bank(method.bank_code), card_type=method.card_type, bin=method.bin,
        last4=method.last4, masked_login=None if method.kind is PaymentMethodKind.BANK_CARD else f"****{method.last4}",
        auto_debit=method.auto_debit, is_default=method.is_default, bound_at=method.bound_at,
        **_notice(method.auto_debit),
    )


class PayoutEvent(BaseModel):
    at: datetime
    event: str
    channel_status: str
    code: str | None
    text_zh: str
    text_en: str


class PayoutView(BaseModel):
    attempt: int
    order_no: str
    status: OrderStatus
    status_zh: str
    status_en: str
    amount_fen: int
    account_kind: str = Field(description="What the payout is paid into: bank_card | alipay | wechat_pay; "
                              "the texts name it (the bank, Alipay, WeChat Pay)")
    card: MethodView | None
    failure_reason: str | None
    events: list[PayoutEvent]


def payout_views(ports: Platform, borrower_id: int, loan_id: int) -> list[PayoutView]:
    """Each payout attempt of the borrower's loan, step by step with times (someone else's loan is as absent
    as none: ``LOAN_NOT_FOUND``)."""
    with ports.db.transaction() as session:
        loan_service.owned_loan(session, borrower_id, loan_id)
        cards = {m.id: m for m in session.execute(
            select(PaymentMethod).where(PaymentMethod.borrower_id == borrower_id)).scalars()}
    views = []
    for order, events in orders.loan_payouts(ports, loan_id):
        card = cards.get(order.payment_method_id)
        kind = card.kind if card else PaymentMethodKind.BANK_CARD
        zh, en = order_texts.payout_status_texts(kind)[order.status.value]
        views.append(PayoutView(
            attempt=order.attempt or 0, order_no=order.order_no, status=order.status, status_zh=zh,
            status_en=en, amount_fen=order.amount_fen, account_kind=kind.value,
            card=method_view(card) if card else None,
            failure_reason=order.message if order.status is OrderStatus.FAILED else None,
            events=[PayoutEvent(at=e.at, event=e.event, channel_status=e.status, code=e.code,
                                text_zh=text[0], text_en=text[1])
                    for e in events if e.event != "discrepancy"  # staff see discrepancies, not borrowers
                    # what the channel said in it: a refusal reads as refused, with why and what to do
                    for text in (order_texts.payout_event_text(kind, e.event, e.status, e.code, e.detail),)],
        ))
    return views


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


def collection_views(ports: Platform, borrower_id: int, found: Sequence[PaymentOrder]) -> list[CollectionView]:
    """Debits and refunds of the borrower, each with its steps (discrepancies are for staff, not borrowers)."""
    if not found:
        return []
    with ports.db.autocommit() as session:
        methods = {m.id: m for m in session.execute(
            select(PaymentMethod).where(PaymentMethod.borrower_id == borrower_id)).scalars()}
        events = session.execute(select(PaymentOrderEvent).where(
            PaymentOrderEvent.order_id.in_([o.id for o in found])).order_by(PaymentOrderEvent.id)).scalars().all()
    views = []
    for order in found:
        method = methods.get(order.payment_method_id)
        kind = method.kind if method else PaymentMethodKind.BANK_CARD
        statuses = order_texts.collection_status_texts(kind)
        zh, en = statuses[order.status.value]
        if order.purpose == REFUND and order.status is OrderStatus.SUCCEEDED:
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


def loan_collection_views(ports: Platform, borrower_id: int, loan_id: int) -> list[CollectionView]:
    """The debits and refunds of the borrower's loan, newest first (at most 100; someone else's loan is as
    absent as none)."""
    with ports.db.autocommit() as session:
        loan_service.owned_loan(session, borrower_id, loan_id)
        found = session.execute(select(PaymentOrder).where(
            PaymentOrder.loan_id == loan_id,
            (PaymentOrder.kind == OrderKind.COLLECTION.value) | (PaymentOrder.purpose == REFUND))
            .order_by(PaymentOrder.id.desc()).limit(100)).scalars().all()
    return collection_views(ports, borrower_id, found)
