"""Payment methods for borrowers: bind a bank card (step-up, the bank's code), list, default, unbind.
Thin: parse, call ``payments.methods``, shape the answer (``payments.views``: never more of a card than
BIN + last 4)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from miaodai.core.fields import RowId
from miaodai.identity.http import CurrentBorrower
from miaodai.identity.step_up import RecentStepUp
from miaodai.payments import bins, methods, orders
from miaodai.payments.ports import PaymentPortsDep
from miaodai.payments.views import BindingView, MethodView, PayoutView, binding_view, method_view, payout_views

router = APIRouter(tags=["payment methods"])


class CardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_number: str = Field(min_length=1, max_length=32, description="Digits; spaces and hyphens are ignored")
    reserved_phone: str | None = Field(default=None, max_length=20,
                                       description="The phone number the bank has for this card; "
                                                   "your login phone if absent")


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\d{6}$", description="The 6-digit code the bank sent to the reserved phone")


@router.post("/v1/payment-methods/cards", status_code=202,
             summary="Bind a debit card (step-up): the bank checks name, ID, card and reserved phone, "
                     "then texts a code")
def start_card_binding(body: CardBody, auth: RecentStepUp, ports: PaymentPortsDep) -> BindingView:
    binding = methods.start_card_binding(ports, auth, body.card_number, body.reserved_phone)
    return binding_view(ports, binding)


@router.post("/v1/payment-methods/cards/{binding_id}/confirm", status_code=201,
             summary="Finish binding with the bank's code: the card becomes a payment method")
def confirm_card_binding(binding_id: str, body: ConfirmBody, auth: CurrentBorrower,
                         ports: PaymentPortsDep) -> MethodView:
    # The binding was started under step-up; the bank's code proves the card's phone is at hand.
    return method_view(methods.confirm_card_binding(ports, auth, binding_id[:64], body.code))


@router.get("/v1/payment-methods", summary="My bound cards and wallets, the default first")
def my_methods(auth: CurrentBorrower, ports: PaymentPortsDep) -> list[MethodView]:
    return [method_view(m) for m in methods.borrower_methods(ports, auth.borrower_id)]


@router.post("/v1/payment-methods/{method_id}/default", summary="Make this the default for payouts and repayments")
def make_default(method_id: RowId, auth: CurrentBorrower, ports: PaymentPortsDep) -> MethodView:
    return method_view(methods.set_default(ports, auth, method_id))


@router.delete("/v1/payment-methods/{method_id}", summary="Unbind (refused while a loan has no other method)")
def unbind(method_id: RowId, auth: RecentStepUp, ports: PaymentPortsDep) -> MethodView:
    return method_view(methods.unbind(ports, auth, method_id))


@router.get("/v1/banks", summary="Banks whose debit cards can be bound, and whether they support auto-debit")
def supported_banks() -> list[dict[str, object]]:
    return [{"code": b.code, "name_zh": b.name_zh, "name_en": b.name_en, "auto_debit": b.auto_debit}
            for b in bins.supported_banks()]


@router.post("/v1/payments/callbacks/{channel}", include_in_schema=False)
async def channel_callback(channel: str, request: Request, ports: PaymentPortsDep) -> Response:
    """Where a payment channel posts its signed results. The signature is checked before anything is
    read; the reply is the channel's exact acknowledgement, or an error so that it retries."""
    body = await request.body()
    status, reply = await run_in_threadpool(orders.receive_callback, ports, channel[:32], body,
                                            dict(request.headers))
    return Response(content=reply, status_code=status, media_type="text/plain")


@router.get("/v1/loans/{loan_id}/payouts", summary="Each payout attempt of my loan, step by step with times")
def loan_payouts(loan_id: RowId, auth: CurrentBorrower, ports: PaymentPortsDep) -> list[PayoutView]:
    return payout_views(ports, auth.borrower_id, loan_id)
