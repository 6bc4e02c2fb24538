"""Repayment math: hand-worked allocations, overdue charges, payoffs and prepayments, and properties.

The running example is the schedule hand-checked in test_schedule.py: equal installment, ¥1,000 over
3 months at 12 % from 15 Jan 2026 (ACT/360), lines (principal, interest) = (33002, 1000) due 15 Feb,
(33332, 670) due 15 Mar, (33666, 337) due 15 Apr. Penalty rate 12 % × 1.5 = 18 %, cap 24 %.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miaodai.loans.products import DEFAULT_ALLOCATION, Bucket
from miaodai.loans.repayment_math import (
    Allocation,
    AllocationLine,
    InstallmentState,
    PrepaymentMode,
    accrued_interest,
    allocate,
    apply,
    last_due_or_start,
    overdue_charge_parts,
    overdue_charges,
    payoff_amount,
    reschedule_after_prepayment,
)
from miaodai.loans.schedule import (
    DayCount,
    LoanTerms,
    RepaymentMethod,
    add_months,
    build_schedule,
    daily_interest,
    equal_installment_payment,
)

EI, EP, IF, BULLET = (RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL,
                      RepaymentMethod.INTEREST_FIRST, RepaymentMethod.BULLET)
PEN, FEE, INT, PR = Bucket.PENALTY, Bucket.FEE, Bucket.INTEREST, Bucket.PRINCIPAL
START = date(2026, 1, 15)
SHORTER, SMALLER = PrepaymentMode.SHORTER_TERM, PrepaymentMode.SMALLER_INSTALLMENT
R12, R18, CAP = Decimal("0.12"), Decimal("0.18"), Decimal("0.24")


def loan(principal=100000, rate="0.12", months=3, method=EI, fee="0", start=START):
    terms = LoanTerms(principal, Decimal(rate), method, start, term_months=months, monthly_fee_rate=Decimal(fee))
    return terms, [InstallmentState.from_installment(i) for i in build_schedule(terms).installments]


def paid_up(inst: InstallmentState) -> InstallmentState:
    return replace(inst, **{f"{b.value}_paid_fen": inst.charged(b) for b in Bucket})


def owed(inst: InstallmentState) -> tuple[int, int, int, int]:
    return tuple(inst.outstanding(b) for b in (PEN, FEE, INT, PR))  # type: ignore[return-value]


# -- installment state -------------------------------------------------------------------------------

def test_installment_state_outstanding_and_settled():
    inst = InstallmentState(1, date(2026, 2, 15), 33002, 1000, 100, 88, principal_paid_fen=2, fee_paid_fen=100)
    assert owed(inst) == (88, 0, 1000, 33000)
    assert inst.total_outstanding == 34088 and not inst.is_settled
    assert paid_up(inst).is_settled
    with pytest.raises(ValueError):
        InstallmentState(1, START, 100, 0, 0, principal_paid_fen=101)  # paid beyond what is charged
    with pytest.raises(TypeError):
        InstallmentState(1, START, 100.0, 0, 0)  # type: ignore[arg-type]


def test_installment_state_of_a_row_reads_the_same_attribute_names():
    class Row:
        period, due_date, principal_fen, interest_fen, fee_fen, penalty_fen = 2, START, 10, 2, 1, 0
        principal_paid_fen = interest_paid_fen = fee_paid_fen = penalty_paid_fen = 0
    assert InstallmentState.of(Row()) == InstallmentState(2, START, 10, 2, 1)


# -- allocation ----------------------------------------------------------------------------------------

def test_allocation_settles_the_due_installment_and_holds_the_rest():
    # Installment 1 (fee 100, penalty 88) is due on 20 Feb; installment 2 is not due until 15 Mar.
    _, rows = loan(fee="0.001")
    rows[0] = replace(rows[0], penalty_fen=88)
    allocation = allocate(rows, 35000, as_of=date(2026, 2, 20))
    # 88 penalty + 100 fee + 1000 interest + 33002 principal = 34190; 35000 − 34190 = 810 held over.
    assert allocation.lines == (AllocationLine(1, 88, 100, 1000, 33002),)
    assert allocation.unapplied_fen == 810 and allocation.applied_fen == 34190
    after = apply(rows, allocation)
    assert after[0].is_settled and after[1:] == tuple(rows[1:])


def test_allocation_is_oldest_installment_first_then_bucket():
    # Both installments overdue on 20 Mar, penalties 500 and 50. ¥350 settles installment 1 entirely
    # (500 + 100 + 1000 + 33002 = 34602) before installment 2's penalty sees a fen; the 398 left pays
    # installment 2's penalty 50, fee 100, and 248 of its 670 interest.
    _, rows = loan(fee="0.001")
    rows[0], rows[1] = replace(rows[0], penalty_fen=500), replace(rows[1], penalty_fen=50)
    allocation = allocate(rows, 35000, as_of=date(2026, 3, 20))
    assert allocation.lines == (AllocationLine(1, 500, 100, 1000, 33002), AllocationLine(2, 50, 100, 248, 0))
    assert allocation.unapplied_fen == 0
    assert allocation.bucket_total(PEN) == 550 and allocation.bucket_total(INT) == 1248
    after = apply(rows, allocation)
    assert owed(after[1]) == (0, 0, 422, 33332)


def test_allocation_follows_the_product_order_within_an_installment():
    _, rows = loan(fee="0.001")
    rows[0] = replace(rows[0], penalty_fen=500)
    # Order interest → principal → penalty → fee: 1500 pays interest 1000, then 500 of principal.
    allocation = allocate(rows, 1500, order=(INT, PR, PEN, FEE), as_of=date(2026, 2, 20))
    assert allocation.lines == (AllocationLine(1, penalty_fen=0, fee_fen=0, interest_fen=1000, principal_fen=500),)
    # The default order with a partial payment: penalty 500 first, then 100 fee, then 900 of interest.
    assert allocate(rows, 1500, as_of=date(2026, 2, 20)).lines == (AllocationLine(1, 500, 100, 900, 0),)


def test_allocation_on_the_due_date_counts_the_installment_as_due_and_nothing_before_it():
    _, rows = loan()
    assert allocate(rows, 34002, as_of=date(2026, 2, 15)).lines == (AllocationLine(1, 0, 0, 1000, 33002),)
    early = allocate(rows, 34002, as_of=date(2026, 2, 14))
    assert early == Allocation(34002, (), 34002)  # nothing due yet: all of it is an overpayment
    assert allocate(rows, 0, as_of=date(2026, 3, 20)) == Allocation(0, (), 0)


def test_allocation_refuses_bad_input_and_apply_refuses_overpaying():
    _, rows = loan()
    with pytest.raises(ValueError):
        allocate(rows, -1, as_of=START)
    with pytest.raises(ValueError):
        allocate(rows, 1, order=(PEN, FEE, INT), as_of=START)
    full = allocate(rows, 34002, as_of=date(2026, 2, 15))
    with pytest.raises(ValueError):
        apply(apply(rows, full), full)  # the same money twice would pay beyond what is owed
    with pytest.raises(ValueError):
        apply(rows[1:], full)  # period 1 is not among them


def test_allocation_json_shape():
    allocation = Allocation(1200, (AllocationLine(1, 0, 100, 1000, 0),), 100)
    assert allocation.as_dict() == {"amount_fen": 1200, "unapplied_fen": 100, "lines": [
        {"period": 1, "penalty_fen": 0, "fee_fen": 100, "interest_fen": 1000, "principal_fen": 0}]}


# -- overdue charges -------------------------------------------------------------------------------------

FIRST = InstallmentState(1, date(2026, 2, 15), 33002, 1000, 0)
OVERDUE = {"penalty_annual_rate": R18, "late_fee_fen": 500, "grace_days": 3, "cost_cap": CAP,
           "day_count": DayCount.ACT_360}


def charge(inst, day, already, **changes):
    return overdue_charges(inst, as_of=day, already_charged_fen=already, **{**OVERDUE, **changes})


def test_nothing_is_charged_on_the_due_date_or_within_grace():
    for day in (date(2026, 2, 14), date(2026, 2, 15), date(2026, 2, 16), date(2026, 2, 18)):
        assert charge(FIRST, day, 0) == 0


def test_first_day_after_grace_catches_up_from_the_due_date_with_the_late_fee_within_the_cap():
    # 19 Feb is 4 days overdue: penalty 33002 × 0.18 × 4 / 360 = 66.0040 → 66, late fee 500: 566.
    # Cap: 33002 × 0.24 × 4 / 360 = 88.0053 → 88. The cap cuts the late fee first: 66 + 22, 478 waived.
    parts = overdue_charge_parts(FIRST, as_of=date(2026, 2, 19), already_charged_fen=0, **OVERDUE)
    assert (parts.penalty_interest_fen, parts.late_fee_fen, parts.waived_fen) == (66, 22, 478)
    assert charge(FIRST, date(2026, 2, 19), 0) == 88
    # 20 Feb, 5 days: one day's penalty 33002 × 0.18 / 360 = 16.501 → 17; cap 110.0067 → 110, room 22: 17.
    assert charge(FIRST, date(2026, 2, 20), 88) == 17
    # 21 Feb, 6 days: cap 132.008 → 132, room 132 − 105 = 27: 17 again; no second late fee.
    assert charge(FIRST, date(2026, 2, 21), 105) == 17


def test_a_month_overdue_adds_up_day_by_day():
    charged = 0
    for n in range(1, 35):
        charged += charge(FIRST, FIRST.due_date + timedelta(days=n), charged)
    # 88 on day 4, then 17 a day for days 5..34 (17 < the cap's 22.0013 a day): 88 + 30 × 17 = 598.
    assert charged == 598


def test_when_the_penalty_rate_is_above_the_cap_the_cap_is_what_is_charged():
    # Contract 20 %, penalty 30 % > cap 24 %; ¥1,000 overdue, no grace, no late fee, ACT/365.
    inst = InstallmentState(1, date(2026, 2, 15), 100000, 0, 0)
    terms = {"penalty_annual_rate": Decimal("0.30"), "late_fee_fen": 0, "grace_days": 0,
             "day_count": DayCount.ACT_365}
    # Day 1: penalty 100000 × 0.30 / 365 = 82.19 → 82, cap 100000 × 0.24 / 365 = 65.75 → 66: 66.
    assert charge(inst, date(2026, 2, 16), 0, **terms) == 66
    # Day 2: cap 131.51 → 132, room 66. Day 3: cap 197.26 → 197, room 65.
    assert charge(inst, date(2026, 2, 17), 66, **terms) == 66
    assert charge(inst, date(2026, 2, 18), 132, **terms) == 65
    charged = 0
    for n in range(1, 366):
        charged += charge(inst, inst.due_date + timedelta(days=n), charged, **terms)
    assert charged == 24000  # a year overdue costs exactly the cap: 100000 × 24 %


def test_no_grace_charges_the_late_fee_on_the_first_overdue_day():
    # Day 1: 33002 × 0.18 / 360 = 16.50 → 17, + 500; cap 33002 × 0.24 / 360 = 22.00 → 22: 17 + 5.
    parts = overdue_charge_parts(FIRST, as_of=date(2026, 2, 16), already_charged_fen=0, **{**OVERDUE, "grace_days": 0})
    assert (parts.penalty_interest_fen, parts.late_fee_fen, parts.total_fen) == (17, 5, 22)


def test_penalty_runs_on_overdue_principal_only():
    interest_only_left = replace(FIRST, principal_paid_fen=33002)  # interest 1000 still unpaid
    assert charge(interest_only_left, date(2026, 3, 1), 0) == 0
    half_paid = replace(FIRST, principal_paid_fen=16502)  # 16500 principal left on day 10
    # Day 10 (25 Feb), already 88 + 5 × 17 = 173: one day on 16500 = 8.25 → 8; cap 16500 × 0.24 × 10 / 360 = 110
    # is below what was charged on the larger principal, so nothing is added and nothing is reversed.
    assert charge(half_paid, date(2026, 2, 25), 173) == 0
    assert charge(half_paid, date(2026, 2, 25), 100) == 8


# -- interest to date and payoff -------------------------------------------------------------------------

def test_payoff_after_the_first_installment():
    _, rows = loan()
    rows[0] = paid_up(rows[0])
    payoff = payoff_amount(rows, as_of=date(2026, 3, 1), annual_rate=R12, day_count=DayCount.ACT_360,
                           last_due_or_start=date(2026, 2, 15), outstanding_principal_fen=66998)
    # Principal not yet due 33332 + 33666 = 66998; 14 days: 66998 × 0.12 × 14 / 360 = 312.66 → 313.
    assert (payoff.remaining_principal_fen, payoff.accrued_interest_fen, payoff.early_repayment_fee_fen) == (
        66998, 313, 0)
    assert payoff.total_fen == 67311  # not 66998 + 670 + 337: future interest is not charged
    with_fee = payoff_amount(rows, as_of=date(2026, 3, 1), annual_rate=R12, day_count=DayCount.ACT_360,
                             last_due_or_start=date(2026, 2, 15), outstanding_principal_fen=66998,
                             early_repayment_fee_rate=Decimal("0.01"))
    assert with_fee.early_repayment_fee_fen == 670  # 66998 × 1 % = 669.98 → 670


def test_payoff_while_overdue_includes_everything_due():
    _, rows = loan(fee="0.001")
    rows[0] = replace(rows[0], penalty_fen=88)
    payoff = payoff_amount(rows, as_of=date(2026, 2, 20), annual_rate=R12, day_count=DayCount.ACT_360,
                           last_due_or_start=date(2026, 2, 15), outstanding_principal_fen=100000)
    # Due: penalty 88, fee 100, interest 1000, principal 33002. Future fees (2 × 100) are not charged.
    # Accrued: 66998 × 0.12 × 5 / 360 = 111.66 → 112 on the principal not yet due.
    assert (payoff.due_penalty_fen, payoff.due_fee_fen, payoff.due_interest_fen, payoff.due_principal_fen) == (
        88, 100, 1000, 33002)
    assert payoff.principal_fen == 100000 and payoff.accrued_interest_fen == 112
    assert payoff.total_fen == 88 + 100 + 1000 + 100000 + 112


def test_payoff_before_the_first_due_date_and_of_a_bullet():
    _, rows = loan()
    payoff = payoff_amount(rows, as_of=date(2026, 1, 25), annual_rate=R12, day_count=DayCount.ACT_360,
                           last_due_or_start=START, outstanding_principal_fen=100000)
    assert payoff.total_fen == 100333  # 100000 × 0.12 × 10 / 360 = 333.33 → 333
    bullet = LoanTerms(100000, R18, BULLET, START, term_days=30, day_count=DayCount.ACT_365)
    rows = [InstallmentState.from_installment(i) for i in build_schedule(bullet).installments]
    payoff = payoff_amount(rows, as_of=date(2026, 1, 25), annual_rate=R18, day_count=DayCount.ACT_365,
                           last_due_or_start=START, outstanding_principal_fen=100000)
    assert payoff.accrued_interest_fen == 493  # 100000 × 0.18 × 10 / 365 = 493.15 → 493 (full term: 1479)
    with pytest.raises(ValueError):
        payoff_amount(rows, as_of=date(2026, 1, 25), annual_rate=R18, day_count=DayCount.ACT_365,
                      last_due_or_start=START, outstanding_principal_fen=99999)


def test_accrued_interest_never_exceeds_the_next_installments_interest():
    _, rows = loan()
    # 40 days from 6 Jan would be 100000 × 0.12 × 40 / 360 = 1333.33; the next installment bills 1000.
    assert accrued_interest(rows, as_of=date(2026, 2, 14), annual_rate=R12, day_count=DayCount.ACT_360,
                            last_due_or_start=date(2026, 1, 5)) == 1000
    # The day before the due date of a 31-day period: 30 / 360 = 1 / 12, the same 1000 as the schedule.
    assert accrued_interest(rows, as_of=date(2026, 2, 14), annual_rate=R12, day_count=DayCount.ACT_360,
                            last_due_or_start=START) == 1000
    with pytest.raises(ValueError):
        accrued_interest(rows, as_of=START, annual_rate=R12, day_count=DayCount.ACT_360,
                         last_due_or_start=date(2026, 2, 1))


# -- early partial repayment ---------------------------------------------------------------------------

def shape(installments):
    return [(i.period, i.due_date.isoformat(), i.principal_fen, i.interest_fen, i.closing_balance_fen)
            for i in installments]


def after_first(**kwargs):
    terms, rows = loan(**kwargs)
    rows[0] = paid_up(rows[0])
    return terms, rows


def test_smaller_installment_keeps_the_periods_and_lowers_the_payment():
    terms, rows = after_first()
    # Prepay ¥300 on 1 Mar. Interest to date (paid with it): 66998 × 0.12 × 14 / 360 = 312.66 → 313.
    # B' = 66998 − 30000 = 36998; payment 36998 × 0.01 × 1.01² / (1.01² − 1) = 18776.95 → 18777.
    # Period 2: interest 36998 × 0.12 × 14 / 360 = 172.66 → 173 (≤ 670 − 313), principal 18777 − 173 = 18604;
    # period 3: interest 18394 × 1 % = 183.94 → 184, principal the remaining 18394.
    new = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=30000, as_of=date(2026, 3, 1), mode=SMALLER)
    assert shape(new) == [(2, "2026-03-15", 18604, 173, 18394), (3, "2026-04-15", 18394, 184, 0)]
    # ¥300 more is not enough to drop a period: one period would cost 36998 × 1.01 = 37368 > 34002, the old
    # payment (66998 at 1 % over 2 periods), so shorter_term gives the same two periods.
    assert reschedule_after_prepayment(terms, rows, prepaid_principal_fen=30000, as_of=date(2026, 3, 1),
                                       mode=SHORTER) == new


def test_shorter_term_drops_periods_when_the_old_payment_covers_fewer():
    terms, rows = after_first()
    # B' = 26998: one period costs 26998 × 1.01 = 27267.98 → 27268 ≤ 34002, so one period is left:
    # interest 26998 × 0.12 × 14 / 360 = 125.99 → 126.
    new = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=40000, as_of=date(2026, 3, 1), mode=SHORTER)
    assert shape(new) == [(2, "2026-03-15", 26998, 126, 0)]
    # smaller_installment instead: 26998 × 0.5075124 = 13701.8 → 13702; 13702 − 126 = 13576; 13422 × 1 % = 134.22.
    smaller = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=40000, as_of=date(2026, 3, 1),
                                          mode="smaller_installment")
    assert shape(smaller) == [(2, "2026-03-15", 13576, 126, 13422), (3, "2026-04-15", 13422, 134, 0)]


def test_shorter_term_of_ten_thousand_yuan_over_a_year():
    # ¥10,000 at 18 % over 12 months pays 916.80; after period 1 (principal 91680 − 15000 = 76680) the
    # balance is 923320. ¥3,000 prepaid on the due date itself (no interest to date): B' = 623320.
    # Level payments of 623320 at 1.5 %: 8 periods 83266 ≤ 91680 < 94468 for 7, so 8 periods (2..9) remain.
    terms, rows = after_first(principal=1_000_000, rate="0.18", months=12)
    assert equal_installment_payment(923320, R18, 11) == 91680
    assert [equal_installment_payment(623320, R18, n) for n in (7, 8)] == [94468, 83266]
    new = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=300000, as_of=date(2026, 2, 15),
                                      mode=SHORTER)
    assert [i.period for i in new] == list(range(2, 10))
    # Period 2 runs 15 Feb → 15 Mar, 28 days: 623320 × 0.18 × 28 / 360 = 8726.48 → 8726; 83266 − 8726 = 74540.
    assert (new[0].interest_fen, new[0].principal_fen) == (8726, 74540)
    assert all(i.principal_fen + i.interest_fen == 83266 for i in new[:-1])
    assert sum(i.principal_fen for i in new) == 623320


def test_equal_principal_prepayment():
    terms, rows = after_first(method=EP)
    # Schedule (33333, 1000), (33333, 667), (33334, 333). Prepay ¥200 on 1 Mar: B = 66667, B' = 46667.
    # Interest to date 66667 × 0.12 × 14 / 360 = 311.11 → 311; period 2 interest 46667 × 0.12 × 14 / 360
    # = 217.78 → 218 (≤ 667 − 311 = 356).
    smaller = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=20000, as_of=date(2026, 3, 1),
                                          mode=SMALLER)
    # Level principal 46667 / 2 = 23333.5 → 23334; period 3: 23333, interest 233.33 → 233.
    assert shape(smaller) == [(2, "2026-03-15", 23334, 218, 23333), (3, "2026-04-15", 23333, 233, 0)]
    shorter = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=20000, as_of=date(2026, 3, 1),
                                          mode=SHORTER)
    # Keep 33333 a period: ceil(46667 / 33333) = 2 periods; period 3 takes 13334, interest 133.34 → 133.
    assert shape(shorter) == [(2, "2026-03-15", 33333, 218, 13334), (3, "2026-04-15", 13334, 133, 0)]
    # ¥400 prepaid: B' = 26667 < 33333, one period; interest 26667 × 0.12 × 14 / 360 = 124.45 → 124.
    one = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=40000, as_of=date(2026, 3, 1), mode=SHORTER)
    assert shape(one) == [(2, "2026-03-15", 26667, 124, 0)]


def test_interest_first_prepayment_only_reduces_principal():
    terms, rows = after_first(method=IF)
    # B = 100000; ¥500 prepaid on 1 Mar. Interest to date 100000 × 0.12 × 14 / 360 = 466.67 → 467;
    # period 2: 50000 × 0.12 × 14 / 360 = 233.33 → 233; period 3: 50000 × 1 % = 500 with all principal.
    expected = [(2, "2026-03-15", 0, 233, 50000), (3, "2026-04-15", 50000, 500, 0)]
    for mode in PrepaymentMode:
        assert shape(reschedule_after_prepayment(terms, rows, prepaid_principal_fen=50000, as_of=date(2026, 3, 1),
                                                 mode=mode)) == expected


def test_bullet_prepayment_reduces_principal_and_interest_accrues_daily():
    terms = LoanTerms(100000, R18, BULLET, START, term_days=30)
    rows = [InstallmentState.from_installment(i) for i in build_schedule(terms).installments]
    assert rows[0].interest_fen == 1500 and rows[0].due_date == date(2026, 2, 14)
    # ¥400 prepaid on 25 Jan with 100000 × 0.18 × 10 / 360 = 500 interest to date; the 60000 left accrues
    # for the 20 days to 14 Feb: 60000 × 0.18 × 20 / 360 = 600. 500 + 600 ≤ 1500 billed before.
    assert accrued_interest(rows, as_of=date(2026, 1, 25), annual_rate=R18, day_count=DayCount.ACT_360,
                            last_due_or_start=START) == 500
    new = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=40000, as_of=date(2026, 1, 25), mode=SHORTER)
    assert shape(new) == [(1, "2026-02-14", 60000, 600, 0)]


def test_due_dates_keep_the_loans_anchor_day_and_fees_stay_per_period():
    terms, rows = loan(principal=120000, months=4, start=date(2028, 1, 31), fee="0.001")
    rows[0] = paid_up(rows[0])  # due 29 Feb 2028
    new = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=10000, as_of=date(2028, 3, 10),
                                      mode=SMALLER)
    # add_months from 31 Jan, not from 29 Feb: 31 Mar, 30 Apr, 31 May; fee 120000 × 0.1 % = 120 a period.
    assert [i.due_date for i in new] == [date(2028, 3, 31), date(2028, 4, 30), date(2028, 5, 31)]
    assert [i.fee_fen for i in new] == [120, 120, 120]


def test_a_second_prepayment_in_the_same_period_accrues_from_the_first():
    terms, rows = after_first()
    first = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=30000, as_of=date(2026, 3, 1), mode=SMALLER)
    rows = [rows[0], *(InstallmentState.from_installment(i) for i in first)]
    # On 8 Mar, 7 days after the first prepayment: 36998 × 0.12 × 7 / 360 = 86.33 → 86 (not 14 + 7 days).
    since = date(2026, 3, 1)
    assert accrued_interest(rows, as_of=date(2026, 3, 8), annual_rate=R12, day_count=DayCount.ACT_360,
                            last_due_or_start=since) == 86
    second = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=10000, as_of=date(2026, 3, 8),
                                         mode=SMALLER, interest_from=since)
    # B' = 26998; period 2 interest 26998 × 0.12 × 7 / 360 = 62.99 → 63 (≤ 173 − 86 = 87).
    assert second[0].interest_fen == 63 and sum(i.principal_fen for i in second) == 26998


def test_prepayment_refusals_and_the_full_prepayment():
    terms, rows = loan()
    with pytest.raises(ValueError):  # installment 1 is due and unpaid
        reschedule_after_prepayment(terms, rows, prepaid_principal_fen=100, as_of=date(2026, 2, 20), mode=SHORTER)
    with pytest.raises(ValueError):
        reschedule_after_prepayment(terms, rows, prepaid_principal_fen=100001, as_of=date(2026, 1, 20), mode=SHORTER)
    with pytest.raises(ValueError):
        reschedule_after_prepayment(terms, rows, prepaid_principal_fen=100, as_of=date(2026, 1, 20), mode="fewer")
    assert reschedule_after_prepayment(terms, rows, prepaid_principal_fen=100000, as_of=date(2026, 1, 20),
                                       mode=SHORTER) == ()
    assert last_due_or_start(terms, rows, date(2026, 3, 20)) == date(2026, 3, 15)
    assert last_due_or_start(terms, rows, date(2026, 2, 14)) == START


# -- properties -------------------------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=5_000_00)


@st.composite
def states(draw):
    count = draw(st.integers(1, 6))
    start = draw(st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 1, 1)))
    rows = []
    for period in range(1, count + 1):
        charged = [draw(st.integers(0, 50_000)) for _ in Bucket]
        paid = [draw(st.integers(0, c)) for c in charged]
        rows.append(InstallmentState(
            period, add_months(start, period), principal_fen=charged[3], interest_fen=charged[2],
            fee_fen=charged[1], penalty_fen=charged[0], principal_paid_fen=paid[3], interest_paid_fen=paid[2],
            fee_paid_fen=paid[1], penalty_paid_fen=paid[0]))
    as_of = add_months(start, draw(st.integers(0, count + 1)))
    return rows, as_of


@settings(max_examples=300)
@given(states(), amounts, st.permutations(list(DEFAULT_ALLOCATION)))
def test_allocation_properties(case, amount, order):
    rows, as_of = case
    allocation = allocate(rows, amount, order=order, as_of=as_of)
    assert allocation.applied_fen + allocation.unapplied_fen == amount
    by_period = {r.period: r for r in rows}
    for line in allocation.lines:
        inst = by_period[line.period]
        assert inst.due_date <= as_of
        assert all(0 <= line.amount(b) <= inst.outstanding(b) for b in Bucket)
        assert line.total_fen > 0
    after = apply(rows, allocation)
    # Order: walk (installment oldest first, bucket in order); once a pair is left unpaid, nothing later got money.
    paid_into = {(line.period, b) for line in allocation.lines for b in Bucket if line.amount(b)}
    gap = False
    for inst in sorted(after, key=lambda r: (r.due_date, r.period)):
        if inst.due_date > as_of:
            assert inst == by_period[inst.period]  # not yet due: untouched
            continue
        for bucket in order:
            if gap:
                assert (inst.period, bucket) not in paid_into
            gap = gap or inst.outstanding(bucket) > 0
    if allocation.unapplied_fen:
        assert all(r.is_settled for r in after if r.due_date <= as_of)


@settings(max_examples=150)
@given(
    st.integers(1, 500_000_00),
    st.decimals(min_value=Decimal("0"), max_value=Decimal("0.54"), places=4),
    st.integers(0, 50_00),
    st.integers(0, 30),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.36"), places=4),
    st.sampled_from(list(DayCount)),
)
def test_overdue_charges_never_exceed_the_cap(principal, penalty_rate, late_fee, grace, cap, day_count):
    inst = InstallmentState(1, date(2026, 2, 15), principal, 0, 0)
    rules = {"penalty_annual_rate": penalty_rate, "late_fee_fen": late_fee, "grace_days": grace, "cost_cap": cap,
             "day_count": day_count}
    charged = 0
    for n in range(0, 120):
        increment = overdue_charges(inst, as_of=inst.due_date + timedelta(days=n), already_charged_fen=charged,
                                    **rules)
        assert increment >= 0
        if n <= grace:
            assert increment == 0
        charged += increment
        assert charged <= daily_interest(principal, cap, max(n, 0), day_count)


@settings(max_examples=200)
@given(st.integers(0, 10**7), st.integers(-5, 400), st.integers(1, 10**7))
def test_one_date_never_takes_the_total_above_the_cap(already, n, principal):
    inst = InstallmentState(1, date(2026, 2, 15), principal, 0, 0)
    increment = charge(inst, inst.due_date + timedelta(days=n), already)
    assert increment >= 0
    assert already + increment <= max(already, daily_interest(principal, CAP, max(n, 0), DayCount.ACT_360))


@st.composite
def prepayments(draw):
    method = draw(st.sampled_from(list(RepaymentMethod)))
    rate = draw(st.decimals(min_value=Decimal("0"), max_value=Decimal("0.36"), places=4))
    principal = draw(st.integers(100_00, 200_000_00))
    start = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)))
    fee = Decimal(draw(st.sampled_from(["0", "0.001", "0.005"])))
    day_count = draw(st.sampled_from(list(DayCount)))
    if method is BULLET:
        terms = LoanTerms(principal, rate, method, start, term_days=draw(st.integers(2, 365)),
                          monthly_fee_rate=fee, day_count=day_count)
    else:
        terms = LoanTerms(principal, rate, method, start, term_months=draw(st.integers(2, 36)),
                          monthly_fee_rate=fee, day_count=day_count)
    rows = [InstallmentState.from_installment(i) for i in build_schedule(terms).installments]
    settled = draw(st.integers(0, len(rows) - 1))
    rows = [paid_up(r) if k < settled else r for k, r in enumerate(rows)]
    since = rows[settled - 1].due_date if settled else start
    span = (rows[settled].due_date - since).days
    as_of = since + timedelta(days=draw(st.integers(0, span - 1)))
    balance = sum(r.outstanding(PR) for r in rows[settled:])
    prepaid = draw(st.integers(1, balance))
    return terms, rows, settled, as_of, prepaid, balance, draw(st.sampled_from(list(PrepaymentMode)))


@settings(max_examples=300)
@given(prepayments())
def test_reschedule_properties(case):
    terms, rows, settled, as_of, prepaid, balance, mode = case
    new = reschedule_after_prepayment(terms, rows, prepaid_principal_fen=prepaid, as_of=as_of, mode=mode)
    future = rows[settled:]
    remaining = balance - prepaid
    assert sum(i.principal_fen for i in new) == remaining
    assert all(i.principal_fen >= 0 and i.interest_fen >= 0 and i.fee_fen >= 0 for i in new)
    assert len(new) <= len(future)
    if remaining == 0:
        assert new == ()
        return
    balances = [remaining] + [i.closing_balance_fen for i in new]
    steps = zip(balances[:-1], balances[1:], new, strict=True)
    assert balances[-1] == 0 and all(opening - closing == i.principal_fen for opening, closing, i in steps)
    assert [i.period for i in new] == [r.period for r in future[: len(new)]]
    assert [i.due_date for i in new] == [r.due_date for r in future[: len(new)]]
    if terms.method.is_monthly:
        assert all(i.due_date == add_months(terms.start_date, i.period) for i in new)
    # The period of the prepayment never costs more interest than its schedule said.
    accrued = accrued_interest(rows, as_of=as_of, annual_rate=terms.annual_rate, day_count=terms.day_count,
                               last_due_or_start=last_due_or_start(terms, rows, as_of))
    assert accrued + new[0].interest_fen <= future[0].interest_fen
    if terms.method is EI:
        old_payment = future[0].principal_fen + future[0].interest_fen  # every installment but the last pays it
        assert all(i.principal_fen + i.interest_fen <= old_payment for i in new[:-1])
        if mode is SMALLER:
            assert len(new) == len(future)
    if terms.method is EP and len(new) > 1:
        assert new[0].principal_fen <= future[0].principal_fen
    if terms.method in (IF, BULLET) or mode is SMALLER:
        assert len(new) == len(future)


@settings(max_examples=200)
@given(prepayments())
def test_paying_off_early_never_costs_more_than_the_schedule(case):
    terms, rows, settled, as_of, _, balance, _ = case
    payoff = payoff_amount(rows, as_of=as_of, annual_rate=terms.annual_rate, day_count=terms.day_count,
                           last_due_or_start=last_due_or_start(terms, rows, as_of), outstanding_principal_fen=balance)
    assert payoff.remaining_principal_fen == balance and payoff.due_principal_fen == 0
    assert payoff.total_fen <= sum(r.total_outstanding for r in rows)
    assert payoff.total_fen == balance + payoff.accrued_interest_fen
