"""Staff console login: password + TOTP, replay, lockout, sessions and permissions."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from miaodai.core.audit import AuditEntry
from miaodai.identity import staff_service
from miaodai.identity.models import StaffSession, StaffUser
from miaodai.identity.sessions import hash_token

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_hasher(monkeypatch):
    # Production cost (64 MiB, t=3) is ~0.13 s a hash; the rules under test do not depend on it.
    monkeypatch.setattr(staff_service, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))


def make_staff(container, username="risk.lead", roles=("auditor",), password=PASSWORD):
    with container.db.transaction() as session:
        return staff_service.add_staff(
            session, container, username=username, display_name="Li Lei", roles=roles, actor="system:test",
            password=password,
        )


def code_now(staff, clock, offset_steps=0):
    return pyotp.TOTP(staff.totp_secret).at(clock.now() + timedelta(seconds=30 * offset_steps))


def login(client, staff, clock, password=PASSWORD, code=None):
    return client.post(
        "/v1/staff/login",
        json={"username": staff.username, "password": password, "totp_code": code or code_now(staff, clock)},
    )


def audit_actions(container):
    with container.db.transaction() as session:
        return [(e.action, e.subject) for e in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]


def test_an_auditor_logs_in_reads_the_audit_log_and_logs_out(client, container, clock):
    staff = make_staff(container)
    response = login(client, staff, clock)
    assert response.status_code == 200, response.json()
    token = response.json()["token"]
    assert token.startswith("mdst_")
    auth = {"Authorization": f"Bearer {token}"}

    me = client.get("/v1/staff/me", headers=auth).json()
    assert me["username"] == "risk.lead" and me["roles"] == ["auditor"]
    assert "audit.read" in me["permissions"] and "staff.manage" not in me["permissions"]

    page = client.get("/v1/staff/audit-entries", headers=auth).json()
    assert [e["action"] for e in page["entries"]] == ["staff.login", "staff.created"]
    assert page["entries"][0]["sealed"] is False and page["entries"][0]["seq"] is None

    assert client.post("/v1/staff/logout", headers=auth).status_code == 204
    assert client.get("/v1/staff/me", headers=auth).json()["code"] == "STAFF_UNAUTHENTICATED"
    assert [a for a, _ in audit_actions(container)] == ["staff.created", "staff.login", "staff.logout"]


def test_only_a_keyed_hash_of_the_staff_token_is_stored(client, container, clock):
    staff = make_staff(container)
    token = login(client, staff, clock).json()["token"]
    with container.db.transaction() as session:
        stored = session.execute(select(StaffSession.token_hash)).scalar_one()
        secret_enc = session.execute(select(StaffUser.totp_secret_enc)).scalar_one()
    assert stored == hash_token(token, container.settings.session_pepper)
    assert staff.totp_secret not in secret_enc and container.vault.decrypt(secret_enc, "staff.totp_secret")


@pytest.mark.parametrize("wrong", ["password", "totp"])
def test_a_wrong_password_or_code_gets_the_same_answer(client, container, clock, wrong):
    staff = make_staff(container)
    if wrong == "password":
        response = login(client, staff, clock, password="not the password at all")
    else:
        good = code_now(staff, clock)
        response = login(client, staff, clock, code=f"{(int(good) + 1) % 1_000_000:06d}")
    assert response.status_code == 401
    problem = response.json()
    assert problem["code"] == "STAFF_LOGIN_FAILED"
    assert problem["message_zh"] and problem["message_en"] and problem["action"]["en"]
    failure = [e for e in audit_actions(container) if e[0] == "staff.login_failed"]
    assert failure == [("staff.login_failed", f"staff:{staff.staff_id}")]


def test_an_unknown_username_is_refused_like_a_wrong_password(client, container, clock):
    response = client.post("/v1/staff/login", json={"username": "nobody", "password": "x" * 12, "totp_code": "123456"})
    assert response.status_code == 401 and response.json()["code"] == "STAFF_LOGIN_FAILED"
    assert ("staff.login_failed", "staff:unknown") in audit_actions(container)


def test_a_totp_code_cannot_be_used_twice(client, container, clock):
    staff = make_staff(container)
    code = code_now(staff, clock)
    assert login(client, staff, clock, code=code).status_code == 200
    replay = login(client, staff, clock, code=code)
    assert replay.status_code == 401 and replay.json()["code"] == "STAFF_TOTP_REUSED"
    # An older step than the last accepted one is a replay too; the next step works.
    assert login(client, staff, clock, code=code_now(staff, clock, -1)).json()["code"] == "STAFF_TOTP_REUSED"
    clock.advance(timedelta(seconds=30))
    assert login(client, staff, clock).status_code == 200


def test_five_failures_lock_the_account_for_fifteen_minutes(client, container, clock):
    staff = make_staff(container)
    for _ in range(4):
        assert login(client, staff, clock, password="wrong password!").json()["code"] == "STAFF_LOGIN_FAILED"
    locked = login(client, staff, clock, password="wrong password!")
    assert locked.status_code == 429
    problem = locked.json()
    assert problem["code"] == "STAFF_ACCOUNT_LOCKED"
    assert "2026-11-22 10:15:00" in problem["message_zh"] and "2026-11-22 10:15:00" in problem["message_en"]
    assert problem["params"]["locked_until"] == "2026-11-22T02:15:00+00:00"
    assert locked.headers["retry-after"] == "900"
    # Even the right password and code are refused while the lock lasts.
    clock.advance(timedelta(minutes=14, seconds=59))
    assert login(client, staff, clock).json()["code"] == "STAFF_ACCOUNT_LOCKED"
    clock.advance(timedelta(seconds=1))
    assert login(client, staff, clock).status_code == 200
    assert ("staff.locked", f"staff:{staff.staff_id}") in audit_actions(container)


def test_a_disabled_account_cannot_log_in_and_its_sessions_stop_working(client, container, clock):
    staff = make_staff(container)
    token = login(client, staff, clock).json()["token"]
    with container.db.transaction() as session:
        session.execute(update(StaffUser).values(active=False))
    clock.advance(timedelta(seconds=30))
    refused = login(client, staff, clock)
    assert refused.status_code == 403 and refused.json()["code"] == "STAFF_ACCOUNT_INACTIVE"
    assert client.get("/v1/staff/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_staff_session_expires_after_its_ttl(client, container, clock):
    staff = make_staff(container)
    auth = {"Authorization": f"Bearer {login(client, staff, clock).json()['token']}"}
    clock.advance(timedelta(hours=container.settings.staff_session_ttl_hours) - timedelta(seconds=1))
    assert client.get("/v1/staff/me", headers=auth).status_code == 200
    clock.advance(timedelta(seconds=1))
    expired = client.get("/v1/staff/me", headers=auth)
    assert expired.status_code == 401 and expired.json()["code"] == "STAFF_UNAUTHENTICATED"


def test_the_audit_log_needs_a_staff_token_with_audit_read(client, container, clock):
    assert client.get("/v1/staff/audit-entries").json()["code"] == "STAFF_UNAUTHENTICATED"
    bad = client.get("/v1/staff/audit-entries", headers={"Authorization": "Bearer mdst_made-up"})
    assert bad.status_code == 401
    agent = make_staff(container, username="cs.agent", roles=("customer_service",))
    auth = {"Authorization": f"Bearer {login(client, agent, clock).json()['token']}"}
    denied = client.get("/v1/staff/audit-entries", headers=auth)
    assert denied.status_code == 403
    assert denied.json()["code"] == "STAFF_PERMISSION_DENIED" and "audit.read" in denied.json()["message_en"]


def test_a_borrower_session_token_is_refused_on_staff_routes(client, container, clock):
    from miaodai.identity.models import Borrower, Device
    from miaodai.identity.sessions import open_session

    now = clock.now()
    with container.db.transaction() as session:
        borrower = Borrower(
            phone_enc=container.vault.encrypt("+8613900000001", "borrower.phone"),
            phone_bidx=container.vault.blind_index("+8613900000001", "phone"), created_at=now,
        )
        session.add(borrower)
        session.flush()
        device = Device(borrower_id=borrower.id, device_key_bidx="d" * 64, label="t", first_seen_at=now,
                        last_seen_at=now)
        session.add(device)
        session.flush()
        token, _ = open_session(session, borrower_id=borrower.id, device_id=device.id,
                                pepper=container.settings.session_pepper, now=now, ttl=timedelta(days=1))
    response = client.get("/v1/staff/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json()["code"] == "STAFF_UNAUTHENTICATED"


def test_audit_entries_page_newest_first(client, container, clock):
    staff = make_staff(container)
    with container.db.transaction() as session:
        for i in range(5):
            container.audit.record(session, actor="system", action="test.event", subject=f"thing:{i}")
    auth = {"Authorization": f"Bearer {login(client, staff, clock).json()['token']}"}
    first = client.get("/v1/staff/audit-entries?limit=3", headers=auth).json()
    second = client.get(f"/v1/staff/audit-entries?limit=3&before_id={first['next_before_id']}", headers=auth).json()
    ids = [e["id"] for e in first["entries"] + second["entries"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 6
    assert second["next_before_id"] is not None
    assert client.get("/v1/staff/audit-entries?limit=0", headers=auth).json()["code"] == "VALIDATION_FAILED"


def test_malformed_login_bodies_are_problems_not_crashes(client):
    assert client.post("/v1/staff/login", content=b"{nope", headers={"content-type": "application/json"}
                       ).json()["code"] == "MALFORMED_JSON"
    extra = client.post("/v1/staff/login", json={"username": "a", "password": "b", "totp_code": "123456", "x": 1})
    assert extra.status_code == 422 and extra.json()["code"] == "VALIDATION_FAILED"


def test_a_login_rehashes_a_password_hashed_with_old_parameters(client, container, clock, monkeypatch):
    staff = make_staff(container)
    stronger = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1)
    monkeypatch.setattr(staff_service, "PASSWORD_HASHER", stronger)
    assert login(client, staff, clock).status_code == 200
    with container.db.transaction() as session:
        stored = session.execute(select(StaffUser.password_hash)).scalar_one()
    assert "t=2" in stored and not stronger.check_needs_rehash(stored)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"roles": ("root",)}, "STAFF_UNKNOWN_ROLE"),
        ({"password": "short"}, "STAFF_PASSWORD_TOO_WEAK"),
        ({"username": "1 bad name"}, "STAFF_INVALID_USERNAME"),
    ],
)
def test_creating_an_account_checks_its_inputs(container, kwargs, code):
    from miaodai.core.errors import DomainError

    with pytest.raises(DomainError) as caught:
        make_staff(container, **kwargs)
    assert caught.value.code == code


def test_usernames_are_unique_regardless_of_case(container):
    from miaodai.core.errors import DomainError

    make_staff(container, username="risk.lead")
    with pytest.raises(DomainError) as caught:
        make_staff(container, username="Risk.Lead")
    assert caught.value.code == "STAFF_USERNAME_TAKEN"


def test_staff_create_command_prints_credentials_once_that_log_in(client, settings, clock):
    import re

    from tests.cli_support import run_cli

    result = run_cli(settings, "staff", "create", "audit.lead", "--role", "auditor", "--display-name", "Han Meimei")
    assert result.exit_code == 0, result.output
    password = re.search(r"password\s+(\S+)", result.output).group(1)
    secret = re.search(r"TOTP secret\s+([A-Z2-7]+)", result.output).group(1)
    response = client.post("/v1/staff/login", json={
        "username": "audit.lead", "password": password, "totp_code": pyotp.TOTP(secret).at(clock.now()),
    })
    assert response.status_code == 200 and response.json()["staff"]["display_name"] == "Han Meimei"
    again = run_cli(settings, "staff", "create", "audit.lead", "--role", "auditor")
    assert again.exit_code == 1 and "STAFF_USERNAME_TAKEN" in again.output
    unknown = run_cli(settings, "staff", "create", "someone", "--role", "superuser")
    assert unknown.exit_code == 1 and "STAFF_UNKNOWN_ROLE" in unknown.output
