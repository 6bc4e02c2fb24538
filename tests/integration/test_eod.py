"""The end-of-day batch against a real loan on both databases: falling due, overdue with grace, penalty
interest and the late fee within the cost cap (compared to the pure rules in repayment_math), held money
applied, reminders and auto-debit instructions, idempotency, resuming after a crash, and refusing to
skip a date. The book is sound after every date.

The loan: 10,000.00 yuan, 12 months equal installments at 15.48 % (the demo line), ACT/360, fee 0.1 % a
month, penalty rate 23.22 % (× 1.5), late fee 20.00 yuan, 3 grace days, cost cap 24 %.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from miaodai.core.clock import BUSINESS_TZ, business_date
from miaodai.core.errors import DomainError
from miaodai.core.idempotency_models import IdempotencyRecord
from miaodai.ledger.models import JournalEntry
from miaodai.loans import eod
from miaodai.loans.eod import bucket_of, run_eod
from miaodai.loans.models import CollectionInstruction, EodRun, Loan, LoanInstallment, Reminder
from miaodai.loans.repayment_math import InstallmentState, overdue_charge_parts
from miaodai.loans.schedule import DayCount, daily_interest
from miaodai.payments import collections
from tests.cli_support import run_cli
from tests.loan_support import PHONE, active_loan, assert_book_sound, close_through, demo_borrower, repay


@pytest.fixture
def loan(client, clock, container):
    return active_loan(client, clock, demo_borrower(client, container))


def installment(container, loan_id: int, period: int) -> LoanInstallment:
    with container.db.transaction() as session:
        return session.execute(select(LoanInstallment).where(
            LoanInstallment.loan_id == loan_id, LoanInstallment.period == period)).scalar_one()


def loan_row(container, loan_id: int) -> Loan:
    with container.db.transaction() as session:
        return session.get(Loan, loan_id)


def entries(container, kind: str) -> list[JournalEntry]:
    with container.db.transaction() as session:
        return list(session.scalars(select(JournalEntry).where(JournalEntry.kind == kind).order_by(JournalEntry.id)))


def test_an_installment_falls_due_the_evening_before_with_reminders_and_an_auto_debit(client, container, clock, loan):
    first = loan["installments"][0]
    due = date.fromisoformat(first["due_date"])
    close_through(container, clock, due - timedelta(days=2))
    assert not installment(container, loan["id"], 1).posted_due
    accrued = loan_row(container, loan["id"])
    days = (due - timedelta(days=1) - date.fromisoformat(loan["start_date"])).days
    # One rounding a day: Σ round(1,000,000 × 0.1548 / 360) = 430 fen a day.
    assert accrued.accrued_interest_fen == 430 * days

    close_through(container, clock, due - timedelta(days=1))  # the close of the eve of the due date
    row = installment(container, loan["id"], 1)
    assert row.posted_due and loan_row(container, loan["id"]).accrued_interest_fen == 0
    [posted] = entries(container, "installment_due")
    assert posted.idempotency_key == f"loan:{loan['id']}:inst:1:due"
    assert sorted((leg.account, leg.amount_fen) for leg in posted.legs) == sorted([
        ("interest_receivable", 12_900), ("interest_income", -12_900), ("fee_receivable", 1_000),
        ("fee_income", -1_000)])
    with container.db.transaction() as session:
        kinds = {r.kind: r for r in session.scalars(select(Reminder).where(Reminder.installment_id == row.id))}
        [debit] = session.scalars(select(CollectionInstruction)).all()
    assert set(kinds) == {"due_in_3", "due_in_1", "due_today"}
    assert kinds["due_today"].business_date == due and kinds["due_today"].amount_fen == first["total_fen"]
    assert (debit.business_date, debit.amount_fen, debit.status) == (due, first["total_fen"], "pending")
    sent = eod.send_reminders(container, due)
    assert sent.sent == 1
    texts = [m["text"] for m in client.get(f"/sandbox/sms/{PHONE}").json()["messages"]]
    assert any("今天到期" in t and str(first["total_fen"] // 100) in t for t in texts)
    assert eod.send_reminders(container, due).sent == 0  # sent once


def test_an_unpaid_installment_goes_overdue_and_is_charged_after_grace_within_the_cap(client, container, clock, loan):
    first = loan["installments"][0]
    due = date.fromisoformat(first["due_date"])
    close_through(container, clock, due)
    overdue = loan_row(container, loan["id"])
    assert (overdue.status.value, overdue.days_past_due) == ("overdue", 1)
    close_through(container, clock, due + timedelta(days=3))  # grace: three days, nothing charged
    assert installment(container, loan["id"], 1).penalty_fen == 0
    assert loan_row(container, loan["id"]).days_past_due == 4

    terms = {"penalty_annual_rate": overdue.penalty_annual_rate, "late_fee_fen": 2_000, "grace_days": 3,
             "cost_cap": overdue.cost_cap, "day_count": DayCount.ACT_360}
    charged = 0
    for n in range(4, 9):
        close_through(container, clock, due + timedelta(days=n))
        state = InstallmentState.of(installment(container, loan["id"], 1))
        expected = overdue_charge_parts(_before(state, charged), as_of=due + timedelta(days=n),
                                        already_charged_fen=charged, **terms)
        charged += expected.total_fen
        assert state.penalty_fen == charged
        # Never above the cap: principal × 24 % × days / 360.
        assert charged <= daily_interest(first["principal_fen"], overdue.cost_cap, n, DayCount.ACT_360)
    assert charged > 0
    assert sum(-leg.amount_fen for e in entries(container, "penalty") for leg in e.legs
               if leg.account == "penalty_income") == charged
    assert bucket_of(loan_row(container, loan["id"]).days_past_due) == "M1"

    # Paying everything owed brings the loan back to active; the batch then leaves it there.
    owed = sum(v for v in installment(container, loan["id"], 1).outstanding.values())
    assert repay(client, loan["id"], owed, "catch-up").status_code == 200
    close_through(container, clock, due + timedelta(days=9))
    back = loan_row(container, loan["id"])
    assert (back.status.value, back.days_past_due) == ("active", 0)


def _before(state: InstallmentState, charged: int) -> InstallmentState:
    """The installment as the batch saw it before the day's charge."""
    from dataclasses import replace

    return replace(state, penalty_fen=charged)


def test_money_held_pays_the_installment_when_it_falls_due(client, container, clock, loan):
    first = loan["installments"][0]
    assert repay(client, loan["id"], first["total_fen"] + 5_000, "ahead").status_code == 200
    assert loan_row(container, loan["id"]).overpayment_fen == first["total_fen"] + 5_000
    close_through(container, clock, date.fromisoformat(first["due_date"]) - timedelta(days=1))
    row = installment(container, loan["id"], 1)
    assert row.paid_off_on is not None and row.interest_paid_fen == 12_900
    held = loan_row(container, loan["id"])
    assert held.overpayment_fen == 5_000 and held.status.value == "active"
    [applied] = entries(container, "held_applied")
    assert sum(leg.amount_fen for leg in applied.legs if leg.account == "overpayment_liability") == first["total_fen"]
    close_through(container, clock, date.fromisoformat(first["due_date"]) + timedelta(days=5))
    assert loan_row(container, loan["id"]).status.value == "active"  # paid in time: never overdue


def test_a_date_runs_once_resumes_after_a_crash_and_cannot_be_skipped(container, clock, loan, monkeypatch):
    first_day = business_date(clock.now())
    with pytest.raises(DomainError) as early:
        run_eod(container, first_day)
    assert early.value.code == "LOAN_EOD_DAY_NOT_OVER"
    due = date.fromisoformat(loan["installments"][0]["due_date"])
    close_through(container, clock, due - timedelta(days=2))
    clock.advance(timedelta(days=3))

    def crash(self):
        raise RuntimeError("power cut")

    monkeypatch.setattr(eod._Batch, "status", crash)
    with pytest.raises(RuntimeError):
        run_eod(container, due - timedelta(days=1))
    with container.db.transaction() as session:
        run = session.get(EodRun, due - timedelta(days=1))
        assert (run.status, run.step) == ("running", "apply_held")
    assert installment(container, loan["id"], 1).posted_due  # fall_due finished before the cut
    with pytest.raises(DomainError) as unfinished:
        run_eod(container, due)
    assert unfinished.value.code == "LOAN_EOD_UNFINISHED"
    monkeypatch.undo()

    resumed = run_eod(container, due - timedelta(days=1))
    assert resumed.resumed_after == "apply_held" and set(resumed.steps) == set(eod.STEPS)
    assert len(entries(container, "installment_due")) == 1
    assert run_eod(container, due - timedelta(days=1)).already_done
    with pytest.raises(DomainError) as skipped:
        run_eod(container, due + timedelta(days=1))
    assert skipped.value.code == "LOAN_EOD_OUT_OF_ORDER"
    assert skipped.value.params["expected"] == due.isoformat()
    assert_book_sound(container)


def test_running_a_date_again_changes_nothing(container, clock, loan):
    due = date.fromisoformat(loan["installments"][0]["due_date"])
    close_through(container, clock, due + timedelta(days=5))
    with container.db.transaction() as session:
        before = (session.scalar(select(func.count()).select_from(JournalEntry)),
                  session.scalar(select(func.count()).select_from(Reminder)),
                  session.scalar(select(func.count()).select_from(CollectionInstruction)))
    state = installment(container, loan["id"], 1)
    # The batch's guards, not just the run record, make a step safe to repeat: replay every step.
    batch = eod._Batch(container, due + timedelta(days=5), 2, None)
    for step in eod.STEPS:
        getattr(batch, step)()
    with container.db.transaction() as session:
        after = (session.scalar(select(func.count()).select_from(JournalEntry)),
                 session.scalar(select(func.count()).select_from(Reminder)),
                 session.scalar(select(func.count()).select_from(CollectionInstruction)))
    assert after == before
    again = installment(container, loan["id"], 1)
    assert (again.penalty_fen, again.penalty_through) == (state.penalty_fen, state.penalty_through)
    assert_book_sound(container)


def test_the_cli_closes_a_date_and_shows_the_book(settings, container, clock, loan):
    # The CLI runs on the real clock: close dates already over by the wall clock.
    day = business_date(clock.now()) - timedelta(days=5)
    expired = IdempotencyRecord.expires_at < datetime.now(UTC)  # the test's keys were made on the test clock
    with container.db.transaction() as session:
        stale = session.scalar(select(func.count()).select_from(IdempotencyRecord).where(expired))
    result = run_cli(settings, "eod", "run", "--date", day.isoformat(), "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["steps"]["accrue"] == {"loans": 0, "accrued_fen": 0}  # the loan starts the next day
    assert figures["idempotency_keys_purged"] == stale
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord).where(expired)) == 0
    again = run_cli(settings, "eod", "run", "--date", day.isoformat(), "--json")
    assert json.loads(again.output)["already_done"] is True
    skipped = run_cli(settings, "eod", "run", "--date", (day + timedelta(days=2)).isoformat())
    assert skipped.exit_code == 1 and "LOAN_EOD_OUT_OF_ORDER" in skipped.output
    status = run_cli(settings, "eod", "status")
    assert status.exit_code == 0 and "completed" in status.output and "current 1" in status.output
    assert PHONE not in status.output


def _instructions(container, loan_id: int) -> dict[date, CollectionInstruction]:
    with container.db.transaction() as session:
        return {i.business_date: i for i in session.scalars(
            select(CollectionInstruction).where(CollectionInstruction.loan_id == loan_id))}


def test_auto_debit_instructions_nobody_tried_expire_after_their_day_and_are_never_debited(
        container, clock, loan):
    """The payments worker was down on the due date: that day's instruction was never tried. The close of
    the next day expires it (a retry that never started is given up as failed); auto-debit, even asked
    about that day, leaves both alone, and running the step again changes nothing."""
    due = date.fromisoformat(loan["installments"][0]["due_date"])
    close_through(container, clock, due)  # the due date's instruction is left pending: nobody ran auto-debit
    on_due_day = _instructions(container, loan["id"])[due]
    assert (on_due_day.status, on_due_day.attempts) == ("pending", 0)  # D's own stay until the close of D + 1
    with container.db.transaction() as session:  # and the next day's instruction was tried once, no retry made
        retry_missed = session.get(CollectionInstruction, _instructions(container, loan["id"])[due + timedelta(
            days=1)].id)
        retry_missed.attempts, retry_missed.last_code = 1, "INSUFFICIENT_FUNDS"

    [report] = close_through(container, clock, due + timedelta(days=1))
    assert report.steps["expire_instructions"] == {"expired": 1, "failed": 0}
    [report] = close_through(container, clock, due + timedelta(days=2))
    assert report.steps["expire_instructions"] == {"expired": 0, "failed": 1}
    closed = _instructions(container, loan["id"])
    assert (closed[due].status, closed[due].attempts, closed[due].collected_fen) == ("expired", 0, 0)
    assert (closed[due + timedelta(days=1)].status, closed[due + timedelta(days=1)].last_code) == (
        "failed", "INSUFFICIENT_FUNDS")
    assert closed[due + timedelta(days=3)].status == "pending"  # tomorrow's, made by the same run

    # Auto-debit as if it were still the due date: it only starts pending instructions.
    due_morning = datetime.combine(due, datetime.min.time(), tzinfo=BUSINESS_TZ) + timedelta(hours=10)
    assert collections.run_auto_debit(container, now=due_morning) == {
        "debits": 0, "settled_without_debit": 0, "waiting": 0}
    assert _instructions(container, loan["id"])[due].status == "expired"

    batch = eod._Batch(container, due + timedelta(days=2), 1, None)
    assert batch.expire_instructions() == {"expired": 0, "failed": 0}
    assert_book_sound(container)
