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

from miaodai.identity.login_service import parse_phone
from miaodai.payments.ports import PaymentPortsDep
from miaodai.sandbox.wallet import Decision
from miaodai.sandbox.wallet_views import SigningPageView, signing_page_view, wallet_page

router = APIRouter(prefix="/sandbox/wallets", tags=["sandbox"])


class AuthorizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1, max_length=20, description="The wallet login: a mainland mobile number")
    decision: Literal["approve", "decline"]


class AuthorizeResult(BaseModel):
    decision: str
    auth_code: str = Field(description="Pass it to POST /v1/payment-methods/wallets/{binding_id}/confirm")


@router.get("/{provider_ref}", summary="The wallet's signing page: what the borrower is asked to approve")
def signing_page(provider_ref: str, ports: PaymentPortsDep) -> SigningPageView:
    return signing_page_view(ports, provider_ref)


@router.post("/{provider_ref}/authorize", summary="Log in to the sandbox wallet and approve or decline: "
             "returns the authorization code the wallet hands the app")
def authorize(provider_ref: str, body: AuthorizeBody, ports: PaymentPortsDep) -> AuthorizeResult:
    wallet, page = wallet_page(ports, provider_ref)
    login = parse_phone(body.login)
    return AuthorizeResult(decision=body.decision,
                           auth_code=wallet.authorize(page.provider_ref, login, Decision(body.decision)))
