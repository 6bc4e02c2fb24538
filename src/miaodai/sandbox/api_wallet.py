"""The sandbox wallets' signing page: where a borrower "approves" or "declines" a withholding agreement.

Stands in for the Alipay / WeChat Pay app that ``authorize_url`` opens. Mounted by ``app.py`` only
when ``MIAODAI_SANDBOX`` is true. The outcome is chosen by the decision and the login (docs/sandbox.md,
"E-wallets"); the answer is the authorization code the app then passes to
``POST /v1/payment-methods/wallets/{binding_id}/confirm``.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from miaodai.core.errors import DomainError, Errors
from miaodai.identity.login_service import parse_phone
from miaodai.payments.ports import PaymentPorts, PaymentPortsDep
from miaodai.sandbox.wallet import (
    LOGIN_AGREEMENT_EXISTS,
    LOGIN_FROZEN,
    LOGIN_TIMEOUT,
    Decision,
    SandboxWallet,
    SigningPage,
    UnknownRequest,
)

router = APIRouter(prefix="/sandbox/wallets", tags=["sandbox"])

_WALLET = {"alipay": ("支付宝", "Alipay"), "wechat_pay": ("微信支付", "WeChat Pay")}
_TEST_LOGINS = {
    LOGIN_FROZEN: "account frozen / held by risk control → PAYMENT_WALLET_ACCOUNT_FROZEN",
    LOGIN_AGREEMENT_EXISTS: "already signed for another Miaodai account → PAYMENT_WALLET_AGREEMENT_EXISTS",
    LOGIN_TIMEOUT: "the wallet never answers the exchange → PAYMENT_WALLET_TIMEOUT",
}


class SigningPageView(BaseModel):
    provider_ref: str
    wallet: str
    wallet_zh: str
    wallet_en: str
    merchant: str = "秒贷 Miaodai"
    agreement_zh: str = "秒贷借款放款及自动还款代扣协议"
    agreement_en: str = "Miaodai loan payout and automatic repayment withholding agreement"
    decisions: list[str] = [d.value for d in Decision]
    test_logins: dict[str, str] = Field(default=_TEST_LOGINS, description="Any other mainland mobile number signs")


class AuthorizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1, max_length=20, description="The wallet login: a mainland mobile number")
    decision: Literal["approve", "decline"]


class AuthorizeResult(BaseModel):
    decision: str
    auth_code: str = Field(description="Pass it to POST /v1/payment-methods/wallets/{binding_id}/confirm")


def _page(ports: PaymentPorts, provider_ref: str) -> tuple[SandboxWallet, SigningPage]:
    wallet = ports.wallets
    if not isinstance(wallet, SandboxWallet):  # a real wallet adapter is wired in: there is no sandbox page
        raise DomainError(Errors.NOT_FOUND)
    try:
        return wallet, wallet.page(provider_ref[:64])
    except UnknownRequest:
        raise DomainError(Errors.NOT_FOUND) from None


@router.get("/{provider_ref}", summary="The wallet's signing page: what the borrower is asked to approve")
def signing_page(provider_ref: str, ports: PaymentPortsDep) -> SigningPageView:
    _, page = _page(ports, provider_ref)
    zh, en = _WALLET[page.kind.value]
    return SigningPageView(provider_ref=page.provider_ref, wallet=page.kind.value, wallet_zh=zh, wallet_en=en)


@router.post("/{provider_ref}/authorize", summary="Log in to the sandbox wallet and approve or decline: "
             "returns the authorization code the wallet hands the app")
def authorize(provider_ref: str, body: AuthorizeBody, ports: PaymentPortsDep) -> AuthorizeResult:
    wallet, page = _page(ports, provider_ref)
    login = parse_phone(body.login)
    return AuthorizeResult(decision=body.decision,
                           auth_code=wallet.authorize(page.provider_ref, login, Decision(body.decision)))
