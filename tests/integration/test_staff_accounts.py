"""Staff accounts through the maker-checker inbox (API): an administrator proposes, another approves and is handed
the one-time password once; nobody proposes or approves a change to their own account."""

from __future__ import annotations

import pytest

from tests.console_support import add_staff
from tests.helpers import assert_problem, staff_headers

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


@pytest.fixture
def admins(client, container, clock):
    return [staff_headers(client, container, clock, name, ("admin",)) for name in ("adm.maker", "adm.checker")]


def _me(client, headers):
    return client.get("/v1/staff/me", headers=headers).json()["id"]


def test_a_new_account_is_proposed_approved_and_its_password_shown_once(client, container, admins):
    maker, checker = admins
    proposed = client.post("/v1/staff/accounts", headers=maker, json={
        "username": "Li.Agent", "display_name": "Li Agent", "roles": ["collections"], "reason": "new hire HR-88"})
    assert proposed.status_code == 202, proposed.text
    request = proposed.json()
    assert request["kind"] == "staff_create" and request["state"] == "pending"
    assert request["figures"]["after"] == {"username": "li.agent", "active": True, "roles": ["collections"],
                                           "must_change_password": True, "totp_enrolled": False}
    inbox = client.get("/v1/staff/approvals", headers=checker).json()
    assert [item["kind"] for item in inbox] == ["staff_create"]
    assert_problem(client.post(f"/v1/staff/approvals/{request['id']}/approve", headers=maker, json={}),
                   403, "APPROVAL_OWN_REQUEST")
    approved = client.post(f"/v1/staff/approvals/{request['id']}/approve", headers=checker, json={})
    assert approved.status_code == 200 and approved.headers["cache-control"] == "no-store"
    shown = approved.json()["shown_once"]
    assert shown["username"] == "li.agent" and len(shown["one_time_password"]) >= 20
    assert shown["one_time_password"] not in str(approved.json()["result"])
    again = client.post(f"/v1/staff/approvals/{request['id']}/approve", headers=checker, json={})
    assert again.status_code == 200 and again.json()["shown_once"] is None  # once
    directory = {row["username"]: row for row in client.get("/v1/staff/accounts", headers=checker).json()}
    assert directory["li.agent"]["roles"] == ["collections"] and directory["li.agent"]["must_change_password"]
    audit = client.get("/v1/staff/audit-entries?limit=200", headers=checker).text
    assert shown["one_time_password"] not in audit


def test_nobody_proposes_or_approves_a_change_to_their_own_account(client, container, clock, admins):
    maker, checker = admins
    staff_headers(client, container, clock, "adm.third", ("admin",))
    own = client.post(f"/v1/staff/accounts/{_me(client, maker)}/changes", headers=maker,
                      json={"change": "grant_role", "role": "finance", "reason": "more work"})
    assert_problem(own, 403, "STAFF_NOT_ON_ONESELF")
    about_checker = client.post(f"/v1/staff/accounts/{_me(client, checker)}/changes", headers=maker,
                                json={"change": "reset_totp", "reason": "lost phone"}).json()
    assert_problem(client.post(f"/v1/staff/approvals/{about_checker['id']}/approve", headers=checker, json={}),
                   403, "STAFF_NOT_ON_ONESELF")


def test_a_password_reset_hands_a_new_one_time_password_and_the_last_admins_stay(client, container, clock, admins):
    maker, checker = admins
    agent = add_staff(container, "agent.two", ("collections",))
    reset = client.post(f"/v1/staff/accounts/{agent.staff_id}/changes", headers=maker,
                        json={"change": "reset_password", "reason": "forgot it"}).json()
    approved = client.post(f"/v1/staff/approvals/{reset['id']}/approve", headers=checker, json={}).json()
    assert approved["state"] == "approved" and approved["shown_once"]["one_time_password"]
    disable = client.post(f"/v1/staff/accounts/{_me(client, checker)}/changes", headers=maker,
                          json={"change": "disable", "reason": "left the company"})
    assert_problem(disable, 409, "STAFF_LAST_ADMINISTRATORS")


def test_only_administrators_change_staff_accounts(client, container, clock):
    auditor = staff_headers(client, container, clock, "aud.one", ("auditor",))
    assert client.get("/v1/staff/accounts", headers=auditor).status_code == 200
    sneaky = client.post("/v1/staff/accounts", headers=auditor, json={
        "username": "x.y.z", "display_name": "X", "roles": ["admin"], "reason": "sneaky"})
    assert_problem(sneaky, 403, "STAFF_PERMISSION_DENIED")
