"""Logging in with the phone and an SMS (or voice) code, logging out, and the borrower's devices.

The same login service as ``POST /v1/auth/otp`` and ``/v1/auth/login``: its limits (resend interval,
wrong-code lockout, per-phone and per-device quotas) are the limits here, and its refusals are shown
on the page in the page's language with what to do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from miaodai.core.errors import DomainError
from miaodai.core.fields import RowId
from miaodai.core.http import client_ip
from miaodai.core.masking import mask_phone
from miaodai.identity import login_service, session_service
from miaodai.identity.login_errors import LoginErrors
from miaodai.identity.login_service import ClientInfo
from miaodai.identity.models import OtpChannel
from miaodai.web import page_words
from miaodai.web.core import (
    PREFIX,
    SESSION_COOKIE,
    MaybeBorrower,
    WebBorrower,
    WebContainer,
    csrf_protect,
    device_key,
    redirect,
    render,
    safe_next,
    set_cookie,
)

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

Phone = Annotated[str, Form(max_length=32)]


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


# The app's words on these pages where the catalog's speak to API clients (more for any page: web/page_words.py).
PAGE_WORDS = page_words.register(__name__, {
    LoginErrors.SESSION_NOT_FOUND.code: (None, _("The devices still logged in are listed below.")),
})


def _client(request: Request) -> ClientInfo:
    return ClientInfo(ip=client_ip(request), device_key=device_key(request),
                      user_agent=request.headers.get("user-agent"))


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, auth: MaybeBorrower, next: str | None = None) -> Response:  # noqa: A002
    if auth is not None:
        return redirect(request, safe_next(next))
    return render(request, "login.html", next=safe_next(next), phone="")


@router.post("/login/code", response_class=HTMLResponse)
def send_code(request: Request, container: WebContainer, phone: Phone, channel: Annotated[str, Form()] = "sms",
              next: Annotated[str, Form()] = PREFIX) -> HTMLResponse:  # noqa: A002
    """Send the code, then ask for it (the phone travels in the form, never in a URL)."""
    try:
        sent = login_service.request_login_code(
            container, phone=phone, channel=OtpChannel.VOICE if channel == "voice" else OtpChannel.SMS,
            client=_client(request))
    except DomainError as error:
        return render(request, "login.html", error=error, next=safe_next(next), phone=phone)
    return _code_page(request, phone=phone, next_path=safe_next(next), sent=sent)


def _code_page(request: Request, *, phone: str, next_path: str, sent: login_service.CodeSent | None = None,
               error: DomainError | None = None) -> HTMLResponse:
    now = request.app.state.container.clock.now()
    wait = max(0, int((sent.resend_after - now).total_seconds())) if sent else 0
    try:
        masked = sent.phone_masked if sent else mask_phone(login_service.parse_phone(phone))
    except DomainError:
        masked = None
    return render(request, "login_code.html", error=error, phone=phone, phone_masked=masked, next=next_path,
                  sent=sent, resend_in=wait)


@router.post("/login", response_class=HTMLResponse)
def log_in(request: Request, container: WebContainer, phone: Phone, code: Annotated[str, Form(max_length=12)],
           next: Annotated[str, Form()] = PREFIX) -> Response:  # noqa: A002
    try:
        result = login_service.log_in_with_code(container, phone=phone, code=code.strip(), client=_client(request))
    except DomainError as error:
        return _code_page(request, phone=phone, next_path=safe_next(next), error=error)
    response = redirect(request, safe_next(next))
    max_age = int((result.session.expires_at - container.clock.now()).total_seconds())
    set_cookie(response, request, SESSION_COOKIE, result.token, max_age=max_age)
    return response


@router.post("/logout")
def log_out(request: Request, container: WebContainer, auth: MaybeBorrower) -> Response:
    if auth is not None:
        session_service.log_out(container, auth)
    response = redirect(request, f"{PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.get("/devices", response_class=HTMLResponse)
def devices(request: Request, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    return render(request, "devices.html", signed_in=auth, sessions=session_service.list_sessions(container, auth),
                  devices=session_service.list_devices(container, auth))


@router.post("/sessions/{session_id}/logout")
def end_session(request: Request, session_id: RowId, container: WebContainer, auth: WebBorrower) -> Response:
    try:
        session_service.revoke_session(container, auth, session_id)
    except DomainError as error:
        return render(request, "devices.html", error=error, signed_in=auth,
                      sessions=session_service.list_sessions(container, auth),
                      devices=session_service.list_devices(container, auth))
    if session_id == auth.session_id:
        response = redirect(request, f"{PREFIX}/login")
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response
    return redirect(request, f"{PREFIX}/devices")
