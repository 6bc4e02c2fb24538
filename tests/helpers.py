"""Helpers for tests that go through the real HTTP flow (no backdoors into the services)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

DEFAULT_DEVICE = "test-device-0001"
IPHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def device_headers(device: str = DEFAULT_DEVICE, user_agent: str = IPHONE_UA) -> dict[str, str]:
    return {"X-Device-Id": device, "User-Agent": user_agent}


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """A problem document with the given status and code, bilingual, never a 500."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code, problem
    assert problem["message_zh"] and problem["message_en"]
    assert problem["status"] == status
    return problem


def sandbox_inbox(client: TestClient, phone: str) -> list[dict[str, Any]]:
    response = client.get(f"/sandbox/sms/{phone}")
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def latest_code(client: TestClient, phone: str) -> str:
    """The newest code that has arrived at the phone, read from the sandbox inbox."""
    messages = sandbox_inbox(client, phone)
    assert messages, f"no message has arrived at {phone}"
    return messages[0]["code"]


def request_code(client: TestClient, phone: str, *, channel: str = "sms", device: str = DEFAULT_DEVICE) -> Any:
    return client.post("/v1/auth/otp", json={"phone": phone, "channel": channel}, headers=device_headers(device))


def login(
    client: TestClient, phone: str, *, device: str = DEFAULT_DEVICE, user_agent: str = IPHONE_UA,
) -> dict[str, Any]:
    """Log in through the HTTP API (code by SMS, read from the sandbox). Returns
    ``headers`` (Authorization + X-Device-Id) for later calls, ``token``, ``borrower_id``, ``session_id``.

    Asking twice for one number within 60 s hits the resend cooldown: advance the ``clock`` in between.
    """
    sent = request_code(client, phone, device=device)
    assert sent.status_code == 200, sent.text
    response = client.post(
        "/v1/auth/login", json={"phone": phone, "code": latest_code(client, phone)},
        headers=device_headers(device, user_agent),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    headers = {"Authorization": f"Bearer {body['token']}", **device_headers(device, user_agent)}
    return {
        "headers": headers, "token": body["token"], "borrower_id": body["borrower"]["borrower_id"],
        "session_id": body["session_id"], "body": body,
    }


STAFF_PASSWORD = "correct horse battery staple"


def staff_headers(client: TestClient, container: Any, clock: Any, username: str, roles: tuple[str, ...]) -> dict:
    """Create a staff account with ``roles`` and log it in over HTTP (password + TOTP); returns auth headers.

    Use with the ``fast_staff_hasher`` fixture: production argon2 parameters cost ~0.13 s a hash.
    """
    import pyotp

    from miaodai.identity import staff_service

    with container.db.transaction() as session:
        staff = staff_service.add_staff(
            session, container, username=username, display_name=username, roles=list(roles), actor="system:test",
            password=STAFF_PASSWORD,
        )
    response = client.post("/v1/staff/login", json={
        "username": username, "password": STAFF_PASSWORD, "totp_code": pyotp.TOTP(staff.totp_secret).at(clock.now()),
    })
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def step_up(client: TestClient, clock: Any, borrower: dict[str, Any], phone: str) -> None:
    """Confirm a fresh SMS code for a logged-in borrower (the step-up that signing and money moves demand).
    Advances the ``clock`` past the resend cooldown first."""
    from datetime import timedelta

    clock.advance(timedelta(seconds=61))
    sent = client.post("/v1/auth/step-up/otp", json={}, headers=borrower["headers"])
    assert sent.status_code == 200, sent.text
    confirmed = client.post("/v1/auth/step-up", json={"code": latest_code(client, phone)}, headers=borrower["headers"])
    assert confirmed.status_code == 200, confirmed.text


def sign_body(client: TestClient, clock: Any, borrower: dict[str, Any], phone: str, loan_id: int,
              sha256: str, *, channel: str = "sms") -> dict[str, str]:
    """Ask for the code that signs this contract as read (POST /v1/loans/{id}/sign-code, bound to ``sha256``),
    read it from the sandbox inbox, and return the body of POST /v1/loans/{id}/sign. Advances the ``clock``
    past the resend cooldown first."""
    from datetime import timedelta

    clock.advance(timedelta(seconds=61))
    sent = client.post(f"/v1/loans/{loan_id}/sign-code", json={"contract_sha256": sha256, "channel": channel},
                       headers=borrower["headers"])
    assert sent.status_code == 200, sent.text
    return {"contract_sha256": sha256, "code": latest_code(client, phone)}
