"""A maker withdraws their own pending request (miaodai.backoffice.approvals.withdraw): only the maker, only while
it waits, with a reason, audited; ``withdrawn`` is final and nothing of the action runs. A withdrawal and an
approval at the same moment end in exactly one of the two — on PostgreSQL the later one is seen waiting for the
request's row lock while the first holds it with everything written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from miaodai.backoffice import approvals
from miaodai.backoffice.actions import ActionKind
from miaodai.core.audit import AuditEntry
from miaodai.ledger.models import JournalEntry
from tests import race_support
from tests.helpers import assert_problem
from tests.integration import test_approvals
from tests.integration.test_approvals import approval, line_of, staff, unpaid_penalty
from tests.loan_support import assert_book_sound
from tests.race_support import WAIT, Worker, lock_waits

borrower = test_approvals.borrower  # the fixtures, shared
late_loan = test_approvals.late_loan
hold = race_support.hold


def test_only_the_maker_withdraws_a_pending_request_and_then_nobody_decides_it(client, clock, container,
                                                                               fast_staff_hasher, borrower):
    maker, _ = staff(client, container, clock, "agent", ("customer_service",))
    colleague, _ = staff(client, container, clock, "agent-2", ("customer_service",))
    checker, _ = staff(client, container, clock, "checker", ("risk_manager",))
    line = line_of(client, borrower)
    request = client.post(f"/v1/staff/credit-lines/{line['id']}/freeze", json={"reason": "lost phone"},
                          headers=maker).json()
    path = f"/v1/staff/approvals/{request['id']}"

    assert_problem(client.post(f"{path}/withdraw", json={"reason": "not yours"}, headers=colleague),
                   403, "APPROVAL_NOT_MAKER")  # may propose the kind, but did not propose this one
    assert_problem(client.post(f"{path}/withdraw", json={"reason": "not yours"}, headers=checker),
                   403, "APPROVAL_NOT_ALLOWED")  # a checker, who may not propose this kind
    assert_problem(client.post(f"{path}/withdraw", json={}, headers=maker), 422, "VALIDATION_FAILED")
    assert approval(container, request["id"]).state.value == "pending"

    withdrawn = client.post(f"{path}/withdraw", json={"reason": "phone found"}, headers=maker)
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert (body["state"], body["checker_id"], body["decision_reason"]) == ("withdrawn", None, "phone found")
    assert body["decided_at"] is not None
    again = client.post(f"{path}/withdraw", json={"reason": "phone found"}, headers=maker)  # a retry
    assert again.status_code == 200 and again.json()["state"] == "withdrawn"

    assert_problem(client.post(f"{path}/approve", json={}, headers=checker), 409, "APPROVAL_NOT_PENDING")
    assert_problem(client.post(f"{path}/reject", json={"reason": "too late"}, headers=checker),
                   409, "APPROVAL_NOT_PENDING")
    assert line_of(client, borrower)["status"] == "active"  # nothing of it ran
    assert client.get("/v1/staff/approvals", headers=checker).json() == []
    assert client.get("/v1/staff/approvals?mine=true", headers=maker).json() == []
    with container.db.transaction() as session:
        entries = session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.body).where(
            AuditEntry.subject == f"approval:{request['id']}").order_by(AuditEntry.id)).all()
    assert [action for _, action, _ in entries] == ["approval.proposed", "approval.withdrawn"]
    assert entries[1][0] == f"staff:{body['maker_id']}" and "phone found" in entries[1][2]

    # No longer waiting, it no longer blocks the same action on the same line; a decided one cannot be withdrawn.
    second = client.post(f"/v1/staff/credit-lines/{line['id']}/freeze", json={"reason": "lost it again"},
                         headers=maker)
    assert second.status_code == 202, second.text
    assert client.post(f"/v1/staff/approvals/{second.json()['id']}/approve", json={},
                       headers=checker).status_code == 200
    assert_problem(client.post(f"/v1/staff/approvals/{second.json()['id']}/withdraw", json={"reason": "oops"},
                               headers=maker), 409, "APPROVAL_NOT_PENDING")
    assert approval(container, second.json()["id"]).state.value == "approved"


# -- a withdrawal racing an approval --------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["approve", "withdraw"])
def test_a_withdrawal_racing_an_approval_ends_in_exactly_one_of_them(client, clock, container, fast_staff_hasher,
                                                                     late_loan, hold, backend, first):
    _, maker = staff(client, container, clock, "agent", ("customer_service",))
    _, checker = staff(client, container, clock, "checker", ("risk_manager",))
    loan_id = late_loan["id"]
    unpaid = unpaid_penalty(container, loan_id)
    request = approvals.propose(container, maker, ActionKind.PENALTY_WAIVER, {"loan_id": loan_id, "amount_fen": 1},
                                reason="goodwill")
    runs = {"approve": lambda: approvals.approve(container, checker, request.id, reason="ok").state.value,
            "withdraw": lambda: approvals.withdraw(container, maker, request.id, reason="changed my mind").state.value}
    second = "withdraw" if first == "approve" else "approve"

    leader = Worker(hold.armed(runs[first]))
    leader.start()
    assert hold.reached.wait(WAIT), f"{first} never reached its commit"
    follower = Worker(runs[second])
    follower.start()
    blocked = lock_waits(container) if backend == "postgresql" else True  # SQLite: one writer
    hold.go.set()
    outcomes = {first: leader.result(), second: follower.result()}

    won = "approved" if first == "approve" else "withdrawn"
    assert outcomes == {first: won, second: "APPROVAL_NOT_PENDING"}
    assert blocked, f"the {second} did not wait for the request's lock"
    decided = approval(container, request.id)
    assert decided.state.value == won
    assert (decided.checker_id is None) == (won == "withdrawn")
    with container.db.transaction() as session:
        waivers = session.execute(select(JournalEntry.id).where(JournalEntry.kind == "penalty_waiver")).all()
        audited = session.execute(select(AuditEntry.action).where(
            AuditEntry.subject == f"approval:{request.id}")).scalars().all()
    assert len(waivers) == (1 if won == "approved" else 0)
    assert unpaid_penalty(container, loan_id) == unpaid - (1 if won == "approved" else 0)
    assert sorted(audited) == sorted(["approval.proposed", f"approval.{won}"])
    assert_book_sound(container)
