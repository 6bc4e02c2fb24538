"""The borrower's web app (/app) over HTTP: the calculator for anyone, logging in with an SMS code,
the cookies and headers that keep a session safe, CSRF, devices and logging out — in both languages."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from miaodai.core.formatting import percent
from miaodai.demo import PRODUCT_CODE, seed_demo
from miaodai.web.core import CSRF_COOKIE, DEVICE_COOKIE, SESSION_COOKIE
from tests.helpers import latest_code

PHONE = "13800138123"


@pytest.fixture
def web(client) -> TestClient:
    """A browser's view: cookies are Secure, so the client speaks HTTPS (browsers allow 127.0.0.1 too)."""
    return TestClient(client.app, base_url="https://testserver", follow_redirects=False)


def csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def log_in(web: TestClient, phone: str = PHONE) -> None:
    start = web.get("/app/login")
    sent = web.post("/app/login/code", data={"phone": phone, "csrf_token": csrf(start)})
    assert sent.status_code == 200, sent.text
    done = web.post("/app/login", data={"phone": phone, "code": latest_code(web, phone), "csrf_token": csrf(sent),
                                        "next": "/app/devices"})
    assert done.status_code == 303 and done.headers["location"] == "/app/devices", done.text


def test_the_start_page_speaks_chinese_first_and_english_on_request(web):
    page = web.get("/app")
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text and "登录 / 注册" in page.text
    english = web.get("/app?lang=en")
    assert '<html lang="en">' in english.text and "Log in or sign up" in english.text
    assert "md_lang=en" in english.headers["set-cookie"]
    assert "Log in or sign up" in web.get("/app").text  # the choice is remembered
    assert web.get("/").headers["location"] == "/app"


def switch_of(page) -> str:
    return html.unescape(re.search(r'href="([^"]*)"[^>]*data-testid="lang-switch"', page.text).group(1))


def test_a_forms_answer_switches_language_on_the_page_that_had_the_form(web):
    """A form's address has no page to GET (405): the answer's switch leads to the page the form was on."""
    start = web.get("/app/login?next=/app/loans")
    assert switch_of(start) == "/app/login?next=%2Fapp%2Floans&lang=en"
    sent = web.post("/app/login/code", data={"phone": PHONE, "csrf_token": csrf(start)},
                    headers={"referer": "https://testserver/app/login?next=/app/loans&lang=zh"})
    assert sent.status_code == 200 and switch_of(sent) == "/app/login?next=%2Fapp%2Floans&lang=en"
    english = web.get(switch_of(sent))
    assert english.status_code == 200 and '<html lang="en">' in english.text
    elsewhere = web.post("/app/login/code", data={"phone": PHONE, "csrf_token": csrf(start)},
                         headers={"referer": "https://evil.example/app/login"})
    assert switch_of(elsewhere) == "/app/login?lang=zh"  # not another site's; English now, so it offers 中文
    # A wrong code sent from the code page (itself a form's answer, at /app/login/code, which answers POST
    # only): the nearest page above it that answers GET.
    wrong = web.post("/app/login", data={"phone": PHONE, "code": "000000", "csrf_token": csrf(sent)},
                     headers={"referer": "https://testserver/app/login/code"})
    assert wrong.status_code == 400 and switch_of(wrong) == "/app/login?lang=zh"
    assert web.get("/app/login?lang=zh").status_code == 200


def test_pages_carry_strict_security_headers_and_safe_cookies(web):
    page = web.get("/app/login")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["x-content-type-options"] == "nosniff"
    cookie = page.headers["set-cookie"]
    assert f"{CSRF_COOKIE}=" in cookie and "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie


def test_the_calculator_quotes_with_the_engine_and_explains_bad_amounts(web, client, container):
    seed_demo(container)  # the demo product is on offer
    page = web.get("/app/calculator", params={"amount": "10000", "term": 12, "method": "equal_installment"})
    api = client.post("/v1/quotes", json={"product_code": PRODUCT_CODE, "principal_fen": 1_000_000,
                                          "method": "equal_installment", "term_months": 12}).json()
    assert page.status_code == 200
    shown = re.search(r'data-testid="apr">([^<]+)<', page.text).group(1)
    assert shown == percent(Decimal(api["apr"]))  # the exact figure, as the contract prints it
    assert page.text.count("<tr><td>") == 12
    bad = web.get("/app/calculator", params={"amount": "ten", "term": 12, "method": "equal_installment"})
    assert bad.status_code == 422 and 'data-code="LOAN_TERMS_INVALID"' in bad.text and "借款条件有误" in bad.text
    # the engine names the field it refuses (principal_fen); the page says what to type instead
    zero = web.get("/app/calculator", params={"amount": "0", "term": 12, "method": "equal_installment"})
    assert zero.status_code == 422 and 'data-code="LOAN_TERMS_INVALID"' in zero.text
    assert "请以元为单位填写金额（大于 0，最多两位小数）" in zero.text and "_fen" not in zero.text
    big = web.get("/app/calculator?lang=en", params={"amount": "99999999", "term": 12, "method": "equal_installment"})
    assert big.status_code == 422 and 'data-code="LOAN_AMOUNT_OUT_OF_RANGE"' in big.text


def test_logging_in_sets_a_session_cookie_and_shows_the_devices(web):
    assert web.get("/app/devices").headers["location"] == "/app/login?next=%2Fapp%2Fdevices"
    log_in(web)
    assert SESSION_COOKIE in web.cookies
    assert DEVICE_COOKIE in web.cookies
    devices = web.get("/app/devices")
    assert devices.status_code == 200 and "本机" in devices.text
    assert PHONE not in devices.text  # never the phone in full
    out = web.post("/app/logout", data={"csrf_token": csrf(devices)})
    assert out.status_code == 303 and web.get("/app/devices").status_code == 303


def test_a_wrong_code_is_explained_and_too_many_stop_the_guesser(web):
    start = web.get("/app/login")
    sent = web.post("/app/login/code", data={"phone": PHONE, "csrf_token": csrf(start)})
    codes = []
    for _ in range(6):
        wrong = web.post("/app/login", data={"phone": PHONE, "code": "000000", "csrf_token": csrf(sent)})
        codes.append(re.search(r'data-code="([A-Z_]+)"', wrong.text).group(1))
        assert "138****8123" in wrong.text  # the page still says where the code went
    # The fifth burns the code; then this network is stopped at this number for the hour (not the number).
    assert codes == ["OTP_WRONG_CODE"] * 4 + ["OTP_TOO_MANY_WRONG_GUESSES", "OTP_WRONG_CODES_FROM_NETWORK"], codes


def test_a_form_without_its_token_is_refused_and_nothing_happens(web):
    web.get("/app/login")
    refused = web.post("/app/login/code", data={"phone": PHONE, "csrf_token": "forged"})
    assert refused.status_code == 403 and "页面已过期" in refused.text
    assert web.post("/app/login/code", data={"phone": PHONE}).status_code == 403
    assert web.get(f"/sandbox/sms/{PHONE}").json()["messages"] == []  # no code was sent


def test_next_never_leaves_the_app(web):
    start = web.get("/app/login?next=https://evil.example/")
    assert 'name="next" value="/app"' in start.text


def test_the_step_up_page_sends_a_code_and_returns_to_the_page(web, clock):
    log_in(web)
    clock.advance(timedelta(hours=1))  # the login's own step-up has run out
    page = web.get("/app/step-up?next=/app/devices")
    assert page.status_code == 200 and "验证身份" in page.text
    sent = web.post("/app/step-up/code", data={"next": "/app/devices", "csrf_token": csrf(page)})
    assert sent.status_code == 200 and 'name="code"' in sent.text
    wrong = web.post("/app/step-up", data={"code": "000000", "next": "/app/devices", "csrf_token": csrf(sent)})
    assert 'data-code="OTP_WRONG_CODE"' in wrong.text
    done = web.post("/app/step-up", data={"code": latest_code(web, PHONE), "next": "/app/devices",
                                          "csrf_token": csrf(sent)})
    assert done.status_code == 303 and done.headers["location"] == "/app/devices"
