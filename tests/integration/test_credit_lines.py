"""Credit lines granted by staff with maker-checker, and what the borrower sees."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from miaodai.core.audit import AuditEntry
from miaodai.demo import DEMO_BORROWERS, PRODUCT_CODE, seed_demo
from miaodai.identity.models import Borrower
from miaodai.loans import line_service
from miaodai.loans.models import CreditLine
from tests.helpers import assert_problem, login, staff_headers

# The third demo borrower is verified and has no line.
NO_LINE_PHONE = DEMO_BORROWERS[2].phone


@pytest.fixture
def demo(container):
    seed_demo(container)


@pytest.fixture
def maker(client, container, clock, fast_staff_hasher, demo):
    return staff_headers(client, container, clock, "maker", ("risk_reviewer",))


@pytest.fixture
def checker(client, container, clock, fast_staff_hasher, demo):
    return staff_headers(client, container, clock, "checker", ("risk_manager",))


def borrower_id(container, phone):
    with container.db.transaction() as session:
        ids = [b.id for b in session.execute(select(Borrower).order_by(Borrower.id)).scalars()]
    return ids[[d.phone for d in DEMO_BORROWERS].index(phone)]


def proposal(container, **change):
    return {"borrower_id": borrower_id(container, NO_LINE_PHONE), "product_code": PRODUCT_CODE,
            "limit_fen": 1_000_000, "annual_rate": "0.12", "risk_grade": "B", "expires_on": "2027-11-22",
            "reason": "salary income verified, no bureau overdue", **change}


def test_one_proposes_another_approves_and_the_borrower_sees_the_line(client, container, maker, checker):
    proposed = client.post("/v1/staff/credit-line-proposals", json=proposal(container), headers=maker)
    assert proposed.status_code == 201, proposed.text
    pid = proposed.json()["id"]
    assert [p["id"] for p in client.get("/v1/staff/credit-line-proposals", headers=checker).json()] == [pid]
    # The maker cannot approve (no permission) — and even a manager cannot approve their own proposal.
    assert_problem(client.post(f"/v1/staff/credit-line-proposals/{pid}/approve", json={}, headers=maker),
                   403, "STAFF_PERMISSION_DENIED")
    approved = client.post(f"/v1/staff/credit-line-proposals/{pid}/approve", json={"note": "ok"}, headers=checker)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["credit_line_id"]
    assert_problem(client.post(f"/v1/staff/credit-line-proposals/{pid}/reject", json={}, headers=checker),
                   409, "LOAN_PROPOSAL_DECIDED")
    me = login(client, NO_LINE_PHONE)
    lines = client.get("/v1/credit-lines", headers=me["headers"]).json()
    assert [(x["limit_fen"], x["available_fen"], x["annual_rate"], x["status"]) for x in lines] == [
        (1_000_000, 1_000_000, "0.12", "active")]
    with container.db.transaction() as session:
        actions = [e.action for e in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]
    assert actions[-2:] == ["credit_line.propose", "credit_line.approved"] or "credit_line.approved" in actions


def test_a_manager_cannot_approve_their_own_proposal(client, container, checker):
    pid = client.post("/v1/staff/credit-line-proposals", json=proposal(container), headers=checker).json()["id"]
    assert_problem(client.post(f"/v1/staff/credit-line-proposals/{pid}/approve", json={}, headers=checker),
                   403, "LOAN_FOUR_EYES")


def test_a_rejected_proposal_creates_no_line(client, container, maker, checker):
    pid = client.post("/v1/staff/credit-line-proposals", json=proposal(container), headers=maker).json()["id"]
    rejected = client.post(f"/v1/staff/credit-line-proposals/{pid}/reject", json={"note": "thin file"},
                           headers=checker)
    assert rejected.json()["status"] == "rejected" and rejected.json()["credit_line_id"] is None
    with container.db.transaction() as session:
        owner = borrower_id(container, NO_LINE_PHONE)
        assert session.execute(select(CreditLine).where(CreditLine.borrower_id == owner)).first() is None


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"annual_rate": "0.30"}, 422, "LOAN_RATE_OUT_OF_RANGE"),
        ({"annual_rate": "1.30"}, 422, "VALIDATION_FAILED"),
        ({"annual_rate": "0.05"}, 422, "LOAN_RATE_OUT_OF_RANGE"),
        ({"limit_fen": 100}, 422, "LOAN_LINE_LIMIT_INVALID"),
        ({"expires_on": "2026-11-01"}, 422, "LOAN_LINE_LIMIT_INVALID"),
        ({"product_code": "NOPE"}, 404, "LOAN_PRODUCT_NOT_FOUND"),
        ({"borrower_id": 999999}, 404, "LOAN_BORROWER_NOT_FOUND"),
        ({"risk_grade": "Z"}, 422, "VALIDATION_FAILED"),
    ],
)
def test_bad_proposals_are_refused(client, container, maker, change, status, code):
    assert_problem(client.post("/v1/staff/credit-line-proposals", json=proposal(container, **change), headers=maker),
                   status, code)


def test_a_borrower_with_a_line_cannot_get_a_second_one_for_the_same_product(client, container, maker):
    first = borrower_id(container, DEMO_BORROWERS[0].phone)  # the seed gave them a line
    assert_problem(client.post("/v1/staff/credit-line-proposals", json=proposal(container, borrower_id=first),
                               headers=maker), 409, "LOAN_LINE_EXISTS")


def test_an_unverified_borrower_gets_no_line(client, container, maker):
    newcomer = login(client, "+8613700000009")
    assert_problem(client.post("/v1/staff/credit-line-proposals",
                               json=proposal(container, borrower_id=newcomer["borrower_id"]), headers=maker),
                   409, "LOAN_BORROWER_NOT_VERIFIED")


def test_concurrent_reservations_never_overdraw_a_line(container, demo, backend):
    owner = borrower_id(container, DEMO_BORROWERS[0].phone)
    with container.db.transaction() as session:
        line = session.execute(select(CreditLine).where(CreditLine.borrower_id == owner)).scalar_one()
    # 20,000 yuan line; 30 reservations of 1,000 yuan race: exactly 20 may succeed.
    now = container.clock.now()

    def take(_: int) -> bool:
        with container.db.transaction() as session:
            return line_service.reserve(session, line.id, 100_000, now=now)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(take, range(30)))
    assert results.count(True) == 20
    with container.db.transaction() as session:
        after = session.get(CreditLine, line.id)
        assert after.available_fen == 0 and after.version == line.version + 20
