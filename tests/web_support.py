"""Helpers for tests of the borrower's web app (/app)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from miaodai.web.core import CSRF_COOKIE, SESSION_COOKIE, csrf_token_for


def form_token(web: TestClient) -> str:
    """The CSRF token the app's pages hand this browser now (bound to its ``md_csrf`` cookie and its session:
    web/core.py), for a form sent where the page shown has none (the service has the last word)."""
    pepper = web.app.state.container.settings.session_pepper  # type: ignore[attr-defined]
    return csrf_token_for(pepper, web.cookies[CSRF_COOKIE], web.cookies.get(SESSION_COOKIE) or "")
