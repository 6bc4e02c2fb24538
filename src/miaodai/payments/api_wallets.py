"""Binding an e-wallet (Alipay 支付宝, WeChat Pay 微信支付) over HTTP: start (step-up) → the borrower signs
the withholding agreement in the wallet's app → confirm with the wallet's authorization code.
Thin: parse, call ``payments.wallets``, shape the answer (the same method view as a card's; never the
wallet account id). Listing, default and unbind are the payment-method endpoints of ``payments.api``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from miaodai.identity.http import CurrentBorrower
from miaodai.identity.step_up import RecentStepUp
from miaodai.payments import wallets
from miaodai.payments.models import PaymentMethodKind
from miaodai.payments.ports import PaymentPortsDep
from miaodai.payments.views import MethodView, method_view

router = APIRouter(tags=["payment methods"])


class WalletBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["alipay", "wechat_pay"]


class WalletConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auth_code: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_-]+$",
                           description="What the wallet handed the app after the borrower signed")


class WalletBindingView(BaseModel):
    binding_id: str
    kind: str = Field(description="alipay | wechat_pay")
    status: str = Field(description="pending")
    authorize_url: str = Field(description="Open this in the wallet (sandbox: the signing page); shown once")
    expires_at: datetime


@router.post("/v1/payment-methods/wallets", status_code=202,
             summary="Bind Alipay or WeChat Pay (step-up): open authorize_url, where the borrower signs the "
                     "withholding agreement")
def start_wallet_binding(body: WalletBody, auth: RecentStepUp, ports: PaymentPortsDep) -> WalletBindingView:
    started = wallets.start_wallet_binding(ports, auth, PaymentMethodKind(body.kind))
    binding = started.binding
    return WalletBindingView(binding_id=binding.token, kind=binding.kind.value, status=binding.status.value,
                             authorize_url=started.authorize_url, expires_at=binding.expires_at)


@router.post("/v1/payment-methods/wallets/{binding_id}/confirm", status_code=201,
             summary="Finish binding with the wallet's authorization code: the wallet becomes a payment method")
def confirm_wallet_binding(binding_id: str, body: WalletConfirmBody, auth: CurrentBorrower,
                           ports: PaymentPortsDep) -> MethodView:
    # Started under step-up; the code is checked with the wallet, server to server.
    return method_view(wallets.confirm_wallet_binding(ports, auth, binding_id[:64], body.auth_code))
