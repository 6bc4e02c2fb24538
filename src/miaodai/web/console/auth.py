"""Signing in to the console (username, password, TOTP), the first sign-in (a new password and an authenticator
enrolled from a QR code), signing out, and the staff member's own sessions and login history."""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from miaodai.core.errors import DomainError
from miaodai.core.fields import RowId
from miaodai.core.http import client_ip
from miaodai.identity import staff_account, staff_service
from miaodai.identity.staff_service import Scope, StaffClient, StaffContext
from miaodai.web.console.core import (
    PREFIX,
    PUBLIC,
    SETUP_COOKIE,
    SIGNED_IN,
    STAFF_COOKIE,
    _,
    container_of,
    csrf_protect,
    menu_item,
    redirect,
    render,
    safe_next,
    set_cookie,
    signed_in,
)

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)
menu_item(f"{PREFIX}/me", _("My account"), None)

Public = Depends(PUBLIC)
Staff = Annotated[StaffContext, Depends(SIGNED_IN)]
Text = Annotated[str, Form(max_length=256)]


# The login history's events as people read them.
HISTORY_LABELS = {
    "staff.login": _("Signed in"), "staff.login_failed": _("Failed sign-in"), "staff.logout": _("Signed out"),
    "staff.logout_everywhere": _("Signed out everywhere"), "staff.setup_started": _("First sign-in started"),
    "staff.setup_completed": _("First sign-in finished"), "staff.review_flagged": _("Flagged for security review"),
}


def _client(request: Request) -> StaffClient:
    return StaffClient(client_ip(request), request.headers.get("user-agent"))


@router.get("/login", response_class=HTMLResponse, dependencies=[Public])
def login_page(request: Request, next: str | None = None, idle: str | None = None) -> Response:  # noqa: A002
    if signed_in(request) is not None:
        return redirect(request, safe_next(next))
    return render(request, "console/login.html", next=safe_next(next), username="", idle=bool(idle))


@router.post("/login", response_class=HTMLResponse, dependencies=[Public])
def log_in(request: Request, username: Annotated[str, Form(max_length=64)], password: Text,
           totp_code: Annotated[str, Form(max_length=12)] = "",
           next: Annotated[str, Form(max_length=512)] = PREFIX) -> Response:  # noqa: A002
    container = container_of(request)
    try:
        result = staff_service.login(container, username=username, password=password, totp_code=totp_code.strip(),
                                     ip=client_ip(request), scope=Scope.CONSOLE,
                                     user_agent=request.headers.get("user-agent"))
    except DomainError as error:
        return render(request, "console/login.html", error=error, next=safe_next(next), username=username[:64],
                      idle=False)
    if result.setup_required:
        response = redirect(request, f"{PREFIX}/setup")
        set_cookie(response, request, SETUP_COOKIE, result.token, max_age=staff_service.SETUP_MINUTES * 60)
        return response
    response = redirect(request, safe_next(next))
    set_cookie(response, request, STAFF_COOKIE, result.token)  # a browser-session cookie; the server times it out
    return response


def _qr_svg(uri: str) -> Markup:
    """The enrolment QR code as inline SVG (no image request, nothing for the CSP to allow)."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#1a1f2b", title="TOTP")
    return Markup(svg)  # noqa: S704 - segno's own SVG of our own otpauth URI


def _setup_page(request: Request, error: DomainError | None = None) -> Response:
    token = request.cookies.get(SETUP_COOKIE)
    if not token:
        return redirect(request, f"{PREFIX}/login")
    try:
        state = staff_account.setup_state(container_of(request), token)
    except DomainError as expired:
        return render(request, "console/login.html", error=expired, next=PREFIX, username="", idle=False)
    return render(request, "console/setup.html", error=error, setup=state, staff=None,
                  qr=_qr_svg(state.otpauth_uri) if state.otpauth_uri else None)


@router.get("/setup", response_class=HTMLResponse, dependencies=[Public])
def setup_page(request: Request) -> Response:
    return _setup_page(request)


@router.post("/setup", response_class=HTMLResponse, dependencies=[Public])
def finish_setup(request: Request, new_password: Text = "", repeat_password: Text = "",
                 totp_code: Annotated[str, Form(max_length=12)] = "") -> Response:
    token = request.cookies.get(SETUP_COOKIE)
    if not token:
        return redirect(request, f"{PREFIX}/login")
    try:
        result = staff_account.complete_setup(container_of(request), token, new_password=new_password,
                                              repeat_password=repeat_password, totp_code=totp_code.strip(),
                                              client=_client(request))
    except DomainError as error:
        return _setup_page(request, error)
    response = redirect(request, PREFIX)
    response.delete_cookie(SETUP_COOKIE, path=PREFIX)
    set_cookie(response, request, STAFF_COOKIE, result.token)
    return response


@router.post("/logout", dependencies=[Public])
def log_out(request: Request) -> Response:
    staff = signed_in(request)
    if staff is not None:
        staff_service.logout(container_of(request), staff)
    response = redirect(request, f"{PREFIX}/login")
    response.delete_cookie(STAFF_COOKIE, path=PREFIX)
    return response


@router.get("/me", response_class=HTMLResponse)
def my_account(request: Request, staff: Staff) -> HTMLResponse:
    container = container_of(request)
    return render(request, "console/me.html", staff=staff, sessions=staff_account.live_sessions(container, staff),
                  history=staff_account.login_history(container, staff), labels=HISTORY_LABELS)


@router.post("/me/sessions/{session_id}/end")
def end_session(request: Request, session_id: RowId, staff: Staff) -> Response:
    staff_account.end_session(container_of(request), staff, session_id)
    if session_id == staff.session_id:
        response = redirect(request, f"{PREFIX}/login")
        response.delete_cookie(STAFF_COOKIE, path=PREFIX)
        return response
    return redirect(request, f"{PREFIX}/me")


@router.post("/me/logout-everywhere")
def logout_everywhere(request: Request, staff: Staff) -> Response:
    staff_account.logout_everywhere(container_of(request), staff)
    response = redirect(request, f"{PREFIX}/login")
    response.delete_cookie(STAFF_COOKIE, path=PREFIX)
    return response
