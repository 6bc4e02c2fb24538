"""Step-up 二次验证 in the app: actions the API guards with a fresh code (binding a card or wallet,
signing a contract, unbinding) first send the borrower here, then back to where they were.

A page that needs it takes :data:`WebStepUp` instead of ``WebBorrower``: without a code confirmed in the
last ``step_up_ttl_seconds`` the borrower is redirected to ``/app/step-up?next=<the page>``, which sends a
code to their own phone and returns to the page once it is confirmed — the same login service and limits
as ``POST /v1/auth/step-up``. A form posted after the step-up ran out returns to the page it came from.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from miaodai.core.errors import DomainError
from miaodai.core.http import client_ip
from miaodai.identity import login_service
from miaodai.identity.models import OtpChannel
from miaodai.identity.sessions import AuthContext
from miaodai.identity.step_up import step_up_is_fresh
from miaodai.web.core import (
    PREFIX,
    WebBorrower,
    WebContainer,
    csrf_protect,
    page_address,
    redirect,
    render,
    require_borrower,
    safe_next,
)

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)


class StepUpNeeded(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def step_up_url(next_path: str) -> str:
    return f"{PREFIX}/step-up?{urlencode({'next': next_path})}"


def require_step_up(request: Request, auth: Annotated[AuthContext, Depends(require_borrower)]) -> AuthContext:
    container = request.app.state.container
    ttl = timedelta(seconds=container.settings.step_up_ttl_seconds)
    if not step_up_is_fresh(auth.step_up_at, now=container.clock.now(), ttl=ttl):
        raise StepUpNeeded(page_address(request))
    return auth


WebStepUp = Annotated[AuthContext, Depends(require_step_up)]


@router.get("/step-up", response_class=HTMLResponse)
def step_up_page(request: Request, auth: WebBorrower, next: str | None = None) -> HTMLResponse:  # noqa: A002
    return render(request, "step_up.html", signed_in=auth, next=safe_next(next), sent=None, resend_in=0)


@router.post("/step-up/code", response_class=HTMLResponse)
def send_step_up_code(request: Request, container: WebContainer, auth: WebBorrower,
                      next: Annotated[str, Form()] = PREFIX,  # noqa: A002
                      channel: Annotated[str, Form()] = "sms") -> HTMLResponse:
    try:
        sent = login_service.request_step_up_code(
            container, auth, channel=OtpChannel.VOICE if channel == "voice" else OtpChannel.SMS, ip=client_ip(request))
    except DomainError as error:
        return render(request, "step_up.html", error=error, signed_in=auth, next=safe_next(next), sent=None,
                      resend_in=0)
    wait = max(0, int((sent.resend_after - container.clock.now()).total_seconds()))
    return render(request, "step_up.html", signed_in=auth, next=safe_next(next), sent=sent, resend_in=wait)


@router.post("/step-up", response_class=HTMLResponse)
def confirm_step_up(request: Request, container: WebContainer, auth: WebBorrower,
                    code: Annotated[str, Form(max_length=12)],
                    next: Annotated[str, Form()] = PREFIX) -> Response:  # noqa: A002
    try:
        login_service.confirm_step_up(container, auth, code=code.strip())
    except DomainError as error:
        return render(request, "step_up.html", error=error, signed_in=auth, next=safe_next(next), sent=True,
                      resend_in=0)
    return redirect(request, safe_next(next))
