"""What the sandbox wallet's signing page shows, for its JSON route (``sandbox.api_wallet``) and the app's page."""

from __future__ import annotations

from pydantic import BaseModel, Field

from miaodai.core.errors import DomainError, Errors
from miaodai.payments.ports import PaymentPorts
from miaodai.sandbox.wallet import (
    LOGIN_AGREEMENT_EXISTS,
    LOGIN_FROZEN,
    LOGIN_TIMEOUT,
    Decision,
    SandboxWallet,
    SigningPage,
    UnknownRequest,
)

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
    merchant: str = "秒贷"
    agreement_zh: str = "秒贷借款放款及自动还款代扣协议"
    agreement_en: str = "Miaodai loan payout and automatic repayment withholding agreement"
    decisions: list[str] = [d.value for d in Decision]
    test_logins: dict[str, str] = Field(default=_TEST_LOGINS, description="Any other mainland mobile number signs")


def wallet_page(ports: PaymentPorts, provider_ref: str) -> tuple[SandboxWallet, SigningPage]:
    """The sandbox wallet and the signing page of one request, or 404 (no sandbox wallet, unknown request)."""
    wallet = ports.wallets
    if not isinstance(wallet, SandboxWallet):  # a real wallet adapter is wired in: there is no sandbox page
        raise DomainError(Errors.NOT_FOUND)
    try:
        return wallet, wallet.page(provider_ref[:64])
    except UnknownRequest:
        raise DomainError(Errors.NOT_FOUND) from None


def signing_page_view(ports: PaymentPorts, provider_ref: str) -> SigningPageView:
    """What the borrower is asked to approve on the sandbox wallet's page."""
    _, page = wallet_page(ports, provider_ref)
    zh, en = _WALLET[page.kind.value]
    return SigningPageView(provider_ref=page.provider_ref, wallet=page.kind.value, wallet_zh=zh, wallet_en=en)
