"""The demo portfolio: a year of loans made through the real services on a test clock, for the console's charts.

One seed per backend — on SQLite the portfolio `miaodai demo seed` makes (at least 300 loans), on PostgreSQL a
smaller one (5 applicants a month instead of 17, the same twelve months and every date closed by the end-of-day
batch) — checked for what the console's charts need and for a sound book: each loan state and bucket, twelve
disbursement months, on-time, early, late, M3+ and written-off histories, a balanced ledger with every loan's
sub-ledger equal to its installments, and an intact audit chain.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from miaodai.container import build_container
from miaodai.core.audit import AuditEntry, verify_chain
from miaodai.core.clock import BUSINESS_TZ, FixedClock, business_date
from miaodai.core.db import Database
from miaodai.demo import seed_demo
from miaodai.demo_portfolio import APPLICANTS_PER_MONTH, WRITE_OFF_MANAGER, Fate, plan, seed_portfolio
from miaodai.identity import staff_service
from miaodai.identity.models import StaffUser
from miaodai.ledger.service import check_book, trial_balance
from miaodai.loans.accounting import mismatched_loans
from miaodai.loans.eod import book_summary
from miaodai.loans.models import EodRun, Loan, LoanInstallment, Repayment
from miaodai.payments.models import PaymentOrder

# A Monday in December 2026: the consent documents are in force from 2026-01-01, so all twelve months fit.
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=BUSINESS_TZ)
PER_MONTH = 5


@pytest.fixture(autouse=True)
def fast_hasher(monkeypatch):
    monkeypatch.setattr(staff_service, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))


@pytest.fixture
def demo_now(settings):
    built = build_container(settings, clock=FixedClock(NOW), db=Database(settings.database_url))
    yield built
    built.db.dispose()


def test_the_plan_is_the_same_for_the_same_seed_and_day_and_covers_every_fate():
    today, earliest = date(2026, 12, 7), date(2026, 1, 2)
    first = plan(today, earliest)
    assert first == plan(today, earliest)
    assert first != plan(today, earliest, seed=20)
    assert len({a.applies_on.strftime("%Y-%m") for a in first}) == 12
    assert {a.fate for a in first} == set(Fate)
    assert len({a.phone for a in first}) == len({a.id_number for a in first}) == len(first) == 12 * APPLICANTS_PER_MONTH
    assert all(earliest <= a.applies_on < today for a in first)


def test_a_year_of_demo_loans_through_the_real_services(demo_now):
    container = demo_now
    seed_demo(container, every_role=True)  # the product, the demo staff (the risk manager writes off), borrowers
    full = container.db.dialect == "sqlite"  # the command's own portfolio; a smaller one on PostgreSQL
    per_month = APPLICANTS_PER_MONTH if full else PER_MONTH
    report = seed_portfolio(container, applicants_per_month=per_month)
    assert not report.skipped
    today = business_date(NOW)

    with container.db.transaction() as session:
        loans = session.execute(select(Loan.id, Loan.status, Loan.start_date, Loan.days_past_due)).all()
        assert len(loans) == report.loans >= (300 if full else 12 * per_month * 2 // 3)
        # Twelve disbursement months, January to December 2026.
        assert sorted({f"{row.start_date:%Y-%m}" for row in loans}) == [f"2026-{m:02d}" for m in range(1, 13)]
        assert {row.status.value for row in loans} == {"active", "overdue", "paid_off", "written_off"}
        # Every delinquency bucket has loans on the book.
        buckets = book_summary(session)
        assert all(buckets[bucket] > 0 for bucket in ("current", "M1", "M2", "M3", "M3+")), buckets
        # Early repayment: whole loans paid off before their last due date, and parts of principal.
        kinds = dict(session.execute(select(Repayment.kind, func.count()).group_by(Repayment.kind)).all())
        assert kinds.get("payoff", 0) > 0 and kinds.get("prepayment", 0) > 0, kinds
        # On time: installments taken by auto-debit on their due date, no penalty.
        on_time = session.scalar(select(func.count()).select_from(LoanInstallment).where(
            LoanInstallment.paid_off_on == LoanInstallment.due_date, LoanInstallment.penalty_fen == 0))
        assert on_time > 0
        # Late histories: penalties charged by the batch on installments that were paid in the end.
        late_paid = session.scalar(select(func.count()).select_from(LoanInstallment).where(
            LoanInstallment.penalty_fen > 0, LoanInstallment.paid_off_on.is_not(None)))
        assert late_paid > 0
        # Money moved through the sandbox channel: payouts, auto-debits (some refused by an empty card).
        orders = dict(session.execute(select(PaymentOrder.purpose, func.count()).group_by(PaymentOrder.purpose)).all())
        assert orders.get("disbursement") == len(loans) and orders.get("auto_debit", 0) > len(loans), orders
        failed = session.scalar(select(func.count()).select_from(PaymentOrder).where(
            PaymentOrder.code == "INSUFFICIENT_FUNDS"))
        assert failed > 0
        # Every date from the first loan's through yesterday was closed, in order.
        dates = list(session.execute(select(EodRun.business_date).order_by(EodRun.business_date)).scalars())
        assert dates[-1] == today - timedelta(days=1) and len(dates) == (dates[-1] - dates[0]).days + 1
        assert dates[0] == min(row.start_date for row in loans)
        # Written off by the demo risk manager (the service refuses before M3+), each with its audit entry.
        manager = session.scalar(select(StaffUser.id).where(StaffUser.username == WRITE_OFF_MANAGER))
        write_offs = session.execute(select(AuditEntry.actor, AuditEntry.subject).where(
            AuditEntry.action == "loan.write_off")).all()
        assert write_offs and {actor for actor, _ in write_offs} == {f"staff:{manager}"}
        assert {subject for _, subject in write_offs} == {f"loan:{row.id}" for row in loans
                                                         if row.status.value == "written_off"}

        # The book balances, and every loan's sub-ledger equals its installments.
        assert trial_balance(session).balanced
        assert check_book(session) == []
        assert list(mismatched_loans(session)) == []
    chain = verify_chain(container.db, container.clock, unsealed_bound=timedelta(minutes=5))
    assert chain.intact and chain.stale_unsealed == [], chain
    # The app's business date is "today" again: the next date to close is yesterday's morrow, not in the past.
    assert container.clock.now() == NOW

    again = seed_portfolio(container, applicants_per_month=per_month)
    assert again.skipped and again.loans == 0
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == len(loans)
