"""Staff console login: password + TOTP, replay, the network throttle, sessions and permissions."""

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


def test_five_failures_stop_that_network_not_the_account_whose_owner_still_gets_in(client, container, clock):
    staff = make_staff(container)
    for _ in range(5):
        assert login(client, staff, clock, password="wrong password!").json()["code"] == "STAFF_LOGIN_FAILED"
    # This network has had its failures at this username for the clock hour: even the right password and
    # code are refused from it, unjudged, until the hour ends (02:00:00 + 1 h in the test clock).
    throttled = login(client, staff, clock)
    assert throttled.status_code == 429
    problem = throttled.json()
    assert problem["code"] == "STAFF_LOGIN_THROTTLED"
    assert problem["params"]["retry_at"] == "2026-11-22T03:00:00+00:00" and throttled.headers["retry-after"] == "3600"
    assert "2026-11-22 11:00:00" in problem["message_zh"] and "not locked" in problem["action"]["en"]
    # The owner, from their own network, with the right password and a fresh code, gets in at once, and the
    # account is flagged for the security team.
    owner = staff_service.login(container, username=staff.username, password=PASSWORD,
                                totp_code=code_now(staff, clock), ip="198.51.100.40")
    assert owner.staff.staff_id == staff.staff_id
    actions = audit_actions(container)
    assert actions.count(("staff.review_flagged", f"staff:{staff.staff_id}")) == 2  # at the 5th failure, at login
    assert ("staff.login_throttled", "staff:network") in actions
    with container.db.transaction() as session:
        assert session.execute(select(StaffUser.failed_logins, StaffUser.locked_until)).one() == (0, None)
    # The hour over, the first network may try again.
    clock.advance(timedelta(hours=1))
    assert login(client, staff, clock).status_code == 200


def test_a_network_is_stopped_after_its_hours_failures_across_usernames(container, clock):
    from miaodai.core.errors import DomainError
    from miaodai.identity import staff_rules

    staff = make_staff(container)
    outcomes = []
    for i in range(staff_rules.FAILURES_PER_IP_PER_HOUR + 1):
        try:
            staff_service.login(container, username=f"guess.{i:03d}", password="x" * 12, totp_code="123456",
                                ip="203.0.113.77")
        except DomainError as refused:
            outcomes.append(refused.code)
    assert outcomes == ["STAFF_LOGIN_FAILED"] * staff_rules.FAILURES_PER_IP_PER_HOUR + ["STAFF_LOGIN_THROTTLED"]
    # The real account from that network is throttled too; from elsewhere it is not.
    for ip, expected in (("203.0.113.77", "STAFF_LOGIN_THROTTLED"), ("198.51.100.41", None)):
        try:
            staff_service.login(container, username=staff.username, password=PASSWORD,
                                totp_code=code_now(staff, clock), ip=ip)
            got = None
        except DomainError as refused:
            got = refused.code
        assert got == expected


def test_an_unknown_username_gets_the_same_answers_and_costs_the_same_hash(client, container, clock, monkeypatch):
    staff = make_staff(container)
    verified: list[str] = []
    real_verify = staff_service._password_matches

    def spy(password_hash, password):
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(staff_service, "_password_matches", spy)

    def answers(username: str) -> list[tuple[int, dict, str | None]]:
        out = []
        for _ in range(6):
            response = client.post("/v1/staff/login", json={"username": username, "password": "wrong password!",
                                                            "totp_code": "123456"})
            body = response.json()
            out.append((response.status_code, {k: body[k] for k in ("code", "message_zh", "message_en", "action",
                                                                     "params")}, response.headers.get("retry-after")))
        return out

    known = answers(staff.username)  # the network's failures are per username as well as in all (20)
    unknown = answers("no.such.person")
    assert known == unknown
    assert [body["code"] for _, body, _ in known] == ["STAFF_LOGIN_FAILED"] * 5 + ["STAFF_LOGIN_THROTTLED"]
    # Five argon2 checks each: against the real hash, and against a dummy for the unknown name.
    assert len(verified) == 10 and verified[5] != verified[0] and verified[5].startswith("$argon2")


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
