"""Repayments through the service: allocation, held overpayments, early payoff, early partial repayment,
reversal, idempotency and the statement. After every posting the book is sound (trial balance zero,
each loan's sub-ledger equal to its installments).

The loan in these tests: 10,000.00 yuan, 12 months equal installments at 15.48 % a year (the demo
borrower's line), ACT/360, service fee 0.1 % a month on the original principal = 10.00 yuan an installment.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, select, update

from miaodai.core.clock import business_date
from miaodai.core.idempotency_models import IdempotencyRecord
from miaodai.loans.models import Loan, LoanInstallment
from tests.cli_support import run_cli
from tests.helpers import assert_problem, login, staff_headers
from tests.loan_support import PHONE, active_loan, assert_book_sound, demo_borrower, repay


@pytest.fixture
def borrower(client, container):
    return demo_borrower(client, container)


@pytest.fixture
def loan(client, clock, borrower):
    return active_loan(client, clock, borrower)


def go_to(clock, day: date) -> None:
    clock.advance(timedelta(days=(day - business_date(clock.now())).days))


def rows(container, loan_id):
    with container.db.transaction() as session:
        return list(session.execute(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id)
                                    .order_by(LoanInstallment.period)).scalars())


def loan_row(container, loan_id) -> Loan:
    with container.db.transaction() as session:
        return session.get(Loan, loan_id)


def available(client, borrower):
    return client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["available_fen"]


def test_paying_the_installment_on_its_due_date_settles_it(client, clock, container, loan):
    first = loan["installments"][0]
    # Interest of period 1: 1,000,000 × 0.1548 / 12 = 12,900 fen; fee 1,000 fen.
    assert (first["interest_fen"], first["fee_fen"]) == (12_900, 1_000)
    go_to(clock, date.fromisoformat(first["due_date"]))
    posted = repay(client, loan["id"], first["total_fen"], "r1")
    assert posted.status_code == 200 and posted.json()["created"], posted.text
    paid = rows(container, loan["id"])[0]
    assert (paid.principal_paid_fen, paid.interest_paid_fen, paid.fee_paid_fen) == (
        first["principal_fen"], 12_900, 1_000)
    assert paid.paid_off_on == date.fromisoformat(first["due_date"])
    assert loan_row(container, loan["id"]).principal_outstanding_fen == 1_000_000 - first["principal_fen"]
    assert_book_sound(container)


def test_the_same_key_posts_once_and_another_amount_under_it_is_refused(client, clock, container, loan):
    first = loan["installments"][0]
    go_to(clock, date.fromisoformat(first["due_date"]))
    posted = repay(client, loan["id"], first["total_fen"], "same")
    assert posted.json()["created"] is True
    again = repay(client, loan["id"], first["total_fen"], "same")
    assert again.content == posted.content and again.headers["Idempotent-Replayed"] == "true"
    assert_problem(repay(client, loan["id"], 100, "same"), 422, "IDEMPOTENCY_KEY_REUSED")
    # The posting itself knows its key too (past the key layer's retention): once, and refused for another amount.
    with container.db.transaction() as session:
        session.execute(delete(IdempotencyRecord))
    assert repay(client, loan["id"], first["total_fen"], "same").json()["created"] is False
    with container.db.transaction() as session:
        session.execute(delete(IdempotencyRecord))
    assert_problem(repay(client, loan["id"], 100, "same"), 422, "LOAN_REPAYMENT_KEY_REUSED")
    assert loan_row(container, loan["id"]).principal_outstanding_fen == 1_000_000 - first["principal_fen"]
    assert_book_sound(container)


def test_racing_requests_post_each_key_once(clock, container, loan):
    """Eight threads at once: four send one key (a client's retries), four send keys of their own. The
    first key posts once and every racer gets that repayment back; the others all post; the book is sound."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from miaodai.ledger.models import JournalEntry
    from miaodai.loans.models import Repayment
    from miaodai.loans.repayment_service import RepaymentRequest, post_repayment

    go_to(clock, date.fromisoformat(loan["installments"][0]["due_date"]))
    keys = ["retried"] * 4 + [f"own-{n}" for n in range(4)]
    start = Barrier(len(keys))

    def send(key: str):
        start.wait()
        return post_repayment(container, RepaymentRequest(loan_id=loan["id"], amount_fen=1_000, idempotency_key=key,
                                                          channel="sandbox", received_at=clock.now()), actor="test")

    with ThreadPoolExecutor(len(keys)) as pool:
        results = list(pool.map(send, keys))
    retried = [r for key, r in zip(keys, results, strict=True) if key == "retried"]
    assert sum(r.created for r in retried) == 1
    assert len({r.repayment_id for r in retried}) == 1
    assert all(r.created for key, r in zip(keys, results, strict=True) if key != "retried")
    with container.db.transaction() as session:
        posted = session.execute(select(Repayment.idempotency_key, Repayment.journal_entry_id)
                                 .where(Repayment.loan_id == loan["id"])).all()
        entries = session.scalars(select(JournalEntry.id).where(JournalEntry.kind == "repayment",
                                                                JournalEntry.loan_id == loan["id"])).all()
    assert sorted(key for key, _ in posted) == sorted(set(keys))
    assert sorted(entry for _, entry in posted) == sorted(entries)  # each names its own entry
    first = rows(container, loan["id"])[0]  # 5 × 10.00 yuan paid: the fee (10.00) first, then interest
    assert (first.fee_paid_fen, first.interest_paid_fen) == (1_000, 4_000)
    assert_book_sound(container)


def test_money_before_anything_is_due_is_held_as_an_overpayment(client, clock, container, loan):
    assert repay(client, loan["id"], 50_000, "early").status_code == 200
    held = loan_row(container, loan["id"])
    assert (held.overpayment_fen, held.principal_outstanding_fen) == (50_000, 1_000_000)
    assert all(r.principal_paid_fen == r.interest_paid_fen == 0 for r in rows(container, loan["id"]))
    assert_book_sound(container)


def test_an_early_payoff_charges_interest_to_the_day_and_no_future_fees(client, clock, container, borrower, loan):
    before = available(client, borrower)
    go_to(clock, date.fromisoformat(loan["start_date"]) + timedelta(days=10))
    borrower = login(client, PHONE)
    quote = client.get(f"/v1/loans/{loan['id']}/payoff-quote", headers=borrower["headers"]).json()
    # 10 days on 1,000,000 fen at 15.48 % ACT/360: 1,000,000 × 0.1548 × 10 / 360 = 4,300 fen; no fee, no penalty.
    assert (quote["remaining_principal_fen"], quote["accrued_interest_fen"], quote["total_fen"]) == (
        1_000_000, 4_300, 1_004_300)
    assert_problem(repay(client, loan["id"], 1_004_299, "short", purpose="payoff"), 422, "LOAN_PAYOFF_AMOUNT_SHORT")
    assert repay(client, loan["id"], 1_004_300, "payoff", purpose="payoff").status_code == 200
    settled = client.get(f"/v1/loans/{loan['id']}", headers=borrower["headers"]).json()
    assert settled["status"] == "paid_off" and settled["principal_outstanding_fen"] == 0
    assert available(client, borrower) == before + 1_000_000
    installments = rows(container, loan["id"])
    assert sum(r.principal_fen for r in installments) == 1_000_000  # the history still sums to the principal
    assert sum(r.interest_fen for r in installments) == 4_300 and sum(r.fee_fen for r in installments) == 0
    assert_book_sound(container)
    lines = client.get(f"/v1/loans/{loan['id']}/statement", headers=borrower["headers"]).json()
    assert [line["kind"] for line in lines] == ["payout_ordered", "payout_paid", "repayment"]
    assert lines[-1]["cash_fen"] == 1_004_300 and lines[-1]["balance"] == {
        "principal_fen": 0, "interest_fen": 0, "fee_fen": 0, "penalty_fen": 0, "overpayment_fen": 0}
    assert_problem(repay(client, loan["id"], 100, "after"), 409, "LOAN_NOT_REPAYABLE")


@pytest.mark.parametrize("mode", ["shorter_term", "smaller_installment"])
def test_an_early_partial_repayment_recomputes_the_plan_shown_first(client, clock, container, borrower, loan, mode):
    go_to(clock, date.fromisoformat(loan["start_date"]) + timedelta(days=10))
    borrower = login(client, PHONE)
    amount = 504_300  # 4,300 fen of interest to today (see the payoff test) + 500,000 fen of principal
    preview = client.post(f"/v1/loans/{loan['id']}/prepayment-quote", json={"amount_fen": amount, "mode": mode},
                          headers=borrower["headers"]).json()
    assert (preview["accrued_interest_fen"], preview["principal_fen"], preview["due_paid_fen"]) == (4_300, 500_000, 0)
    new_plan = preview["installments"]
    assert sum(i["principal_fen"] for i in new_plan) == 500_000
    if mode == "shorter_term":
        assert len(new_plan) < 12
    else:
        assert len(new_plan) == 12 and new_plan[1]["total_fen"] < loan["installments"][1]["total_fen"]
    assert repay(client, loan["id"], amount, "pp", purpose="prepayment", mode=mode).status_code == 200
    after = client.get(f"/v1/loans/{loan['id']}", headers=borrower["headers"]).json()
    assert after["principal_outstanding_fen"] == 500_000
    live = [i for i in after["installments"] if i["total_fen"] > i["paid_fen"]]
    assert [(i["principal_fen"], i["interest_fen"]) for i in live[1:]] == [
        (p["principal_fen"], p["interest_fen"]) for p in new_plan[1:]]
    assert sum(r.principal_fen for r in rows(container, loan["id"])) == 1_000_000
    assert_book_sound(container)
    # A day later 500,000 fen has accrued 500,000 × 0.1548 / 360 = 215 fen: 200 fen leaves nothing for principal.
    clock.advance(timedelta(days=1))
    assert_problem(repay(client, loan["id"], 200, "tiny", purpose="prepayment"), 422, "LOAN_PREPAYMENT_TOO_SMALL")
    assert repay(client, loan["id"], 315, "small", purpose="prepayment").status_code == 200  # 215 + 100 principal
    assert loan_row(container, loan["id"]).principal_outstanding_fen == 499_900
    assert_book_sound(container)


def test_a_reversal_puts_everything_back_and_only_once(client, clock, container, fast_staff_hasher, borrower, loan):
    first = loan["installments"][0]
    go_to(clock, date.fromisoformat(first["due_date"]))
    finance = staff_headers(client, container, clock, "finance", ("finance",))
    borrower = login(client, PHONE)
    line_before = available(client, borrower)
    checker = staff_headers(client, container, clock, "finance-2", ("finance",))
    repayment_id = repay(client, loan["id"], first["total_fen"] + 500, "r1").json()["repayment_id"]
    proposed = client.post(f"/v1/staff/repayments/{repayment_id}/reverse", json={"reason": "bank chargeback"},
                           headers={**finance, "Idempotency-Key": "rev-1"})
    assert proposed.status_code == 202, proposed.text
    again = client.post(f"/v1/staff/repayments/{repayment_id}/reverse", json={"reason": "bank chargeback"},
                        headers={**finance, "Idempotency-Key": "rev-1"})
    assert again.json()["id"] == proposed.json()["id"]
    assert_problem(client.post(f"/v1/staff/repayments/{repayment_id}/reverse", json={"reason": "twice"},
                               headers={**finance, "Idempotency-Key": "rev-2"}), 409, "APPROVAL_ALREADY_PENDING")
    reverse = client.post(f"/v1/staff/approvals/{proposed.json()['id']}/approve", json={}, headers=checker)
    assert reverse.status_code == 200 and reverse.json()["state"] == "approved", reverse.text
    assert_problem(client.post(f"/v1/staff/repayments/{repayment_id}/reverse", json={"reason": "twice"},
                               headers={**finance, "Idempotency-Key": "rev-3"}), 409, "LOAN_REPAYMENT_NOT_REVERSIBLE")
    restored = loan_row(container, loan["id"])
    assert (restored.principal_outstanding_fen, restored.overpayment_fen) == (1_000_000, 0)
    assert all(r.principal_paid_fen == r.interest_paid_fen == r.fee_paid_fen == 0 and r.paid_off_on is None
               for r in rows(container, loan["id"]))
    assert available(client, borrower) == line_before
    assert_book_sound(container)


def test_only_the_latest_repayment_can_be_reversed(client, clock, container, fast_staff_hasher, loan):
    go_to(clock, date.fromisoformat(loan["installments"][0]["due_date"]))
    finance = staff_headers(client, container, clock, "finance", ("finance",))
    first = repay(client, loan["id"], 10_000, "a").json()["repayment_id"]
    repay(client, loan["id"], 10_000, "b")
    refused = client.post(f"/v1/staff/repayments/{first}/reverse", json={"reason": "mistake"},
                          headers={**finance, "Idempotency-Key": "rev-a"})
    assert_problem(refused, 409, "LOAN_REPAYMENT_NOT_REVERSIBLE")
    assert_book_sound(container)


def test_the_cli_statement_and_the_loan_check_of_the_whole_book(client, clock, container, settings, loan):
    go_to(clock, date.fromisoformat(loan["installments"][0]["due_date"]))
    repay(client, loan["id"], loan["installments"][0]["total_fen"], "r1")
    shown = run_cli(settings, "loan", "statement", str(loan["id"]), "--json")
    assert shown.exit_code == 0, shown.output
    lines = json.loads(shown.output)
    assert [line["cash_fen"] for line in lines] == [0, -1_000_000, loan["installments"][0]["total_fen"]]
    assert run_cli(settings, "loan", "statement", str(loan["id"])).exit_code == 0
    assert run_cli(settings, "ledger", "check").exit_code == 0
    # An installment edited behind the ledger's back: its loan no longer matches the book.
    with container.db.transaction() as session:
        session.execute(update(LoanInstallment).where(LoanInstallment.loan_id == loan["id"],
                                                      LoanInstallment.period == 2).values(principal_paid_fen=1))
    checked = run_cli(settings, "ledger", "check")
    assert checked.exit_code == 1 and "LOAN_SUBLEDGER_MISMATCH" in checked.output and "principal_fen" in checked.output


def test_a_loan_that_is_not_seriously_overdue_cannot_be_written_off(client, clock, container, fast_staff_hasher, loan):
    manager = staff_headers(client, container, clock, "manager", ("risk_manager",))
    refused = client.post(f"/v1/staff/loans/{loan['id']}/write-off", json={"reason": "gone"}, headers=manager)
    assert_problem(refused, 409, "LOAN_ILLEGAL_TRANSITION")  # active, not overdue
    agent = staff_headers(client, container, clock, "agent", ("customer_service",))
    assert_problem(client.post(f"/v1/staff/loans/{loan['id']}/write-off", json={"reason": "gone"}, headers=agent),
                   403, "STAFF_PERMISSION_DENIED")
    assert_book_sound(container)
