"""Payment methods for borrowers: bind a bank card (step-up, the bank's code), list, default, unbind.
Thin: parse, call ``payments.methods``, shape the answer (never more of a card than BIN + last 4)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from miaodai.core.masking import mask_phone
from miaodai.deps import ContainerDep, CurrentBorrower, RowId
from miaodai.identity.step_up import RecentStepUp
from miaodai.payments import bins, methods, order_texts, orders
from miaodai.payments.models import (
    RESERVED_PHONE_FIELD,
    BindingStatus,
    CardBinding,
    OrderStatus,
    PaymentMethod,
    PaymentMethodKind,
)

router = APIRouter(tags=["payment methods"])

_NO_AUTO_DEBIT = ("该银行暂不支持自动扣款，到期请手动还款，或绑定支持自动扣款的卡。",
                  "This bank does not support automatic debit: repay by hand when due, or bind a card that does.")


class CardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_number: str = Field(min_length=1, max_length=32, description="Digits; spaces and hyphens are ignored")
    reserved_phone: str | None = Field(default=None, max_length=20,
                                       description="The phone number the bank has for this card; "
                                                   "your login phone if absent")


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\d{6}$", description="The 6-digit code the bank sent to the reserved phone")


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


def binding_view(container: ContainerDep, binding: CardBinding) -> BindingView:
    phone = container.vault.decrypt(binding.reserved_phone_enc, RESERVED_PHONE_FIELD)
    return BindingView(
        binding_id=binding.token, status=binding.status, bank=_bank(binding.bank_code),
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


@router.post("/v1/payment-methods/cards", status_code=202,
             summary="Bind a debit card (step-up): the bank checks name, ID, card and reserved phone, "
                     "then texts a code")
def start_card_binding(body: CardBody, auth: RecentStepUp, container: ContainerDep) -> BindingView:
    binding = methods.start_card_binding(container, auth, body.card_number, body.reserved_phone)
    return binding_view(container, binding)


@router.post("/v1/payment-methods/cards/{binding_id}/confirm", status_code=201,
             summary="Finish binding with the bank's code: the card becomes a payment method")
def confirm_card_binding(binding_id: str, body: ConfirmBody, auth: CurrentBorrower,
                         container: ContainerDep) -> MethodView:
    # The binding was started under step-up; the bank's code proves the card's phone is at hand.
    return method_view(methods.confirm_card_binding(container, auth, binding_id[:64], body.code))


@router.get("/v1/payment-methods", summary="My bound cards and wallets, the default first")
def my_methods(auth: CurrentBorrower, container: ContainerDep) -> list[MethodView]:
    return [method_view(m) for m in methods.borrower_methods(container, auth.borrower_id)]


@router.post("/v1/payment-methods/{method_id}/default", summary="Make this the default for payouts and repayments")
def make_default(method_id: RowId, auth: CurrentBorrower, container: ContainerDep) -> MethodView:
    return method_view(methods.set_default(container, auth, method_id))


@router.delete("/v1/payment-methods/{method_id}", summary="Unbind (refused while a loan has no other method)")
def unbind(method_id: RowId, auth: RecentStepUp, container: ContainerDep) -> MethodView:
    return method_view(methods.unbind(container, auth, method_id))


@router.get("/v1/banks", summary="Banks whose debit cards can be bound, and whether they support auto-debit")
def supported_banks() -> list[dict[str, object]]:
    return [{"code": b.code, "name_zh": b.name_zh, "name_en": b.name_en, "auto_debit": b.auto_debit}
            for b in bins.supported_banks()]


@router.post("/v1/payments/callbacks/{channel}", include_in_schema=False)
async def channel_callback(channel: str, request: Request, container: ContainerDep) -> Response:
    """Where a payment channel posts its signed results. The signature is checked before anything is
    read; the reply is the channel's exact acknowledgement, or an error so that it retries."""
    body = await request.body()
    status, reply = await run_in_threadpool(orders.receive_callback, container, channel[:32], body,
                                            dict(request.headers))
    return Response(content=reply, status_code=status, media_type="text/plain")


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


@router.get("/v1/loans/{loan_id}/payouts", summary="Each payout attempt of my loan, step by step with times")
def loan_payouts(loan_id: RowId, auth: CurrentBorrower, container: ContainerDep) -> list[PayoutView]:
    from miaodai.loans import loan_service

    with container.db.transaction() as session:
        loan_service.owned_loan(session, auth.borrower_id, loan_id)  # someone else's is as absent as none
        cards = {m.id: m for m in session.execute(
            select(PaymentMethod).where(PaymentMethod.borrower_id == auth.borrower_id)).scalars()}
    views = []
    for order, events in orders.loan_payouts(container, loan_id):
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
