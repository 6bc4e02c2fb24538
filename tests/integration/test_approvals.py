"""Maker-checker for servicing actions (miaodai.backoffice): one staff member proposes with the figures shown
first, a different one approves and the action runs in that transaction — or it fails, leaving nothing behind.
The maker never approves their own request (the service and the database refuse it); two checkers at once
execute it once. Penalty waivers are exact to the fen and keep the book sound."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from threading import Barrier

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from miaodai.backoffice import approvals
from miaodai.backoffice.actions import ActionKind
from miaodai.backoffice.approval_models import ApprovalRequest
from miaodai.core.audit import AuditEntry
from miaodai.core.errors import DomainError
from miaodai.demo import DEMO_BORROWERS
from miaodai.identity.models import StaffUser
from miaodai.identity.staff_service import StaffContext
from miaodai.ledger.accounts import Account
from miaodai.ledger.models import JournalEntry
from miaodai.ledger.service import loan_subledger
from miaodai.loans import servicing
from miaodai.loans.models import CreditLine, LoanInstallment
from tests.helpers import assert_problem, device_headers, latest_code, login, request_code, staff_headers
from tests.loan_support import PHONE, active_loan, assert_book_sound, close_through, demo_borrower, repay


@pytest.fixture
def borrower(client, container):
    return demo_borrower(client, container)


def staff(client, container, clock, username, roles):
    """(auth headers, the StaffContext the service sees) of a new staff member with ``roles``."""
    headers = staff_headers(client, container, clock, username, roles)
    with container.db.transaction() as session:
        staff_id = session.execute(select(StaffUser.id).where(StaffUser.username == username)).scalar_one()
    return headers, StaffContext(staff_id, username, username, frozenset(roles), 0)


def line_of(client, borrower):
    return client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]


def approval(container, approval_id) -> ApprovalRequest:
    with container.db.transaction() as session:
        return session.get_one(ApprovalRequest, approval_id)


# -- freeze, unfreeze: the generic flow ----------------------------------------------------------------------


def test_a_freeze_is_proposed_with_its_figures_and_runs_only_when_another_approves(client, clock, container,
                                                                                     fast_staff_hasher, borrower):
    agent, _ = staff(client, container, clock, "agent", ("customer_service",))
    checker, _ = staff(client, container, clock, "checker", ("risk_manager",))
    line = line_of(client, borrower)
    shown = client.post("/v1/staff/approvals/preview", json={"kind": "line_freeze", "line_id": line["id"]},
                        headers=agent)
    assert shown.status_code == 200, shown.text
    assert (shown.json()["before"]["status"], shown.json()["after"]["status"]) == ("active", "frozen")

    assert_problem(client.post("/v1/staff/approvals/preview", json={"kind": "line_freeze", "loan_id": 1},
                               headers=agent), 422, "APPROVAL_PARAMS_INVALID")
    assert_problem(client.post("/v1/staff/approvals/preview", json={"kind": "staff_disable", "line_id": 1},
                               headers=agent), 422, "APPROVAL_PARAMS_INVALID")  # its own form, no preview here

    proposed = client.post(f"/v1/staff/credit-lines/{line['id']}/freeze", json={"reason": "borrower lost phone"},
                           headers=agent)
    assert proposed.status_code == 202, proposed.text
    request = proposed.json()
    assert (request["state"], request["kind"], request["subject"]) == (
        "pending", "line_freeze", f"credit_line:{line['id']}")
    assert request["figures"] == {"before": shown.json()["before"], "after": shown.json()["after"]}
    assert line_of(client, borrower)["status"] == "active"  # nothing happens before a checker approves
    # The same action on the same line cannot wait twice.
    assert_problem(client.post(f"/v1/staff/credit-lines/{line['id']}/freeze", json={"reason": "again"},
                               headers=agent), 409, "APPROVAL_ALREADY_PENDING")
    # Customer service may propose, not approve.
    assert_problem(client.post(f"/v1/staff/approvals/{request['id']}/approve", json={}, headers=agent),
                   403, "STAFF_PERMISSION_DENIED")

    approved = client.post(f"/v1/staff/approvals/{request['id']}/approve", json={"reason": "confirmed by phone"},
                           headers=checker)
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved" and approved.json()["result"]["status"] == "frozen"
    assert line_of(client, borrower)["status"] == "frozen"
    drawn = client.post("/v1/loans", json={"line_id": line["id"], "principal_fen": 100_000, "term_months": 3},
                        headers={**borrower["headers"], "Idempotency-Key": "frozen-draw"})
    assert_problem(drawn, 409, "LOAN_LINE_NOT_USABLE")
    assert_problem(client.post(f"/v1/staff/approvals/{request['id']}/reject", json={"reason": "too late"},
                               headers=checker), 409, "APPROVAL_NOT_PENDING")
    with container.db.transaction() as session:
        actions = session.execute(select(AuditEntry.action).where(
            AuditEntry.subject.in_((f"approval:{request['id']}", f"credit_line:{line['id']}")))).scalars().all()
    assert sorted(a for a in actions if a != "credit_line.grant") == [  # (the demo line's grant)
        "approval.approved", "approval.proposed", "credit.line.frozen"]

    # Unfreezing is its own four-eyes action; a rejection changes nothing.
    second = client.post(f"/v1/staff/credit-lines/{line['id']}/unfreeze", json={"reason": "phone found"},
                         headers=agent).json()
    assert_problem(client.post(f"/v1/staff/approvals/{second['id']}/reject", json={}, headers=checker),
                   422, "VALIDATION_FAILED")
    rejected = client.post(f"/v1/staff/approvals/{second['id']}/reject", json={"reason": "not verified"},
                           headers=checker)
    assert rejected.json()["state"] == "rejected" and line_of(client, borrower)["status"] == "frozen"
    third = client.post(f"/v1/staff/credit-lines/{line['id']}/unfreeze", json={"reason": "verified in branch"},
                        headers=agent).json()
    assert client.post(f"/v1/staff/approvals/{third['id']}/approve", json={}, headers=checker).status_code == 200
    assert line_of(client, borrower)["status"] == "active"


def test_the_maker_cannot_approve_their_own_request_in_the_service_or_the_database(client, clock, container,
                                                                                    fast_staff_hasher, borrower):
    maker_headers, maker = staff(client, container, clock, "fin-a", ("finance",))  # may propose and approve
    line = line_of(client, borrower)
    request = approvals.propose(container, maker, ActionKind.LINE_FREEZE, {"line_id": line["id"]}, reason="fraud?")
    with pytest.raises(DomainError) as refused:
        approvals.approve(container, maker, request.id)
    assert refused.value.code == "APPROVAL_OWN_REQUEST"
    assert_problem(client.post(f"/v1/staff/approvals/{request.id}/approve", json={}, headers=maker_headers),
                   403, "APPROVAL_OWN_REQUEST")
    # Whatever code writes the row, the database refuses a checker who is the maker.
    with pytest.raises(IntegrityError), container.db.transaction() as session:
        session.execute(update(ApprovalRequest).where(ApprovalRequest.id == request.id)
                        .values(state="approved", checker_id=maker.staff_id))
    assert approval(container, request.id).state.value == "pending"
    assert line_of(client, borrower)["status"] == "active"


def test_a_retried_proposal_finds_the_request_it_made_and_its_key_is_for_that_proposal_only(
        client, clock, container, fast_staff_hasher, borrower):
    _, maker = staff(client, container, clock, "fin-a", ("finance",))
    line = line_of(client, borrower)
    first = approvals.propose(container, maker, ActionKind.LINE_FREEZE, {"line_id": line["id"]}, reason="fraud?",
                              request_key="k-1")
    again = approvals.propose(container, maker, ActionKind.LINE_FREEZE, {"line_id": line["id"]}, reason="fraud?",
                              request_key="k-1")
    assert again.id == first.id
    with pytest.raises(DomainError) as reused:
        approvals.propose(container, maker, ActionKind.LINE_LIMIT, {"line_id": line["id"], "limit_fen": 1_000_000},
                          reason="other", request_key="k-1")
    assert reused.value.code == "APPROVAL_KEY_REUSED"
    with container.db.transaction() as session:
        assert session.execute(select(ApprovalRequest.id)).scalars().all() == [first.id]


# -- a loan with penalty interest and a late fee --------------------------------------------------------------


@pytest.fixture
def late_loan(client, clock, container, borrower):
    """The demo loan with its first installment 5 days past due: penalty interest and the late fee charged."""
    loan = active_loan(client, clock, borrower)
    due1 = date.fromisoformat(loan["installments"][0]["due_date"])
    close_through(container, clock, due1 + timedelta(days=5))
    return loan


def installments(container, loan_id):
    with container.db.transaction() as session:
        return list(session.execute(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id)
                                    .order_by(LoanInstallment.period)).scalars())


def unpaid_penalty(container, loan_id):
    return sum(r.penalty_fen - r.penalty_paid_fen for r in installments(container, loan_id))


def test_a_waiver_takes_exactly_the_amount_off_what_is_owed_and_the_book(client, clock, container, fast_staff_hasher,
                                                                        late_loan):
    agent, _ = staff(client, container, clock, "agent", ("customer_service",))
    checker, _ = staff(client, container, clock, "checker", ("risk_manager",))
    loan_id = late_loan["id"]
    charged = unpaid_penalty(container, loan_id)
    assert charged >= 2  # penalty interest (and the late fee, within the cost cap)
    with container.db.transaction() as session:
        owed_before = loan_subledger(session, loan_id)
    assert owed_before.penalty_fen == charged

    assert_problem(client.post(f"/v1/staff/loans/{loan_id}/penalty-waivers",
                               json={"amount_fen": charged + 1, "reason": "too much"}, headers=agent),
                   422, "LOAN_WAIVER_TOO_LARGE")
    amount = charged - 1  # all but one fen
    proposed = client.post(f"/v1/staff/loans/{loan_id}/penalty-waivers",
                           json={"amount_fen": amount, "reason": "hospital stay, documents seen"}, headers=agent)
    assert proposed.status_code == 202, proposed.text
    figures = proposed.json()["figures"]
    assert figures["before"]["penalty_unpaid_fen"] - figures["after"]["penalty_unpaid_fen"] == amount
    assert figures["before"]["owed_fen"] - figures["after"]["owed_fen"] == amount
    approved = client.post(f"/v1/staff/approvals/{proposed.json()['id']}/approve", json={}, headers=checker)
    assert approved.status_code == 200 and approved.json()["state"] == "approved", approved.text

    assert unpaid_penalty(container, loan_id) == 1
    with container.db.transaction() as session:  # the same waiver again (its key): nothing changes
        servicing.waive_penalty_in(session, container, loan_id, amount, key=f"approval:{proposed.json()['id']}",
                                   actor="staff:test", reason="again")
    assert unpaid_penalty(container, loan_id) == 1
    with container.db.transaction() as session:
        owed_after = loan_subledger(session, loan_id)
        [entry] = session.execute(select(JournalEntry).where(JournalEntry.kind == "penalty_waiver")).scalars().all()
        legs = {(leg.account, leg.amount_fen) for leg in entry.legs}
    assert owed_after.penalty_fen == 1 and owed_after.principal_fen == owed_before.principal_fen
    assert legs == {(Account.PENALTY_INCOME.value, amount), (Account.PENALTY_RECEIVABLE.value, -amount)}
    assert_book_sound(container)
    borrower = login(client, PHONE)
    lines = client.get(f"/v1/loans/{loan_id}/statement", headers=borrower["headers"]).json()
    assert lines[-1]["kind"] == "penalty_waiver" and lines[-1]["change"]["penalty_fen"] == -amount
    assert lines[-1]["name_zh"] == "罚息及滞纳金减免"
    assert lines[-1]["balance"]["penalty_fen"] == 1 and lines[-1]["cash_fen"] == 0


def test_a_waiver_no_longer_possible_when_approved_fails_and_changes_nothing(client, clock, container,
                                                                             fast_staff_hasher, late_loan):
    _, agent = staff(client, container, clock, "agent", ("customer_service",))
    _, checker = staff(client, container, clock, "checker", ("risk_manager",))
    loan_id = late_loan["id"]
    request = approvals.propose(container, agent, ActionKind.PENALTY_WAIVER, {"loan_id": loan_id}, reason="goodwill")
    assert request.params_dict["amount_fen"] == unpaid_penalty(container, loan_id)  # "all of it", fixed when proposed
    # The borrower pays what is due (penalty first) before the checker gets to it.
    first = installments(container, loan_id)[0]
    due = (first.principal_fen + first.interest_fen + first.fee_fen + first.penalty_fen)
    assert repay(client, loan_id, due, "pay-before-waiver").status_code == 200
    decided = approvals.approve(container, checker, request.id, reason="ok")
    assert (decided.state.value, decided.error_code) == ("failed", "LOAN_NOTHING_TO_WAIVE")
    with container.db.transaction() as session:
        assert session.execute(select(JournalEntry.id).where(JournalEntry.kind == "penalty_waiver")).first() is None
        audited = session.execute(select(AuditEntry.action).where(AuditEntry.subject == f"approval:{request.id}")
                                  ).scalars().all()
    assert sorted(audited) == ["approval.failed", "approval.proposed"]
    assert_book_sound(container)


def test_two_checkers_approving_at_once_execute_the_waiver_once(client, clock, container, fast_staff_hasher,
                                                                late_loan):
    _, agent = staff(client, container, clock, "agent", ("customer_service",))
    checkers = [staff(client, container, clock, f"checker-{n}", ("risk_manager",))[1] for n in range(4)]
    loan_id = late_loan["id"]
    charged = unpaid_penalty(container, loan_id)
    request = approvals.propose(container, agent, ActionKind.PENALTY_WAIVER,
                                {"loan_id": loan_id, "amount_fen": charged // 2}, reason="goodwill")
    start = Barrier(len(checkers))

    def approve(checker):
        start.wait()
        try:
            return approvals.approve(container, checker, request.id).state.value
        except DomainError as refused:
            return refused.code

    with ThreadPoolExecutor(len(checkers)) as pool:
        outcomes = list(pool.map(approve, checkers))
    assert sorted(outcomes) == ["APPROVAL_NOT_PENDING"] * 3 + ["approved"]
    assert unpaid_penalty(container, loan_id) == charged - charged // 2
    with container.db.transaction() as session:
        entries = session.execute(select(JournalEntry.id).where(JournalEntry.kind == "penalty_waiver")).all()
    assert len(entries) == 1
    assert_book_sound(container)


# -- limits ------------------------------------------------------------------------------------------------


def test_a_limit_moves_within_policy_and_never_below_what_is_drawn(client, clock, container, fast_staff_hasher,
                                                                  borrower):
    agent, _ = staff(client, container, clock, "agent", ("customer_service",))
    checker, _ = staff(client, container, clock, "checker", ("finance",))
    loan = active_loan(client, clock, borrower, principal_fen=500_000)
    line = line_of(client, borrower)
    drawn = line["limit_fen"] - line["available_fen"]
    assert drawn == loan["principal_fen"]
    path = f"/v1/staff/credit-lines/{line['id']}/limit"
    too_low = client.post(path, json={"limit_fen": drawn - 10_000, "reason": "cut"}, headers=agent)
    assert_problem(too_low, 422, "LOAN_LINE_LIMIT_OUT_OF_POLICY")
    # The policy's internet-consumer-credit cap: RMB 200,000 across the borrower's lines.
    assert_problem(client.post(path, json={"limit_fen": 20_000_000 + 10_000, "reason": "raise"}, headers=agent),
                   422, "LOAN_LINE_LIMIT_OUT_OF_POLICY")
    assert_problem(client.post(path, json={"limit_fen": drawn + 12_345, "reason": "odd"}, headers=agent),
                   422, "LOAN_LINE_LIMIT_OUT_OF_POLICY")  # not a multiple of the policy's step
    new_limit = drawn + 100_000
    proposed = client.post(path, json={"limit_fen": new_limit, "reason": "income fell"}, headers=agent)
    assert proposed.status_code == 202, proposed.text
    assert proposed.json()["figures"]["after"] == {**proposed.json()["figures"]["before"], "limit_fen": new_limit,
                                                   "available_fen": 100_000}
    approved = client.post(f"/v1/staff/approvals/{proposed.json()['id']}/approve", json={}, headers=checker)
    assert approved.json()["state"] == "approved", approved.text
    after = line_of(client, borrower)
    assert (after["limit_fen"], after["available_fen"]) == (new_limit, 100_000)
    with container.db.transaction() as session:
        assert session.get_one(CreditLine, line["id"]).limit_fen == new_limit


# -- account closure ---------------------------------------------------------------------------------------


def test_an_account_closes_only_when_nothing_is_owed_and_then_login_is_refused(client, clock, container,
                                                                               fast_staff_hasher, borrower):
    agent, _ = staff(client, container, clock, "agent", ("customer_service",))
    checker, _ = staff(client, container, clock, "checker", ("risk_manager",))
    active_loan(client, clock, borrower)
    refused = client.post(f"/v1/staff/borrowers/{borrower['borrower_id']}/closure", json={"reason": "asked to"},
                          headers=agent)
    assert_problem(refused, 409, "ACCOUNT_HAS_OPEN_LOANS")

    other = login(client, DEMO_BORROWERS[2].phone)  # verified, no line used, no loan
    proposed = client.post(f"/v1/staff/borrowers/{other['borrower_id']}/closure",
                           json={"reason": "borrower asked by phone"}, headers=agent)
    assert proposed.status_code == 202, proposed.text
    assert proposed.json()["figures"]["after"]["status"] == "closed"
    assert client.get("/v1/me", headers=other["headers"]).status_code == 200
    approved = client.post(f"/v1/staff/approvals/{proposed.json()['id']}/approve", json={}, headers=checker)
    assert approved.json()["state"] == "approved", approved.text
    assert client.get("/v1/me", headers=other["headers"]).status_code == 401  # the session is revoked
    clock.advance(timedelta(minutes=2))  # past the resend cooldown
    phone = DEMO_BORROWERS[2].phone
    assert request_code(client, phone).status_code == 200
    assert_problem(client.post("/v1/auth/login", json={"phone": phone, "code": latest_code(client, phone)},
                               headers=device_headers()), 403, "ACCOUNT_CLOSED")
    assert_problem(client.post("/v1/staff/borrowers/{}/closure".format(other["borrower_id"]),
                               json={"reason": "twice"}, headers=agent), 409, "ACCOUNT_ALREADY_CLOSED")
    with container.db.transaction() as session:
        closed = session.execute(text("SELECT status FROM borrowers WHERE id = :id"),
                                 {"id": other["borrower_id"]}).scalar_one()
    assert closed == "closed"


# -- the inbox -------------------------------------------------------------------------------------------------


def test_the_inbox_lists_what_each_checker_may_approve_from_every_table(client, clock, container, fast_staff_hasher,
                                                                        borrower):
    agent, _ = staff(client, container, clock, "agent", ("customer_service",))
    reviewer, _ = staff(client, container, clock, "reviewer", ("risk_reviewer",))
    manager, _ = staff(client, container, clock, "manager", ("risk_manager",))
    finance, _ = staff(client, container, clock, "finance", ("finance",))
    line = line_of(client, borrower)
    freeze = client.post(f"/v1/staff/credit-lines/{line['id']}/freeze", json={"reason": "suspicious login"},
                         headers=agent).json()
    clock.advance(timedelta(minutes=5))
    other = login(client, DEMO_BORROWERS[2].phone)
    proposal = client.post("/v1/staff/credit-line-proposals", headers=reviewer, json={
        "borrower_id": other["borrower_id"], "product_code": "DEMO-12", "limit_fen": 1_000_000, "annual_rate": "0.12",
        "risk_grade": "B", "expires_on": "2027-11-22", "reason": "salary verified"})
    assert proposal.status_code == 201, proposal.text
    clock.advance(timedelta(minutes=5))

    oldest = client.get("/v1/staff/approvals", headers=manager).json()
    assert [(i["source"], i["id"]) for i in oldest] == [("approval", str(freeze["id"])),
                                                       ("credit_line_proposal", str(proposal.json()["id"]))]
    assert oldest[0]["age_seconds"] == 600 and oldest[0]["link"] == f"/v1/staff/approvals/{freeze['id']}"
    newest = client.get("/v1/staff/approvals", params={"order": "newest"}, headers=manager).json()
    assert [i["id"] for i in newest] == [i["id"] for i in reversed(oldest)]
    # Finance approves servicing actions, not credit lines.
    assert [i["source"] for i in client.get("/v1/staff/approvals", headers=finance).json()] == ["approval"]
    # A maker's own items are not in their inbox; they find them under mine.
    assert client.get("/v1/staff/approvals", headers=reviewer).json() == []
    assert [i["id"] for i in client.get("/v1/staff/approvals", params={"mine": "true"}, headers=agent).json()] == [
        str(freeze["id"])]
    assert_problem(client.get("/v1/staff/approvals", params={"order": "sideways"}, headers=manager),
                   422, "VALIDATION_FAILED")
    shown = client.get(f"/v1/staff/approvals/{freeze['id']}", headers=finance)
    assert shown.status_code == 200 and shown.json()["maker_reason"] == "suspicious login"
    assert_problem(client.get("/v1/staff/approvals/999999", headers=finance), 404, "APPROVAL_NOT_FOUND")
