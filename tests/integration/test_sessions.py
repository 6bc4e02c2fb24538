"""Sessions and devices: a borrower sees where they are logged in, logs out one session or all,
and confirms sensitive actions with a fresh code (step-up)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from miaodai.identity.step_up import RecentStepUp
from tests.helpers import assert_problem, latest_code, login, sandbox_inbox

PHONE = "13812345678"
PAST_COOLDOWN = timedelta(seconds=61)
ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; PJZ110) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36"


@pytest.fixture
def two_devices(client, clock):
    """The same borrower logged in on an iPhone and then on an Android tablet."""
    iphone = login(client, PHONE, device="iphone-device-01")
    clock.advance(PAST_COOLDOWN)
    android = login(client, PHONE, device="android-device-02", user_agent=ANDROID_UA)
    return iphone, android


def test_a_borrower_lists_sessions_and_devices_with_the_current_one_marked(client, two_devices):
    iphone, android = two_devices
    sessions = client.get("/v1/sessions", headers=iphone["headers"]).json()
    assert [s["session_id"] for s in sessions] == [android["session_id"], iphone["session_id"]]
    assert [s["current"] for s in sessions] == [False, True]
    devices = client.get("/v1/devices", headers=android["headers"]).json()
    assert {d["label"]: (d["current"], d["active_sessions"]) for d in devices} == {
        "iPhone": (False, 1), "Android · Chrome": (True, 1),
    }


def test_logging_out_one_session_from_another_device_ends_it(client, two_devices):
    iphone, android = two_devices
    assert client.delete(f"/v1/sessions/{android['session_id']}", headers=iphone["headers"]).status_code == 204
    assert_problem(client.get("/v1/me", headers=android["headers"]), 401, "UNAUTHENTICATED")
    assert client.get("/v1/me", headers=iphone["headers"]).status_code == 200
    assert [s["session_id"] for s in client.get("/v1/sessions", headers=iphone["headers"]).json()] == [
        iphone["session_id"]
    ]
    devices = client.get("/v1/devices", headers=iphone["headers"]).json()
    assert sorted(d["active_sessions"] for d in devices) == [0, 1]  # the device stays known


def test_revoking_a_session_that_is_not_yours_or_not_live_is_not_found(client, clock, two_devices):
    iphone, android = two_devices
    clock.advance(PAST_COOLDOWN)
    stranger = login(client, "13987654321", device="stranger-device")
    problem = assert_problem(client.delete(f"/v1/sessions/{iphone['session_id']}", headers=stranger["headers"]),
                             404, "SESSION_NOT_FOUND")
    assert problem["action"]["en"]
    assert client.get("/v1/me", headers=iphone["headers"]).status_code == 200
    assert_problem(client.delete("/v1/sessions/99999", headers=iphone["headers"]), 404, "SESSION_NOT_FOUND")
    client.delete(f"/v1/sessions/{android['session_id']}", headers=iphone["headers"])
    assert_problem(client.delete(f"/v1/sessions/{android['session_id']}", headers=iphone["headers"]),
                   404, "SESSION_NOT_FOUND")
    assert_problem(client.delete("/v1/sessions/not-a-number", headers=iphone["headers"]), 422, "VALIDATION_FAILED")


def test_logging_out_everywhere_ends_every_session(client, two_devices):
    iphone, android = two_devices
    response = client.post("/v1/sessions/revoke-all", headers=iphone["headers"])
    assert response.json() == {"revoked": 2}
    for device in two_devices:
        assert_problem(client.get("/v1/sessions", headers=device["headers"]), 401, "UNAUTHENTICATED")


def test_logout_ends_this_session_only(client, two_devices):
    iphone, android = two_devices
    assert client.post("/v1/auth/logout", headers=iphone["headers"]).status_code == 204
    assert_problem(client.get("/v1/me", headers=iphone["headers"]), 401, "UNAUTHENTICATED")
    assert client.get("/v1/me", headers=android["headers"]).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer mds_not-a-real-token", "Basic dXNlcjpwYXNz"])
def test_requests_without_a_valid_token_are_unauthenticated(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    for path in ("/v1/me", "/v1/sessions", "/v1/devices"):
        problem = assert_problem(client.get(path, headers=headers), 401, "UNAUTHENTICATED")
        assert problem["action"]["en"]


def test_a_session_expires_after_30_days(client, clock):
    borrower = login(client, PHONE)
    clock.advance(timedelta(days=30) - timedelta(seconds=1))
    assert client.get("/v1/me", headers=borrower["headers"]).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert_problem(client.get("/v1/me", headers=borrower["headers"]), 401, "UNAUTHENTICATED")


@pytest.fixture
def sensitive_client(client):
    """The app with one endpoint guarded like "bind a card" or "draw money" will be."""

    @client.app.post("/test/bind-card")
    def bind_card(auth: RecentStepUp) -> dict[str, int]:
        return {"borrower_id": auth.borrower_id}

    return client


def test_a_fresh_login_counts_as_step_up_for_five_minutes(sensitive_client, clock):
    borrower = login(sensitive_client, PHONE)
    clock.advance(timedelta(seconds=300))
    assert sensitive_client.post("/test/bind-card", headers=borrower["headers"]).json() == {
        "borrower_id": borrower["borrower_id"]
    }
    clock.advance(timedelta(seconds=1))
    problem = assert_problem(sensitive_client.post("/test/bind-card", headers=borrower["headers"]),
                             403, "STEP_UP_REQUIRED")
    assert "/v1/auth/step-up/otp" in problem["action"]["en"] and problem["params"]["step_up_ttl_seconds"] == 300


def test_step_up_with_a_code_sent_to_the_borrowers_own_phone(sensitive_client, clock):
    client = sensitive_client
    borrower = login(client, PHONE)
    clock.advance(timedelta(minutes=10))
    assert_problem(client.post("/test/bind-card", headers=borrower["headers"]), 403, "STEP_UP_REQUIRED")
    sent = client.post("/v1/auth/step-up/otp", json={"channel": "sms"}, headers=borrower["headers"])
    assert sent.status_code == 200
    assert sent.json()["purpose"] == "step_up" and sent.json()["phone_masked"] == "138****5678"
    assert "确认本人操作" in sandbox_inbox(client, PHONE)[0]["text"]
    confirmed = client.post("/v1/auth/step-up", json={"code": latest_code(client, PHONE)}, headers=borrower["headers"])
    assert confirmed.status_code == 200
    assert confirmed.json()["step_up_at"] == "2026-11-22T02:10:00Z"
    assert confirmed.json()["valid_until"] == "2026-11-22T02:15:00Z"
    assert client.post("/test/bind-card", headers=borrower["headers"]).status_code == 200
    clock.advance(timedelta(seconds=301))
    assert_problem(client.post("/test/bind-card", headers=borrower["headers"]), 403, "STEP_UP_REQUIRED")


def test_step_up_is_per_session(sensitive_client, clock, two_devices):
    iphone, android = two_devices
    clock.advance(timedelta(minutes=10))
    client = sensitive_client
    client.post("/v1/auth/step-up/otp", json={}, headers=iphone["headers"])
    client.post("/v1/auth/step-up", json={"code": latest_code(client, PHONE)}, headers=iphone["headers"])
    assert client.post("/test/bind-card", headers=iphone["headers"]).status_code == 200
    assert_problem(client.post("/test/bind-card", headers=android["headers"]), 403, "STEP_UP_REQUIRED")


def test_step_up_codes_follow_the_same_rules_as_login_codes(client, clock):
    borrower = login(client, PHONE)
    headers = borrower["headers"]
    assert_problem(client.post("/v1/auth/step-up", json={"code": "123456"}, headers=headers), 400, "OTP_NOT_REQUESTED")
    assert_problem(client.post("/v1/auth/step-up/otp", json={}, headers=headers), 429, "OTP_RESEND_COOLDOWN")
    clock.advance(PAST_COOLDOWN)
    client.post("/v1/auth/step-up/otp", json={}, headers=headers)
    code = latest_code(client, PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    problem = assert_problem(client.post("/v1/auth/step-up", json={"code": wrong}, headers=headers),
                             400, "OTP_WRONG_CODE")
    assert problem["params"]["attempts_left"] == 4
    clock.advance(timedelta(minutes=5))
    assert_problem(client.post("/v1/auth/step-up", json={"code": code}, headers=headers), 400, "OTP_EXPIRED")
    assert_problem(client.post("/v1/auth/step-up/otp", json={"phone": "13900000009"}, headers=headers),
                   422, "VALIDATION_FAILED")  # a step-up code only ever goes to the borrower's own phone


def test_step_up_needs_a_logged_in_borrower(client):
    assert_problem(client.post("/v1/auth/step-up/otp", json={}), 401, "UNAUTHENTICATED")
    assert_problem(client.post("/v1/auth/step-up", json={"code": "123456"}), 401, "UNAUTHENTICATED")
