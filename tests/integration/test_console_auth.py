"""Signing in to the staff console: password + TOTP, the forced first sign-in (new password, authenticator
enrolled from a QR code), idle and absolute timeouts, signing out everywhere, the login history."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest

from tests.console_support import PASSWORD, add_staff, browser, console_as, csrf, post_form, sign_in

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


def test_a_staff_member_signs_in_with_password_and_totp_and_sees_only_their_desks(client, container, clock):
    web = console_as(client, container, clock, "cs.one", ("customer_service",))
    home = web.get("/console")
    assert home.status_code == 200
    assert "客服专员" in home.text  # the role's name, from roles.toml
    assert home.headers["cache-control"] == "no-store"
    cookie = next(c for c in web.cookies.jar if c.name == "md_staff")
    assert cookie.path == "/console" and cookie.secure and cookie.has_nonstandard_attr("HttpOnly")


def test_a_wrong_code_is_refused_with_the_same_answer_as_a_wrong_password(client, container, clock):
    staff = add_staff(container, "cs.two", ("customer_service",))
    web = browser(client)
    page = web.get("/console/login")
    wrong_code = web.post("/console/login", data={"username": "cs.two", "password": PASSWORD, "totp_code": "000000",
                                                  "csrf_token": csrf(page)})
    wrong_password = sign_in(web, clock, "cs.two", staff.totp_secret, password="not-the-password")
    for answer in (wrong_code, wrong_password):
        assert answer.status_code == 401 and 'data-code="STAFF_LOGIN_FAILED"' in answer.text
    assert "md_staff" not in web.cookies
    assert web.get("/console").headers["location"].startswith("/console/login")


def test_a_page_without_a_session_sends_to_sign_in_and_back(client, container, clock):
    web = browser(client)
    answer = web.get("/console/me")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login?next=%2Fconsole%2Fme"


def test_first_sign_in_forces_a_new_password_and_enrols_totp_from_a_qr_code(client, container, clock):
    add_staff(container, "new.hire", ("auditor",), setup_on_first_login=True)
    web = browser(client)
    page = web.get("/console/login")
    answer = web.post("/console/login", data={"username": "new.hire", "password": PASSWORD, "totp_code": "",
                                              "csrf_token": csrf(page)})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/setup"
    assert "md_staff" not in web.cookies  # only a setup session so far
    assert web.get("/console").status_code == 303  # …which opens no desk
    setup = web.get("/console/setup")
    assert setup.status_code == 200 and "<svg" in setup.text
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', setup.text).group(1)
    same = web.post("/console/setup", data={"new_password": PASSWORD, "repeat_password": PASSWORD,
                                            "totp_code": pyotp.TOTP(secret).at(clock.now()), "csrf_token": csrf(setup)})
    assert 'data-code="STAFF_PASSWORD_UNCHANGED"' in same.text
    wrong = web.post("/console/setup", data={"new_password": "a-brand-new-password", "repeat_password":
                                             "a-brand-new-password", "totp_code": "123456", "csrf_token": csrf(setup)})
    assert 'data-code="STAFF_TOTP_NOT_CONFIRMED"' in wrong.text
    done = web.post("/console/setup", data={"new_password": "a-brand-new-password", "repeat_password":
                                            "a-brand-new-password", "totp_code": pyotp.TOTP(secret).at(clock.now()),
                                            "csrf_token": csrf(setup)})
    assert done.status_code == 303 and done.headers["location"] == "/console"
    assert web.get("/console").status_code == 200
    # The one-time password is dead, the new one and the enrolled secret work (from a fresh browser).
    clock.advance(timedelta(seconds=31))
    other = browser(client)
    assert sign_in(other, clock, "new.hire", secret).status_code == 401
    assert sign_in(other, clock, "new.hire", secret, password="a-brand-new-password").status_code == 303


def test_the_api_refuses_an_account_whose_first_sign_in_is_not_finished(client, container, clock):
    add_staff(container, "api.hire", ("auditor",), setup_on_first_login=True)
    answer = client.post("/v1/staff/login", json={"username": "api.hire", "password": PASSWORD, "totp_code": "000000"})
    assert answer.status_code == 403 and answer.json()["code"] == "STAFF_SETUP_REQUIRED"


def test_fifteen_idle_minutes_sign_out_and_twelve_hours_end_any_session(client, container, clock):
    web = console_as(client, container, clock, "idle.one", ("auditor",))
    clock.advance(timedelta(minutes=14))
    assert web.get("/console").status_code == 200  # activity keeps it alive
    clock.advance(timedelta(minutes=15))
    idle = web.get("/console/me")
    assert idle.status_code == 303 and "idle=1" in idle.headers["location"]
    web = console_as(client, container, clock, "busy.one", ("auditor",))
    for _ in range(48):  # a page every 14 minutes for 11 h 12 min
        clock.advance(timedelta(minutes=14))
        assert web.get("/console").status_code == 200
    clock.advance(timedelta(minutes=14))  # 11 h 26 min
    assert web.get("/console").status_code == 200
    clock.advance(timedelta(minutes=14))  # 11 h 40 min
    assert web.get("/console").status_code == 200
    clock.advance(timedelta(minutes=14))  # 11 h 54 min
    assert web.get("/console").status_code == 200
    clock.advance(timedelta(minutes=7))  # 12 h 01 min: over, however active
    assert web.get("/console").status_code == 303


def test_signing_out_everywhere_ends_the_api_tokens_and_other_browsers_too(client, container, clock):
    staff = add_staff(container, "ops.one", ("auditor",))
    first, second = browser(client), browser(client)
    assert sign_in(first, clock, "ops.one", staff.totp_secret).status_code == 303
    clock.advance(timedelta(seconds=31))
    assert sign_in(second, clock, "ops.one", staff.totp_secret).status_code == 303
    clock.advance(timedelta(seconds=31))
    token = client.post("/v1/staff/login", json={"username": "ops.one", "password": PASSWORD,
                                                 "totp_code": pyotp.TOTP(staff.totp_secret).at(clock.now())})
    headers = {"Authorization": f"Bearer {token.json()['token']}"}
    me = first.get("/console/me")
    assert me.text.count('action="/console/me/sessions/') == 3  # two browsers and the API token
    assert post_form(first, "/console/me/logout-everywhere", page="/console/me").status_code == 303
    assert second.get("/console").status_code == 303
    assert client.get("/v1/staff/me", headers=headers).status_code == 401


def test_the_login_history_shows_failures_at_my_username(client, container, clock):
    staff = add_staff(container, "hist.one", ("auditor",))
    web = browser(client)
    sign_in(web, clock, "hist.one", staff.totp_secret, password="guess-guess-guess")
    assert sign_in(web, clock, "hist.one", staff.totp_secret).status_code == 303
    history = web.get("/console/me").text
    assert "登录失败" in history and "登录成功" in history


def test_a_bad_form_or_an_unknown_address_is_a_console_page_not_json(client, container, clock):
    web = console_as(client, container, clock, "bad.form", ("auditor",))
    missing = post_form(web, "/console/me/sessions/not-a-number/end", page="/console/me")  # names no session
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "data-code=\"NOT_FOUND\"" in missing.text
    bad = web.get("/console/dashboards/origination", params={"product_id": "x"})  # a filter that is not one
    assert bad.status_code == 422 and 'data-code="VALIDATION_FAILED"' in bad.text
    unknown = web.get("/console/no-such-desk")
    assert unknown.status_code == 404 and 'data-code="NOT_FOUND"' in unknown.text
    assert client.get("/v1/no-such-route").headers["content-type"].startswith("application/problem+json")


def test_a_console_form_needs_its_own_sessions_token_and_our_origin(client, container, clock):
    web = console_as(client, container, clock, "csrf.one", ("auditor",))
    other = console_as(client, container, clock, "csrf.two", ("auditor",))
    foreign = csrf(other.get("/console"))  # a real token, of another staff member's session
    for answer in (web.post("/console/me/logout-everywhere", data={}),
                   web.post("/console/me/logout-everywhere", data={"csrf_token": foreign}),
                   web.post("/console/me/logout-everywhere", data={"csrf_token": csrf(web.get("/console"))},
                            headers={"Origin": "https://evil.example"})):
        assert answer.status_code == 403 and "表单已过期" in answer.text
    assert web.get("/console").status_code == 200  # nothing was done: still signed in
    assert post_form(web, "/console/me/logout-everywhere", page="/console/me").status_code == 303
