"""Whole loan lives, drawdown to end, through the public API and the end-of-day batch, on both databases.

Each scenario draws a loan on the demo borrower's line (10,000.00 yuan at 15.48 %, equal installments,
ACT/360, fee 0.1 % a month = 10.00 yuan an installment; penalty 23.22 %, late fee 20.00 yuan after 3 grace
days, cost cap 24 %), pays it out through the sandbox channel, then closes every business date in order
with the clock following (``close_through``) while the borrower pays through the sandbox repayment
channel and staff act through their endpoints. After every step the book is sound: the trial balance is
zero, every entry is well-formed, and every loan's sub-ledger equals what its installments say.

* on time: every installment paid on its due date → paid off, the line restored, the quote's total paid;
* early full: a payoff mid-period, interest to the day by the documented formula;
* early partial: both modes, then the new plan paid on time to the end;
* late: an installment skipped past grace, the penalty and late fee checked against the rules day by day
  and within the cost cap, then caught up and paid off;
* M3+: nothing paid, the delinquency bucket moving current → M1 → M2 → M3 → M3+, written off only at M3+;
* reversal: a repayment reversed by finance staff (idempotent), the installment unpaid and overdue again.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from sqlalchemy import select

from miaodai.core.clock import business_date
from miaodai.ledger.accounts import Account
from miaodai.ledger.book import account_balances, loan_balances, loan_subledger
from miaodai.ledger.models import JournalEntry
from miaodai.loans.eod import BUCKETS, bucket_of
from miaodai.loans.loan_service import loan_terms
from miaodai.loans.models import Loan, LoanInstallment
from miaodai.loans.repayment_math import (
    InstallmentState,
    overdue_charge_parts,
    payoff_amount,
    reschedule_after_prepayment,
)
from miaodai.loans.schedule import DayCount
from tests.helpers import assert_problem, login, staff_headers
from tests.loan_support import PHONE, active_loan, assert_book_sound, close_through, demo_borrower, repay

PRINCIPAL = 1_000_000
RATE = Decimal("0.1548")
ZERO = {"principal_fen": 0, "interest_fen": 0, "fee_fen": 0, "penalty_fen": 0, "overpayment_fen": 0}


def hand_interest(balance_fen: int, annual_rate: Decimal, days: int) -> int:
    """balance × rate × days / 360, half-up to the fen: the documented formula, worked out here by hand."""
    return int((Decimal(balance_fen) * annual_rate * days / 360).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class App:
    """The borrower's app: calls the API with the borrower's session, logging in again when it has lapsed
    (months pass in these tests)."""

    def __init__(self, client: Any, clock: Any, container: Any, borrower: dict[str, Any]) -> None:
        self.client, self.clock, self.container, self.borrower = client, clock, container, borrower

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self.borrower["headers"], **kwargs)
        if response.status_code == 401:
            self.clock.advance(timedelta(seconds=61))  # past the code's resend cooldown
            self.borrower = login(self.client, PHONE)
            response = self.client.request(method, path, headers=self.borrower["headers"], **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def loan(self, loan_id: int) -> dict[str, Any]:
        return self.call("GET", f"/v1/loans/{loan_id}")

    def line(self) -> dict[str, Any]:
        [line] = self.call("GET", "/v1/credit-lines")
        return line

    def statement(self, loan_id: int) -> list[dict[str, Any]]:
        return self.call("GET", f"/v1/loans/{loan_id}/statement")

    def payoff_quote(self, loan_id: int) -> dict[str, Any]:
        return self.call("GET", f"/v1/loans/{loan_id}/payoff-quote")


@pytest.fixture
def app(client, clock, container) -> App:
    return App(client, clock, container, demo_borrower(client, container))


def draw(app: App, key: str, **term: int) -> dict[str, Any]:
    loan = active_loan(app.client, app.clock, app.borrower, key=key, principal_fen=PRINCIPAL, **term)
    assert loan["status"] == "active"
    assert_book_sound(app.container)
    return loan


def rows(container, loan_id: int) -> list[LoanInstallment]:
    with container.db.transaction() as session:
        return list(session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id)
                                    .order_by(LoanInstallment.period)))


def loan_row(container, loan_id: int) -> Loan:
    with container.db.transaction() as session:
        return session.get(Loan, loan_id)


def today(clock) -> date:
    return business_date(clock.now())


def due_date(app: App, loan_id: int, period: int) -> date:
    return date.fromisoformat(app.loan(loan_id)["installments"][period - 1]["due_date"])


def pay_on_due_date(app: App, container, loan_id: int, period: int, key: str) -> int:
    """Close every date up to the eve of the installment's due date, then pay what it owes on the day."""
    due = due_date(app, loan_id, period)
    close_through(container, app.clock, due - timedelta(days=1))
    assert today(app.clock) == due
    line = app.loan(loan_id)["installments"][period - 1]
    assert line["status"] == "due", line
    owed = line["total_fen"] - line["paid_fen"]
    posted = repay(app.client, loan_id, owed, key)
    assert posted.status_code == 200 and posted.json()["created"], posted.text
    assert_book_sound(container)
    assert app.loan(loan_id)["installments"][period - 1]["status"] == "paid"
    return owed


def assert_settled(app: App, container, loan_id: int, *, available_fen: int) -> dict[str, Any]:
    """Paid off: nothing outstanding anywhere, the line's credit back, the statement closing at zero."""
    view = app.loan(loan_id)
    assert view["status"] == "paid_off" and view["principal_outstanding_fen"] == 0
    assert all(line["status"] == "paid" for line in view["installments"])
    loan = loan_row(container, loan_id)
    assert (loan.overpayment_fen, loan.days_past_due) == (0, 0) and loan.closed_at is not None
    installments = rows(container, loan_id)
    assert sum(r.principal_fen for r in installments) == sum(r.principal_paid_fen for r in installments) == PRINCIPAL
    assert app.line()["available_fen"] == available_fen
    lines = app.statement(loan_id)
    assert lines[-1]["balance"] == ZERO
    with container.db.transaction() as session:
        assert loan_subledger(session, loan_id).principal_fen == 0
    return view


def repaid_total(lines: list[dict[str, Any]]) -> int:
    """Money received from the borrower on the statement (payouts are negative cash, left out)."""
    return sum(line["cash_fen"] for line in lines if line["kind"] != "payout_paid")


def stays_closed(app: App, container, loan_id: int, days: int, status: str) -> None:
    """A few more nights of the batch change nothing for a loan off the book; no more money is taken."""
    before = len(app.statement(loan_id))
    close_through(container, app.clock, today(app.clock) + timedelta(days=days - 1))
    assert app.loan(loan_id)["status"] == status and len(app.statement(loan_id)) == before
    assert_problem(repay(app.client, loan_id, 100, f"after-{loan_id}"), 409, "LOAN_NOT_REPAYABLE")
    assert_book_sound(container)


# -- on time ------------------------------------------------------------------------------------------


def test_on_time_every_installment_paid_on_its_due_date_ends_paid_off(app, container):
    limit = app.line()["available_fen"]
    loan = draw(app, "on-time", term_months=3)
    assert app.line()["available_fen"] == limit - PRINCIPAL
    # The loan's frozen quote is the public calculator's for the same terms and payout date.
    quote = app.client.post("/v1/quotes", json={
        "principal_fen": PRINCIPAL, "term_months": 3, "method": "equal_installment", "annual_rate": str(RATE),
        "monthly_fee_rate": "0.001", "day_count": "ACT/360", "start_date": loan["start_date"]}).json()
    assert [(q["due_date"], q["principal_fen"], q["interest_fen"], q["fee_fen"]) for q in quote["installments"]] == [
        (i["due_date"], i["principal_fen"], i["interest_fen"], i["fee_fen"]) for i in loan["installments"]]
    assert (quote["total_interest_fen"], quote["total_fee_fen"]) == (loan["total_interest_fen"], loan["total_fee_fen"])
    quoted_total = PRINCIPAL + quote["total_cost_fen"]
    # Period 1: 1,000,000 × 15.48 % / 12 = 12,900 fen of interest; 1,000 fen of fee each period.
    assert (loan["installments"][0]["interest_fen"], loan["installments"][0]["fee_fen"]) == (12_900, 1_000)

    paid = []
    for period in (1, 2, 3):
        paid.append(pay_on_due_date(app, container, loan["id"], period, f"on-time-{period}"))
        if period < 3:
            assert app.loan(loan["id"])["status"] == "active"
            assert loan_row(container, loan["id"]).days_past_due == 0
    assert paid == [i["total_fen"] for i in loan["installments"]]  # exactly the schedule, nothing more
    assert sum(paid) == quoted_total

    assert_settled(app, container, loan["id"], available_fen=limit)
    installments = rows(container, loan["id"])
    assert sum(r.interest_paid_fen for r in installments) == quote["total_interest_fen"]
    assert sum(r.fee_paid_fen for r in installments) == quote["total_fee_fen"]
    assert sum(r.penalty_fen for r in installments) == 0
    lines = app.statement(loan["id"])
    assert [line["kind"] for line in lines] == ["payout_ordered", "payout_paid"] + ["installment_due", "repayment"] * 3
    assert repaid_total(lines) == quoted_total
    assert sum(line["cash_fen"] for line in lines) == quote["total_cost_fen"]  # what the loan cost the borrower
    stays_closed(app, container, loan["id"], 3, "paid_off")


# -- early full repayment -----------------------------------------------------------------------------


def test_early_full_repayment_mid_period_charges_interest_to_the_day(app, container):
    limit = app.line()["available_fen"]
    loan = draw(app, "payoff", term_months=3)
    first = loan["installments"][0]
    paid_first = pay_on_due_date(app, container, loan["id"], 1, "payoff-1")
    due1 = date.fromisoformat(first["due_date"])
    close_through(container, app.clock, due1 + timedelta(days=12))  # the morning 13 days into period 2
    as_of = today(app.clock)
    days = (as_of - due1).days
    assert days == 13

    quote = app.payoff_quote(loan["id"])
    remaining = PRINCIPAL - first["principal_fen"]
    accrued = hand_interest(remaining, RATE, days)  # P × 15.48 % × 13 / 360
    assert quote == {
        "as_of": as_of.isoformat(), "due_penalty_fen": 0, "due_fee_fen": 0, "due_interest_fen": 0,
        "due_principal_fen": 0, "remaining_principal_fen": remaining, "accrued_interest_fen": accrued,
        "early_repayment_fee_fen": 0, "total_fen": remaining + accrued}
    rules = payoff_amount([InstallmentState.of(r) for r in rows(container, loan["id"])], as_of=as_of,
                          annual_rate=RATE, day_count=DayCount.ACT_360, last_due_or_start=due1,
                          outstanding_principal_fen=remaining)
    assert (rules.accrued_interest_fen, rules.total_fen) == (accrued, quote["total_fen"])
    assert accrued < loan["installments"][1]["interest_fen"]  # less than the period's scheduled interest

    assert_problem(repay(app.client, loan["id"], quote["total_fen"] - 1, "payoff-short", purpose="payoff"),
                   422, "LOAN_PAYOFF_AMOUNT_SHORT")
    assert_book_sound(container)
    posted = repay(app.client, loan["id"], quote["total_fen"], "payoff-all", purpose="payoff")
    assert posted.status_code == 200 and posted.json()["created"], posted.text
    assert_book_sound(container)

    assert_settled(app, container, loan["id"], available_fen=limit)
    installments = rows(container, loan["id"])
    # Interest: period 1 as scheduled, then exactly the 13 days; fees: period 1 only (none in the future).
    assert sum(r.interest_fen for r in installments) == first["interest_fen"] + accrued
    assert sum(r.fee_fen for r in installments) == first["fee_fen"]
    assert (installments[2].principal_fen, installments[2].interest_fen, installments[2].fee_fen) == (0, 0, 0)
    lines = app.statement(loan["id"])
    assert [line["kind"] for line in lines] == ["payout_ordered", "payout_paid", "installment_due", "repayment",
                                                "repayment"]
    assert lines[-1]["cash_fen"] == remaining + accrued
    assert repaid_total(lines) == paid_first + remaining + accrued < PRINCIPAL + loan["total_cost_fen"]
    stays_closed(app, container, loan["id"], 3, "paid_off")


# -- early partial repayment --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["shorter_term", "smaller_installment"])
def test_early_partial_repayment_then_the_new_plan_paid_on_time_to_the_end(app, container, mode):
    limit = app.line()["available_fen"]
    loan = draw(app, f"partial-{mode}", term_months=3)
    start = date.fromisoformat(loan["start_date"])
    close_through(container, app.clock, start + timedelta(days=9))  # the morning 10 days in
    as_of = today(app.clock)
    accrued = hand_interest(PRINCIPAL, RATE, 10)
    assert accrued == 4_300
    amount = accrued + 500_000
    preview = app.call("POST", f"/v1/loans/{loan['id']}/prepayment-quote", json={"amount_fen": amount, "mode": mode})
    assert (preview["due_paid_fen"], preview["accrued_interest_fen"], preview["principal_fen"]) == (0, accrued, 500_000)
    plan = preview["installments"]
    with container.db.transaction() as session:
        terms = loan_terms(session.get(Loan, loan["id"]))
    rules = reschedule_after_prepayment(terms, [InstallmentState.of(r) for r in rows(container, loan["id"])],
                                        prepaid_principal_fen=500_000, as_of=as_of, mode=mode)
    assert [(p["period"], p["due_date"], p["principal_fen"], p["interest_fen"], p["fee_fen"]) for p in plan] == [
        (r.period, r.due_date.isoformat(), r.principal_fen, r.interest_fen, r.fee_fen) for r in rules]
    assert sum(p["principal_fen"] for p in plan) == 500_000
    # The first new installment's interest accrues daily on the new balance from today to its due date.
    due1 = date.fromisoformat(plan[0]["due_date"])
    assert plan[0]["interest_fen"] == hand_interest(500_000, RATE, (due1 - as_of).days)
    old = loan["installments"]
    if mode == "shorter_term":
        assert len(plan) < 3 and all(p["total_fen"] <= old[0]["total_fen"] for p in plan)
    else:
        assert len(plan) == 3 and all(p["total_fen"] < o["total_fen"] for p, o in zip(plan, old, strict=True))

    posted = repay(app.client, loan["id"], amount, f"partial-{mode}", purpose="prepayment", mode=mode)
    assert posted.status_code == 200 and posted.json()["created"], posted.text
    assert_book_sound(container)
    after = app.loan(loan["id"])
    assert (after["status"], after["principal_outstanding_fen"]) == ("active", 500_000)
    assert app.line()["available_fen"] == limit - 500_000

    paid = []
    for line in plan:
        paid.append(pay_on_due_date(app, container, loan["id"], line["period"], f"partial-{mode}-{line['period']}"))
    assert paid == [p["total_fen"] for p in plan]  # the new plan, to the fen

    assert_settled(app, container, loan["id"], available_fen=limit)
    installments = rows(container, loan["id"])
    assert sum(r.interest_fen for r in installments) == accrued + sum(p["interest_fen"] for p in plan)
    assert sum(r.fee_fen for r in installments) == sum(p["fee_fen"] for p in plan)
    lines = app.statement(loan["id"])
    assert repaid_total(lines) == amount + sum(paid)
    assert [line["kind"] for line in lines] == ["payout_ordered", "payout_paid", "repayment"] + [
        "installment_due", "repayment"] * len(plan)
    stays_closed(app, container, loan["id"], 2, "paid_off")


# -- late, with penalty ------------------------------------------------------------------------------


def test_a_skipped_installment_is_charged_after_grace_within_the_cap_then_caught_up(app, container):
    limit = app.line()["available_fen"]
    loan = draw(app, "late", term_months=3)
    first = loan["installments"][0]
    due1 = date.fromisoformat(first["due_date"])
    row = loan_row(container, loan["id"])
    terms = {"penalty_annual_rate": row.penalty_annual_rate, "late_fee_fen": row.late_fee_fen,
             "grace_days": row.grace_days, "cost_cap": row.cost_cap, "day_count": DayCount(row.day_count)}
    assert terms == {"penalty_annual_rate": Decimal("0.2322"), "late_fee_fen": 2_000, "grace_days": 3,
                     "cost_cap": Decimal("0.24"), "day_count": DayCount.ACT_360}
    close_through(container, app.clock, due1 - timedelta(days=1))

    principal = first["principal_fen"]
    charged = fees = 0
    for n in range(12):  # the close of the due date and the 11 dates after it, the installment unpaid
        before = InstallmentState.of(rows(container, loan["id"])[0])
        [report] = close_through(container, app.clock, due1 + timedelta(days=n))
        expected = overdue_charge_parts(before, as_of=due1 + timedelta(days=n), already_charged_fen=charged, **terms)
        step = report.steps["penalty"]
        assert (step["penalty_fen"], step["late_fee_fen"], step["waived_fen"]) == (
            expected.penalty_interest_fen, expected.late_fee_fen, expected.waived_fen), n
        charged += expected.total_fen
        fees += expected.late_fee_fen
        after = rows(container, loan["id"])[0]
        assert after.penalty_fen == charged and after.penalty_paid_fen == 0
        assert after.late_fee_charged is (n >= 4)  # the first date past grace charges the fee (what the cap leaves)
        if n <= terms["grace_days"]:
            assert charged == 0  # nothing at all within grace
        # Never above the cap: principal × 24 % × days overdue / 360 (penalty interest and fees together).
        assert charged <= hand_interest(principal, terms["cost_cap"], n)
        state = loan_row(container, loan["id"])
        assert (state.status.value, state.days_past_due, bucket_of(state.days_past_due)) == ("overdue", n + 1, "M1")
    # The first date past grace charges four days of penalty at once, the late fee cut to what the cap leaves.
    catch_up = hand_interest(principal, terms["penalty_annual_rate"], 4)
    assert 0 < fees == hand_interest(principal, terms["cost_cap"], 4) - catch_up < terms["late_fee_fen"]
    assert charged > catch_up + fees  # and one day more each date since
    with container.db.transaction() as session:
        assert -loan_balances(session, loan["id"])[Account.PENALTY_INCOME] == charged
        assert loan_subledger(session, loan["id"]).penalty_fen == charged
    view = app.loan(loan["id"])
    assert (view["status"], view["installments"][0]["status"], view["installments"][0]["penalty_fen"]) == (
        "overdue", "overdue", charged)

    # Paying everything owed today brings the loan back to active at once.
    quote = app.payoff_quote(loan["id"])
    owed = view["installments"][0]["total_fen"] - view["installments"][0]["paid_fen"]
    assert owed == first["total_fen"] + charged == sum(quote[f"due_{part}_fen"]
                                                       for part in ("penalty", "fee", "interest", "principal"))
    posted = repay(app.client, loan["id"], owed, "late-catch-up")
    assert posted.status_code == 200, posted.text
    assert_book_sound(container)
    assert app.loan(loan["id"])["status"] == "active" and loan_row(container, loan["id"]).days_past_due == 0
    assert rows(container, loan["id"])[0].penalty_paid_fen == charged
    close_through(container, app.clock, today(app.clock))
    assert app.loan(loan["id"])["status"] == "active"

    paid = [pay_on_due_date(app, container, loan["id"], period, f"late-{period}") for period in (2, 3)]
    assert paid == [i["total_fen"] for i in loan["installments"][1:]]
    assert_settled(app, container, loan["id"], available_fen=limit)
    lines = app.statement(loan["id"])
    assert repaid_total(lines) == PRINCIPAL + loan["total_cost_fen"] + charged
    assert [line["kind"] for line in lines].count("penalty") == 12 - 4  # one entry a date past grace
    stays_closed(app, container, loan["id"], 2, "paid_off")


# -- M3+, written off ---------------------------------------------------------------------------------


def test_an_unpaid_loan_moves_through_the_buckets_and_is_written_off_only_at_m3_plus(
        app, container, fast_staff_hasher):
    loan = draw(app, "m3", term_months=6)
    due1 = date.fromisoformat(loan["installments"][0]["due_date"])
    start = date.fromisoformat(loan["start_date"])

    first_seen: dict[str, int] = {}
    day = start
    while day < due1 + timedelta(days=90):  # through the morning 90 days past the first due date
        [report] = close_through(container, app.clock, day)
        dpd = max(0, (day + timedelta(days=1) - due1).days)
        state = loan_row(container, loan["id"])
        assert state.days_past_due == dpd and state.status.value == ("overdue" if dpd else "active"), day
        bucket = bucket_of(dpd)
        assert {b: report.steps["status"][b] for b in BUCKETS} == {b: int(b == bucket) for b in BUCKETS}
        first_seen.setdefault(bucket, dpd)
        day += timedelta(days=1)
    assert first_seen == {"current": 0, "M1": 1, "M2": 31, "M3": 61}

    # M3 (90 days): too early.
    assert loan_row(container, loan["id"]).days_past_due == 90
    manager = staff_headers(app.client, container, app.clock, "manager-m3", ("risk_manager",))
    too_early = app.client.post(f"/v1/staff/loans/{loan['id']}/write-off", json={"reason": "uncollectable"},
                                headers=manager)
    assert_problem(too_early, 409, "LOAN_WRITE_OFF_TOO_EARLY")
    assert app.loan(loan["id"])["status"] == "overdue"
    assert_book_sound(container)

    # One more night: 91 days, M3+.
    [report] = close_through(container, app.clock, day)
    state = loan_row(container, loan["id"])
    assert (state.days_past_due, bucket_of(state.days_past_due), report.steps["status"]["M3+"]) == (91, "M3+", 1)
    view = app.loan(loan["id"])
    overdue = [line for line in view["installments"] if line["status"] == "overdue"]
    assert len(overdue) == 4 and all(line["paid_fen"] == 0 for line in view["installments"])
    on_day = today(app.clock)
    for r in rows(container, loan["id"]):
        if r.due_date < on_day:  # each installment's charges within its own cap
            assert r.penalty_fen <= hand_interest(r.principal_fen, state.cost_cap, (on_day - r.due_date).days - 1)
    with container.db.transaction() as session:
        owed = loan_subledger(session, loan["id"])
    assert owed.principal_fen == PRINCIPAL and owed.overpayment_fen == 0
    # Receivable: all principal, and the interest and fees of the four installments fallen due (not the fifth's).
    assert (owed.interest_fen, owed.fee_fen) == (sum(line["interest_fen"] for line in overdue), 4 * 1_000)
    assert owed.penalty_fen == sum(line["penalty_fen"] for line in overdue) > 0
    lost = owed.principal_fen + owed.interest_fen + owed.fee_fen + owed.penalty_fen

    manager = staff_headers(app.client, container, app.clock, "manager-m3plus", ("risk_manager",))
    proposed = app.client.post(f"/v1/staff/loans/{loan['id']}/write-off", json={"reason": "uncollectable"},
                               headers=manager)
    assert proposed.status_code == 202, proposed.text
    assert proposed.json()["figures"]["after"]["written_off_fen"] == lost
    checker = staff_headers(app.client, container, app.clock, "manager-2", ("risk_manager",))  # maker-checker
    written = app.client.post(f"/v1/staff/approvals/{proposed.json()['id']}/approve", json={}, headers=checker)
    assert written.status_code == 200, written.text
    assert written.json()["result"] == {"loan_id": loan["id"], "status": "written_off", "days_past_due": 91}
    assert_book_sound(container)
    with container.db.transaction() as session:
        after = loan_subledger(session, loan["id"])
        assert (after.principal_fen, after.interest_fen, after.fee_fen, after.penalty_fen, after.overpayment_fen) == (
            0, 0, 0, 0, 0)
        assert loan_balances(session, loan["id"])[Account.WRITE_OFF_EXPENSE] == lost
        assert account_balances(session)[(Account.WRITE_OFF_EXPENSE, None)] == lost
    assert app.line()["status"] == "frozen"
    assert app.loan(loan["id"])["status"] == "written_off"
    lines = app.statement(loan["id"])
    assert lines[-1]["kind"] == "write_off" and lines[-1]["balance"] == ZERO

    again = app.client.post(f"/v1/staff/loans/{loan['id']}/write-off", json={"reason": "uncollectable"},
                            headers=manager)
    assert_problem(again, 409, "LOAN_ILLEGAL_TRANSITION")  # written off already
    with container.db.transaction() as session:
        assert len(session.scalars(select(JournalEntry).where(JournalEntry.kind == "write_off")).all()) == 1
    stays_closed(app, container, loan["id"], 3, "written_off")


# -- reversal -----------------------------------------------------------------------------------------


def test_a_reversed_repayment_leaves_the_installment_unpaid_and_the_loan_overdue(app, container, fast_staff_hasher):
    limit = app.line()["available_fen"]
    loan = draw(app, "reversal", term_months=3)
    first = loan["installments"][0]
    due1 = date.fromisoformat(first["due_date"])
    close_through(container, app.clock, due1 - timedelta(days=1))
    before_payment = app.statement(loan["id"])[-1]["balance"]

    posted = repay(app.client, loan["id"], first["total_fen"], "reversal-1")
    assert posted.status_code == 200, posted.text
    repayment_id = posted.json()["repayment_id"]
    assert_book_sound(container)
    assert app.line()["available_fen"] == limit - PRINCIPAL + first["principal_fen"]

    finance = staff_headers(app.client, container, app.clock, "finance", ("finance",))
    checker = staff_headers(app.client, container, app.clock, "finance-2", ("finance",))
    path = f"/v1/staff/repayments/{repayment_id}/reverse"
    proposed = app.client.post(path, json={"reason": "bank chargeback"}, headers={**finance, "Idempotency-Key": "rv1"})
    assert proposed.status_code == 202, proposed.text
    replay = app.client.post(path, json={"reason": "bank chargeback"}, headers={**finance, "Idempotency-Key": "rv1"})
    assert replay.status_code == 202 and replay.json() == proposed.json()
    reversed_ = app.client.post(f"/v1/staff/approvals/{proposed.json()['id']}/approve", json={}, headers=checker)
    assert reversed_.status_code == 200, reversed_.text
    assert_book_sound(container)
    body = reversed_.json()["result"]
    assert (body["loan_id"], body["amount_fen"]) == (loan["id"], -first["total_fen"])
    assert_problem(app.client.post(path, json={"reason": "again"}, headers={**finance, "Idempotency-Key": "rv2"}),
                   409, "LOAN_REPAYMENT_NOT_REVERSIBLE")
    assert_book_sound(container)

    # Unpaid again, still due today: the loan is active until the day closes.
    view = app.loan(loan["id"])
    assert view["status"] == "active" and view["principal_outstanding_fen"] == PRINCIPAL
    assert (view["installments"][0]["status"], view["installments"][0]["paid_fen"]) == ("due", 0)
    row = rows(container, loan["id"])[0]
    assert (row.principal_paid_fen, row.interest_paid_fen, row.fee_paid_fen, row.paid_off_on) == (0, 0, 0, None)
    assert app.line()["available_fen"] == limit - PRINCIPAL
    lines = app.statement(loan["id"])
    assert [(line["kind"], line["cash_fen"]) for line in lines[-2:]] == [
        ("repayment", first["total_fen"]), ("reversal", -first["total_fen"])]
    assert lines[-1]["balance"] == before_payment

    close_through(container, app.clock, due1)
    view = app.loan(loan["id"])
    assert (view["status"], view["installments"][0]["status"]) == ("overdue", "overdue")
    assert loan_row(container, loan["id"]).days_past_due == 1

    # Paid again within grace: no penalty, back to active, and the rest on time.
    close_through(container, app.clock, due1 + timedelta(days=1))
    assert repay(app.client, loan["id"], first["total_fen"], "reversal-1-again").status_code == 200
    assert_book_sound(container)
    assert app.loan(loan["id"])["status"] == "active"
    paid = [pay_on_due_date(app, container, loan["id"], period, f"reversal-{period}") for period in (2, 3)]
    assert paid == [i["total_fen"] for i in loan["installments"][1:]]
    assert_settled(app, container, loan["id"], available_fen=limit)
    lines = app.statement(loan["id"])
    assert [line["kind"] for line in lines].count("reversal") == 1
    assert repaid_total(lines) == PRINCIPAL + loan["total_cost_fen"]
    stays_closed(app, container, loan["id"], 2, "paid_off")
