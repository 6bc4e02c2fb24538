"""CSRF on the app's forms: the token is bound to the browser's session, and a post must come from the app's
own pages (Origin, else Referer)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from miaodai.web.core import CSRF_COOKIE, SESSION_COOKIE
from tests.helpers import latest_code

PHONE, OTHER = "13800138321", "13800138322"
OWN = "https://testserver"


@pytest.fixture
def web(client) -> TestClient:
    return TestClient(client.app, base_url=OWN, follow_redirects=False)


@pytest.fixture
def other(client) -> TestClient:
    """Another browser: the attacker's own, with a session of their own."""
    return TestClient(client.app, base_url=OWN, follow_redirects=False)


def csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def log_in(web: TestClient, phone: str, **headers: str) -> None:
    sent = web.post("/app/login/code", data={"phone": phone, "csrf_token": csrf(web.get("/app/login"))},
                    headers=headers)
    assert sent.status_code == 200, sent.text
    done = web.post("/app/login", data={"phone": phone, "code": latest_code(web, phone), "csrf_token": csrf(sent),
                                        "next": "/app/devices"}, headers=headers)
    assert done.status_code == 303 and done.headers["location"] == "/app/devices", done.text


def _signed_in(web: TestClient) -> bool:
    return web.get("/app/devices").status_code == 200


def test_the_normal_flow_from_the_apps_own_pages_works(web):
    log_in(web, PHONE, origin=OWN)
    devices = web.get("/app/devices")
    out = web.post("/app/logout", data={"csrf_token": csrf(devices)}, headers={"origin": OWN,
                                                                                "referer": f"{OWN}/app/devices"})
    assert out.status_code == 303 and not _signed_in(web)


def test_a_token_from_another_session_is_refused_even_with_its_cookie_planted(web, other):
    log_in(web, PHONE)
    log_in(other, OTHER)
    their_page = other.get("/app/devices")
    # The attacker's own valid pair (cookie value and token), planted in the victim's browser beside the
    # victim's session: with a plain double-submit cookie this would pass.
    planted = [cookie for cookie in web.cookies.jar if cookie.name == CSRF_COOKIE]
    assert len(planted) == 1
    planted[0].value = other.cookies[CSRF_COOKIE]
    refused = web.post("/app/logout", data={"csrf_token": csrf(their_page)})
    assert refused.status_code == 403 and "页面已过期" in refused.text
    assert _signed_in(web)
    # The victim's own page still works.
    assert web.post("/app/logout", data={"csrf_token": csrf(web.get("/app/devices"))}).status_code == 303


def test_a_token_from_before_logging_in_does_not_work_after(web):
    before = csrf(web.get("/app/login"))
    log_in(web, PHONE)
    assert web.post("/app/logout", data={"csrf_token": before}).status_code == 403
    assert _signed_in(web)
    assert csrf(web.get("/app/devices")) != before


def test_a_token_is_not_the_cookies_value(web):
    page = web.get("/app/login")
    assert csrf(page) != web.cookies[CSRF_COOKIE]
    # Sending the cookie's value back, as a double-submit check would accept, is refused.
    refused = web.post("/app/login/code", data={"phone": PHONE, "csrf_token": web.cookies[CSRF_COOKIE]})
    assert refused.status_code == 403
    assert web.get(f"/sandbox/sms/{PHONE}").json()["messages"] == []


@pytest.mark.parametrize("headers", [
    {"origin": "https://evil.example"},
    {"origin": "null"},  # a sandboxed frame or a redirect from another site
    {"origin": "http://testserver.evil.example"},
    {"referer": "https://evil.example/app/devices"},  # no Origin: the Referer decides
    {"origin": "https://evil.example", "referer": f"{OWN}/app/devices"},  # a Referer does not overrule an Origin
])
def test_a_post_from_another_origin_is_refused_with_a_valid_token(web, headers):
    log_in(web, PHONE)
    token = csrf(web.get("/app/devices"))
    refused = web.post("/app/logout", data={"csrf_token": token}, headers=headers)
    assert refused.status_code == 403 and "页面已过期" in refused.text
    assert _signed_in(web)
    # The same token from the app's own page is accepted.
    assert web.post("/app/logout", data={"csrf_token": token}, headers={"origin": OWN}).status_code == 303


def test_the_public_address_counts_as_the_apps_own_behind_a_proxy_that_rewrites_the_host(web, container):
    container.settings.public_base_url = "https://miaodai.example"
    log_in(web, PHONE, origin="https://miaodai.example")
    token = csrf(web.get("/app/devices"))
    assert web.post("/app/logout", data={"csrf_token": token},
                    headers={"origin": "https://miaodai.example:443"}).status_code == 303


def test_a_login_page_posted_from_another_site_sends_no_code(web):
    token = csrf(web.get("/app/login"))
    refused = web.post("/app/login/code", data={"phone": PHONE, "csrf_token": token},
                       headers={"origin": "https://evil.example"})
    assert refused.status_code == 403
    assert web.get(f"/sandbox/sms/{PHONE}").json()["messages"] == []
    assert SESSION_COOKIE not in web.cookies
