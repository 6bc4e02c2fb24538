"""Helpers for tests of the staff console (/console): a staff member of given roles, signed in in a browser."""

from __future__ import annotations

import re
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from miaodai.identity import staff_service

PASSWORD = "console-password-123"  # noqa: S105 - a test account's password


def csrf(page: Any) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def browser(client: TestClient) -> TestClient:
    """A browser of its own: cookies are Secure, so it speaks HTTPS (browsers allow 127.0.0.1 too)."""
    return TestClient(client.app, base_url="https://testserver", follow_redirects=False)


def add_staff(container: Any, username: str, roles: tuple[str, ...], **kwargs: Any) -> staff_service.NewStaff:
    with container.db.transaction() as session:
        return staff_service.add_staff(session, container, username=username, display_name=username.title(),
                                       roles=list(roles), actor="system:test", password=PASSWORD, **kwargs)


def sign_in(web: TestClient, clock: Any, username: str, secret: str, *, password: str = PASSWORD) -> Any:
    """Sign in through the login form; returns the answer to the form (303 to the console when it worked)."""
    page = web.get("/console/login")
    return web.post("/console/login", data={
        "username": username, "password": password, "totp_code": pyotp.TOTP(secret).at(clock.now()),
        "csrf_token": csrf(page), "next": "/console"})


def console_as(client: TestClient, container: Any, clock: Any, username: str, roles: tuple[str, ...]) -> TestClient:
    """A browser signed in to the console as a new staff member holding ``roles`` (use with fast_staff_hasher)."""
    staff = add_staff(container, username, roles)
    web = browser(client)
    answer = sign_in(web, clock, username, staff.totp_secret)
    assert answer.status_code == 303 and answer.headers["location"] == "/console", answer.text
    return web


def post_form(web: TestClient, path: str, data: dict[str, Any] | None = None, *, page: str | None = None) -> Any:
    """Send a form the way its page does: with the CSRF token of a console page (``page``, else the home)."""
    shown = web.get(page or "/console")
    return web.post(path, data={**(data or {}), "csrf_token": csrf(shown)})
