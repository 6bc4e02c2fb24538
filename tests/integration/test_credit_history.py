"""What a credit decision reads of our own book, on both databases: the loan history summed up in SQL
(open principal, loans paid off, what falls due within a month, the worst lateness), the device-sharing
count with the active policy's window, and the active policy's versions — all on the applicant's one row,
and the same answers from the standalone reads that re-scoring uses."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from stdnum.cn import ric

from miaodai.core.clock import business_date
from miaodai.credit import bureau
from miaodai.credit.models import SNAPSHOT_FIELD, CreditApplication
from miaodai.credit.registry import ActivePolicy, default_ruleset
from miaodai.credit.service import book_signals, internal_history
from miaodai.demo import seed_demo
from miaodai.loans.models import CreditLine, Loan, LoanInstallment
from miaodai.loans.states import LineStatus, LoanStatus
from tests.credit_support import applicant, apply, install_test_model, quick_parties

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


@pytest.fixture
def waits(container):
    seed_demo(container)
    install_test_model(container)
    return quick_parties(container)


def _id_number(n: int) -> str:
    """A valid resident ID number clear of the sandbox bureau's special values."""
    body = f"11010119850101{n:03d}"
    return body + ric.calc_check_digit(body + "0")


def _loan(session, line: CreditLine, status: LoanStatus, outstanding_fen: int,
          installments: list[tuple[date, date | None, int]], n: int, *, borrower_id: int | None = None) -> None:
    """A loan on ``line`` (of ``borrower_id``, the line's own by default) with installments of (due date,
    paid-off date, principal); interest and fee are fixed fractions so their sums are known."""
    borrower_id = borrower_id or line.borrower_id
    loan = Loan(
        loan_no=f"TESTHIST{borrower_id}-{n}", borrower_id=borrower_id, credit_line_id=line.id,
        product_id=line.product_id, status=status, principal_fen=100_000_00, method="equal_installment",
        term_months=len(installments), annual_rate=Decimal("0.12"), monthly_fee_rate=Decimal(0), day_count="ACT/360",
        penalty_annual_rate=Decimal("0.18"), late_fee_fen=0, grace_days=3, cost_cap=Decimal("0.24"),
        allocation_order="penalty,fee,interest,principal", apr=Decimal("0.12"), total_interest_fen=0,
        total_fee_fen=0, start_date=date(2026, 1, 1), principal_outstanding_fen=outstanding_fen, overpayment_fen=0,
        days_past_due=0, payout_attempts=0, request_key=f"hist-{borrower_id}-{n}", requested_at=line.created_at,
        version=1,
    )
    session.add(loan)
    session.flush()
    for period, (due, paid_on, principal) in enumerate(installments, start=1):
        session.add(LoanInstallment(loan_id=loan.id, period=period, due_date=due, principal_fen=principal,
                                    interest_fen=principal // 10, fee_fen=principal // 100, paid_off_on=paid_on))


def _line_of(container, borrower_id: int) -> CreditLine:
    with container.db.transaction() as session:
        line = session.execute(select(CreditLine).where(CreditLine.borrower_id == borrower_id)).scalar_one()
        session.expunge(line)
    return line


def _snapshot(container, application_id: int) -> dict:
    with container.db.transaction() as session:
        row = session.get(CreditApplication, application_id)
        return json.loads(container.vault.decrypt(row.snapshot_enc, SNAPSHOT_FIELD))


def test_the_loan_history_is_summed_in_sql_the_same_on_the_applicant_row_and_alone(client, container, waits):
    who = applicant(client, "13700137101", bureau.CLEAN_FILE_ID)
    first = apply(client, who).json()
    assert first["status"] == "approved"
    today = business_date(container.clock.now())
    line = _line_of(container, _borrower_id(container, first["id"]))
    other = applicant(client, "13700137102", _id_number(101), device="device-other")
    other_id = client.get("/v1/me", headers=other["headers"]).json()["borrower_id"]
    with container.db.transaction() as session:
        # Open: paid 5 days late; 10 days overdue now; due in 20 days; due in 50 days (beyond the month).
        _loan(session, line, LoanStatus.OVERDUE, 300_00, [
            (today - timedelta(days=40), today - timedelta(days=35), 100_00),
            (today - timedelta(days=10), None, 100_00),
            (today + timedelta(days=20), None, 100_00),
            (today + timedelta(days=50), None, 100_00),
        ], 1)
        # Paid off: one installment early, one 3 days late.
        _loan(session, line, LoanStatus.PAID_OFF, 0, [
            (today - timedelta(days=200), today - timedelta(days=207), 50_00),
            (today - timedelta(days=170), today - timedelta(days=167), 50_00),
        ], 2)
        _loan(session, line, LoanStatus.ACTIVE, 200_00, [], 3)  # no schedule yet: its principal still counts
        # Someone else's loan, 90 days late: none of it is ours.
        _loan(session, line, LoanStatus.OVERDUE, 900_00, [(today - timedelta(days=90), None, 900_00)], 4,
              borrower_id=other_id)
    expected = {"outstanding_principal_fen": 500_00, "loans_paid_off": 1, "max_overdue_days": 10,
                # the overdue one and the one due in 20 days: principal + a tenth + a hundredth, each
                "monthly_repayment_fen": 2 * (100_00 + 10_00 + 1_00)}

    with container.db.autocommit() as session:
        book = book_signals(session, borrower_id=line.borrower_id, id_number_bidx="x", phone_bidx="x",
                            device_bidx=None, since=today)
        alone = internal_history(session, line.borrower_id, today=today, book=book)
    assert {k: getattr(alone, k) for k in expected} == expected
    assert (alone.active_lines, alone.existing_limit_fen) == (1, line.limit_fen)

    # The application reads the same on its one row, and its snapshot says so. (An open line refuses an
    # application before anything is read from outside or stored: the line is closed first, its loans kept.)
    with container.db.transaction() as session:
        session.execute(update(CreditLine).where(CreditLine.id == line.id).values(status=LineStatus.CLOSED))
    again = apply(client, who).json()
    features = _snapshot(container, again["id"])["features"]
    assert features["internal_loans_paid_off"] == 1 and features["internal_max_overdue_days"] == 10
    facts = _snapshot(container, again["id"])["facts"]
    assert facts["active_lines"] == 0


def _borrower_id(container, application_id: int) -> int:
    with container.db.transaction() as session:
        return session.get(CreditApplication, application_id).borrower_id


def test_the_device_count_uses_the_active_policys_window_even_after_another_was_seen(client, container, waits):
    # Two people apply from one device; the second applies 10 days later. The active (packaged) policy
    # counts 30 days back, so the first counts. This process last saw a policy counting 2 days: the read
    # guesses with that window and must count again with the active one.
    first = applicant(client, "13700137111", bureau.CLEAN_FILE_ID, device="shared-device")
    assert apply(client, first).status_code == 201
    container.clock.advance(timedelta(days=10))
    second = applicant(client, "13700137112", _id_number(102), device="shared-device")
    packaged = default_ruleset()
    narrow_rules = tuple((name, outcome, {**params, "window_days": 2}) if name == "device_sharing"
                         else (name, outcome, params) for name, outcome, params in packaged.rules)
    seen = container.credit_policy.latest
    assert seen is not None and seen.ruleset is packaged
    container.credit_policy.latest = ActivePolicy(replace(packaged, rules=narrow_rules), seen.champion,
                                                  seen.challenger)
    body = apply(client, second).json()
    assert _snapshot(container, body["id"])["facts"]["device_applicants"] == 2
    assert container.credit_policy.latest.ruleset is packaged  # what is active, read on the applicant's row
    # With the right window guessed, the one statement's count is the same.
    container.clock.advance(timedelta(days=1))
    third = applicant(client, "13700137113", _id_number(103), device="shared-device")
    assert _snapshot(container, apply(client, third).json()["id"])["facts"]["device_applicants"] == 3
