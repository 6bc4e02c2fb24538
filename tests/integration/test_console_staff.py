"""The staff desk: the directory, proposing a new account and a change (maker-checker), never on oneself."""

from __future__ import annotations

import pytest

from miaodai.backoffice.approval_models import ApprovalRequest
from tests.console_support import add_staff, console_as, post_form

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


def _requests(container):
    with container.db.transaction() as session:
        return [(r.kind, r.subject, r.params_dict) for r in session.query(ApprovalRequest).order_by(ApprovalRequest.id)]


def test_an_administrator_proposes_an_account_and_a_change_from_the_desk(client, container, clock):
    web = console_as(client, container, clock, "adm.desk", ("admin",))
    agent = add_staff(container, "agent.desk", ("collections",))
    page = web.get("/console/staff")
    assert page.status_code == 200 and "agent.desk" in page.text and "催收员" in page.text
    refused = post_form(web, "/console/staff", {"username": "li.new", "display_name": "Li", "reason": "hire 12"},
                        page="/console/staff")
    assert 'data-code="STAFF_ROLE_REQUIRED"' in refused.text and 'value="li.new"' in refused.text
    made = post_form(web, "/console/staff", {"username": "li.new", "display_name": "Li", "roles": ["finance"],
                                              "reason": "hire HR-12"}, page="/console/staff")
    assert made.status_code == 303 and made.headers["location"] == "/console/staff?done=proposed"
    changed = post_form(web, f"/console/staff/{agent.staff_id}/changes", {"change": "grant_role", "role": "compliance",
                                                                          "reason": "moves to compliance"},
                        page=f"/console/staff/{agent.staff_id}")
    assert changed.status_code == 303
    assert _requests(container) == [
        ("staff_create", "staff:new:li.new", {"username": "li.new", "display_name": "Li", "roles": ["finance"]}),
        ("staff_grant_role", f"staff:{agent.staff_id}", {"staff_id": agent.staff_id, "role": "compliance"}),
    ]


def test_my_own_account_offers_no_change_and_refuses_one(client, container, clock):
    web = console_as(client, container, clock, "adm.self", ("admin",))
    me = web.get("/console/staff").text
    own_id = int(me.split('/console/staff/')[1].split('"')[0])
    page = web.get(f"/console/staff/{own_id}")
    assert 'data-testid="account-change"' not in page.text
    refused = post_form(web, f"/console/staff/{own_id}/changes",
                        {"change": "grant_role", "role": "finance", "reason": "more power"},
                        page=f"/console/staff/{own_id}")
    assert 'data-code="STAFF_NOT_ON_ONESELF"' in refused.text and _requests(container) == []


def test_an_auditor_reads_the_directory_but_proposes_nothing(client, container, clock):
    web = console_as(client, container, clock, "aud.desk", ("auditor",))
    assert 'data-testid="new-account"' not in web.get("/console/staff").text
    sneaky = post_form(web, "/console/staff", {"username": "x.y", "roles": ["admin"], "reason": "sneaky"})
    assert sneaky.status_code == 403
