"""Phone login over HTTP: a borrower asks for a code, reads it from the sandbox and logs in,
and every way this can fail answers with its own bilingual problem (never a 500)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from miaodai.core.audit import AuditEntry
from miaodai.identity.models import Borrower, BorrowerStatus
from tests.helpers import (
    assert_problem,
    device_headers,
    latest_code,
    login,
    request_code,
    sandbox_inbox,
)

PHONE = "13812345678"
PAST_COOLDOWN = timedelta(seconds=61)


def log_in(client, phone=PHONE, code=None, device="test-device-0001"):
    code = code if code is not None else latest_code(client, phone)
    return client.post("/v1/auth/login", json={"phone": phone, "code": code}, headers=device_headers(device))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def assert_retry_later(problem, response, seconds: int) -> None:
    assert problem["params"]["retry_after_seconds"] == seconds
    assert response.headers["retry-after"] == str(seconds)
    when = problem["params"]["retry_at_local"]
    for text in (problem["message_zh"], problem["message_en"], problem["action"]["zh"], problem["action"]["en"]):
        assert when in text
    assert "北京时间" in problem["message_zh"] and "Beijing time" in problem["message_en"]


def test_a_new_borrower_signs_up_with_an_sms_code_and_sees_a_masked_phone(client, container):
    sent = request_code(client, "+86 138-1234-5678")
    assert sent.status_code == 200
    assert sent.json()["phone_masked"] == "138****5678"
    assert sent.json()["channel"] == "sms" and sent.json()["purpose"] == "login"
    response = log_in(client)
    assert response.status_code == 200
    body = response.json()
    assert body["new_borrower"] is True and body["token"].startswith("mds_")
    assert body["borrower"] == {**body["borrower"], "phone_masked": "138****5678", "kyc_status": "none"}
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json()["phone_masked"] == "138****5678" and me.json()["kyc_status"] == "none"
    for text in (sent.text, response.text, me.text):
        assert PHONE not in text
    with container.db.transaction() as session:
        borrower = session.execute(select(Borrower)).scalar_one()
        bodies = session.execute(select(AuditEntry.body)).scalars().all()
    assert PHONE not in borrower.phone_enc and PHONE not in borrower.phone_bidx
    assert any('"login.succeeded"' in b for b in bodies) and any('"borrower.registered"' in b for b in bodies)
    assert not any(PHONE in b for b in bodies)


def test_a_returning_borrower_logs_in_to_the_same_account(client, clock):
    first = login(client, PHONE)
    clock.advance(PAST_COOLDOWN)
    again = login(client, PHONE, device="second-phone-0002")
    assert again["borrower_id"] == first["borrower_id"]
    assert again["body"]["new_borrower"] is False
    assert again["session_id"] != first["session_id"]


@pytest.mark.parametrize(
    ("phone", "code"),
    [("010-12345678", "PHONE_LANDLINE"), ("+85291234567", "PHONE_NOT_MAINLAND"), ("+14155552671", "PHONE_NOT_MAINLAND"),
     ("10086", "PHONE_SHORT_NUMBER"), ("4008123123", "PHONE_NOT_MOBILE"), ("not a phone", "PHONE_INVALID"),
     ("1381234567", "PHONE_INVALID")],
)
def test_numbers_that_cannot_receive_codes_are_refused_with_their_own_code(client, phone, code):
    problem = assert_problem(request_code(client, phone), 422, code)
    assert problem["action"]["zh"] and problem["action"]["en"]
    assert_problem(log_in(client, phone, code="123456"), 422, code)


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "DEVICE_ID_MISSING"), ({"X-Device-Id": "short"}, "DEVICE_ID_INVALID"),
     ({"X-Device-Id": "x" * 65}, "DEVICE_ID_INVALID")],
)
def test_a_request_without_a_valid_device_id_is_refused(client, headers, code):
    problem = assert_problem(client.post("/v1/auth/otp", json={"phone": PHONE}, headers=headers), 400, code)
    assert problem["action"]["en"]
    assert_problem(client.post("/v1/auth/login", json={"phone": PHONE, "code": "123456"}, headers=headers), 400, code)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [({"phone": PHONE, "purpose": "login"}, 422, "VALIDATION_FAILED"),  # unknown field
     ({"phone": 13812345678}, 422, "VALIDATION_FAILED"),
     ({"phone": PHONE, "channel": "fax"}, 422, "VALIDATION_FAILED"),
     ({}, 422, "VALIDATION_FAILED")],
)
def test_malformed_code_requests_are_4xx_problems(client, body, status, code):
    assert_problem(client.post("/v1/auth/otp", json=body, headers=device_headers()), status, code)


def test_malformed_login_requests_are_4xx_problems(client):
    request_code(client, PHONE)
    for body in ({"phone": PHONE, "code": "12345"}, {"phone": PHONE, "code": "abcdef"},
                 {"phone": PHONE, "code": "123456", "remember": True}):
        assert_problem(client.post("/v1/auth/login", json=body, headers=device_headers()), 422, "VALIDATION_FAILED")
    broken = client.post("/v1/auth/login", content=b'{"phone": ', headers={**device_headers(),
                                                                          "Content-Type": "application/json"})
    assert_problem(broken, 400, "MALFORMED_JSON")
    assert log_in(client).status_code == 200  # malformed attempts are not counted as guesses


def test_a_second_code_within_the_cooldown_says_how_long_to_wait(client, clock):
    assert request_code(client, PHONE).status_code == 200
    clock.advance(timedelta(seconds=25))
    response = request_code(client, PHONE)
    problem = assert_problem(response, 429, "OTP_RESEND_COOLDOWN")
    assert_retry_later(problem, response, 35)
    assert "2026-11-22 10:01:00" in problem["action"]["zh"]  # 60 s after 10:00 Beijing time
    clock.advance(timedelta(seconds=35))
    assert request_code(client, PHONE).status_code == 200


def test_the_sixth_code_in_an_hour_is_refused_until_the_first_is_an_hour_old(client, clock):
    for _ in range(5):
        assert request_code(client, PHONE).status_code == 200
        clock.advance(PAST_COOLDOWN)
    response = request_code(client, PHONE)
    problem = assert_problem(response, 429, "OTP_PHONE_HOURLY_LIMIT")
    assert_retry_later(problem, response, 3600 - 5 * 61)
    assert problem["params"]["limit"] == 5
    assert "2026-11-22 11:00:00" in problem["action"]["zh"]
    clock.advance(timedelta(seconds=3600 - 5 * 61))
    assert request_code(client, PHONE).status_code == 200


def test_the_eleventh_code_of_the_day_waits_for_midnight_beijing_time(client, clock):
    for _hour in range(2):
        for _ in range(5):
            assert request_code(client, PHONE).status_code == 200
            clock.advance(PAST_COOLDOWN)
        clock.advance(timedelta(hours=1))
    response = request_code(client, PHONE)
    problem = assert_problem(response, 429, "OTP_PHONE_DAILY_LIMIT")
    assert problem["params"]["retry_at_local"] == "2026-11-23 00:00:00"
    assert problem["params"]["limit"] == 10
    assert_retry_later(problem, response, problem["params"]["retry_after_seconds"])
    clock.advance(timedelta(seconds=problem["params"]["retry_after_seconds"]))
    assert request_code(client, PHONE).status_code == 200


def test_one_device_asking_for_codes_for_many_numbers_is_capped(client):
    for i in range(10):
        assert request_code(client, f"1380000{i:04d}", device="farm-device-01").status_code == 200
    response = request_code(client, "13800009999", device="farm-device-01")
    problem = assert_problem(response, 429, "OTP_DEVICE_HOURLY_LIMIT")
    assert_retry_later(problem, response, 3600)
    assert request_code(client, "13800009999", device="honest-device-02").status_code == 200


def test_one_network_asking_for_codes_for_many_numbers_is_capped(client):
    for i in range(30):
        assert request_code(client, f"1380000{i:04d}", device=f"device-{i:04d}").status_code == 200
    response = request_code(client, "13800009999", device="device-9999")
    problem = assert_problem(response, 429, "OTP_IP_HOURLY_LIMIT")
    assert_retry_later(problem, response, 3600)


def test_a_wrong_code_says_how_many_attempts_are_left_and_the_right_one_still_works(client):
    request_code(client, PHONE)
    problem = assert_problem(log_in(client, code=wrong(latest_code(client, PHONE))), 400, "OTP_WRONG_CODE")
    assert problem["params"]["attempts_left"] == 4
    assert "4" in problem["message_zh"] and problem["action"]["zh"]
    assert log_in(client).status_code == 200


def test_an_expired_code_is_refused(client, clock):
    request_code(client, PHONE)
    clock.advance(timedelta(minutes=5))
    problem = assert_problem(log_in(client), 400, "OTP_EXPIRED")
    assert problem["params"]["ttl_minutes"] == 5
    clock.advance(timedelta(seconds=1))
    request_code(client, PHONE)
    assert log_in(client).status_code == 200


def test_a_code_works_only_once(client):
    request_code(client, PHONE)
    code = latest_code(client, PHONE)
    assert log_in(client, code=code).status_code == 200
    assert_problem(log_in(client, code=code), 400, "OTP_ALREADY_USED")


def test_logging_in_without_asking_for_a_code_is_refused(client):
    assert_problem(log_in(client, code="123456"), 400, "OTP_NOT_REQUESTED")


def test_only_the_newest_code_counts(client, clock):
    request_code(client, PHONE)
    old = latest_code(client, PHONE)
    clock.advance(PAST_COOLDOWN)
    request_code(client, PHONE)
    new = latest_code(client, PHONE)
    if old != new:
        assert_problem(log_in(client, code=old), 400, "OTP_WRONG_CODE")
    assert log_in(client, code=new).status_code == 200


def test_a_step_up_code_does_not_log_in_and_a_login_code_does_not_step_up(client, clock):
    borrower = login(client, PHONE)
    clock.advance(PAST_COOLDOWN)
    request_code(client, PHONE, device="stolen-phone-09")  # a login code someone else waits for
    login_code = latest_code(client, PHONE)
    clock.advance(PAST_COOLDOWN)
    assert client.post("/v1/auth/step-up/otp", json={}, headers=borrower["headers"]).status_code == 200
    step_up_code = latest_code(client, PHONE)
    if step_up_code != login_code:
        assert_problem(log_in(client, code=step_up_code, device="stolen-phone-09"), 400, "OTP_WRONG_CODE")
        refused = client.post("/v1/auth/step-up", json={"code": login_code}, headers=borrower["headers"])
        assert_problem(refused, 400, "OTP_WRONG_CODE")
    assert client.post("/v1/auth/step-up", json={"code": step_up_code}, headers=borrower["headers"]).status_code == 200


def test_five_wrong_codes_burn_the_code_and_stop_that_network_at_the_number_not_the_number(client, clock, container):
    from miaodai.identity.login_service import ClientInfo, log_in_with_code

    request_code(client, PHONE)
    right = latest_code(client, PHONE)
    for attempts_left in (4, 3, 2, 1):
        problem = assert_problem(log_in(client, code=wrong(right)), 400, "OTP_WRONG_CODE")
        assert problem["params"]["attempts_left"] == attempts_left
    problem = assert_problem(log_in(client, code=wrong(right)), 429, "OTP_TOO_MANY_WRONG_GUESSES")
    assert "new code" in problem["action"]["en"] and "重新获取" in problem["action"]["zh"]
    # This network has had its wrong codes at this number for the clock hour: even the right code is not
    # compared (it is burned anyway), and the answer says when the hour ends.
    response = log_in(client, code=right)
    problem = assert_problem(response, 429, "OTP_WRONG_CODES_FROM_NETWORK")
    assert_retry_later(problem, response, 3600)
    assert problem["params"]["limit"] == 5
    # The number itself is not locked: its owner, elsewhere, asks for a new code and logs in.
    clock.advance(PAST_COOLDOWN)
    assert request_code(client, PHONE).status_code == 200
    owner = ClientInfo("198.51.100.23", "owners-own-phone-01")
    assert log_in_with_code(container, phone=PHONE, code=latest_code(client, PHONE), client=owner).new_borrower
    with container.db.transaction() as session:
        actions = session.execute(select(AuditEntry.action)).scalars().all()
    assert actions.count("otp.wrong_guess") == 4 and actions.count("otp.burned") == 1
    assert "login.locked_out" not in actions


def test_when_sms_fails_the_borrower_is_told_to_ask_for_a_voice_code_and_can_at_once(client):
    phone = "13900000001"  # sandbox: SMS fails, voice works
    problem = assert_problem(request_code(client, phone), 502, "SMS_DELIVERY_FAILED")
    assert "voice" in problem["action"]["en"] and "语音" in problem["action"]["zh"]
    assert sandbox_inbox(client, phone) == []
    assert_problem(log_in(client, phone, code="123456"), 400, "OTP_NOT_REQUESTED")
    voice = request_code(client, phone, channel="voice")
    assert voice.status_code == 200 and voice.json()["channel"] == "voice"
    [message] = sandbox_inbox(client, phone)
    assert message["channel"] == "voice"
    assert log_in(client, phone).status_code == 200


def test_when_sms_and_voice_both_fail_the_borrower_is_told_what_to_do(client):
    phone = "13900000002"  # sandbox: every channel fails
    assert_problem(request_code(client, phone), 502, "SMS_DELIVERY_FAILED")
    problem = assert_problem(request_code(client, phone, channel="voice"), 502, "VOICE_DELIVERY_FAILED")
    assert problem["action"]["zh"] and "support" in problem["action"]["en"]
    assert sandbox_inbox(client, phone) == []
    assert_problem(log_in(client, phone, code="123456"), 400, "OTP_NOT_REQUESTED")
    # A failed voice call does not waive the cooldown again.
    assert_problem(request_code(client, phone, channel="voice"), 429, "OTP_RESEND_COOLDOWN")


def test_a_closed_account_cannot_log_in(client, clock, container):
    login(client, PHONE)
    with container.db.transaction() as session:
        session.execute(update(Borrower).values(status=BorrowerStatus.CLOSED))
    clock.advance(PAST_COOLDOWN)
    request_code(client, PHONE)
    assert_problem(log_in(client), 403, "ACCOUNT_CLOSED")


def test_a_code_redeemed_twice_at_the_same_moment_logs_in_once(client, container):
    from concurrent.futures import ThreadPoolExecutor

    from miaodai.core.errors import DomainError
    from miaodai.identity.login_service import ClientInfo, log_in_with_code

    request_code(client, PHONE)
    code = latest_code(client, PHONE)

    def attempt(i: int) -> str:
        try:
            log_in_with_code(container, phone=PHONE, code=code, client=ClientInfo("10.0.0.1", f"racing-device-{i}"))
        except DomainError as refused:
            return refused.code
        return "ok"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(attempt, range(4)))
    assert outcomes == ["OTP_ALREADY_USED"] * 3 + ["ok"]
