"""Schedule math and the APR: hand-checked tables for each method, and properties over random terms.

The tables below were worked by hand from the formulas in miaodai/loans/schedule.py's docstring
(each line: principal, interest, fee), e.g. equal installment, ¥1,000 over 3 months at 12 %:
r = 1 %, payment = 100000 × 0.01 × 1.01³ / (1.01³ − 1) = 34002.21 → 34002 fen;
interest 1000, then 66998 × 1 % = 669.98 → 670, then 33666 × 1 % = 336.66 → 337.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miaodai.core.errors import DomainError
from miaodai.loans.quotes import quote, quote_json, terms_or_error
from miaodai.loans.schedule import (
    DayCount,
    InvalidLoanTerms,
    LoanTerms,
    RepaymentMethod,
    add_months,
    build_schedule,
    daily_interest,
    equal_installment_payment,
    periodic_irr,
)

EI, EP, IF, BULLET = (RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL,
                      RepaymentMethod.INTEREST_FIRST, RepaymentMethod.BULLET)
START = date(2026, 1, 15)


def lines(schedule):
    return [(i.principal_fen, i.interest_fen, i.fee_fen) for i in schedule.installments]


def monthly(principal, rate, months, method, fee="0", start=START):
    return build_schedule(LoanTerms(principal, Decimal(rate), method, start, term_months=months,
                                     monthly_fee_rate=Decimal(fee)))


# -- known answers ---------------------------------------------------------------------------------

def test_equal_installment_table():
    schedule = monthly(100000, "0.12", 3, EI)
    assert lines(schedule) == [(33002, 1000, 0), (33332, 670, 0), (33666, 337, 0)]
    assert [i.total_fen for i in schedule.installments] == [34002, 34002, 34003]
    assert [i.closing_balance_fen for i in schedule.installments] == [66998, 33666, 0]
    assert schedule.total_interest_fen == 2007


def test_equal_installment_of_ten_thousand_yuan_over_a_year_at_18_percent_pays_916_80():
    # The figure every Chinese loan calculator shows for 1万元 12期 年利率18% 等额本息.
    schedule = monthly(1_000_000, "0.18", 12, EI)
    assert [i.total_fen for i in schedule.installments] == [91680] * 11 + [91681]
    assert schedule.installments[0].interest_fen == 15000
    assert schedule.total_interest_fen == 100161


def test_equal_principal_table():
    schedule = monthly(100000, "0.12", 3, EP)
    # 100000 / 3 = 33333.33 → 33333; interest 1000, 66667 × 1 % = 666.67 → 667, 33334 × 1 % = 333.34 → 333.
    assert lines(schedule) == [(33333, 1000, 0), (33333, 667, 0), (33334, 333, 0)]
    assert schedule.total_interest_fen == 2000


def test_interest_first_table():
    schedule = monthly(100000, "0.12", 3, IF)
    assert lines(schedule) == [(0, 1000, 0), (0, 1000, 0), (100000, 1000, 0)]
    assert schedule.apr == Decimal("0.120000")  # exactly 1 % a month


@pytest.mark.parametrize(
    ("day_count", "interest"),
    [(DayCount.ACT_360, 1500), (DayCount.ACT_365, 1479)],  # 100000 × 0.18 × 30 / 360 = 1500; /365 = 1479.45
)
def test_bullet_table(day_count, interest):
    schedule = build_schedule(LoanTerms(100000, Decimal("0.18"), BULLET, START, term_days=30, day_count=day_count))
    assert lines(schedule) == [(100000, interest, 0)]
    assert schedule.installments[0].due_date == date(2026, 2, 14)


def test_bullet_without_fees_discloses_the_nominal_rate():
    schedule = build_schedule(LoanTerms(100000, Decimal("0.18"), BULLET, START, term_days=30))
    assert schedule.apr == Decimal("0.180000")


def test_service_fee_is_a_separate_line_of_every_installment_on_the_original_principal():
    schedule = monthly(100000, "0.12", 3, EP, fee="0.003")
    assert [i.fee_fen for i in schedule.installments] == [300, 300, 300]
    assert schedule.total_fee_fen == 900
    assert schedule.total_cost_fen == 2000 + 900
    # A bullet loan pays the same monthly rate by the day: 100000 × 0.003 × 12 × 30 / 360 = 300.
    bullet = build_schedule(LoanTerms(100000, Decimal("0.18"), BULLET, START, term_days=30,
                                      monthly_fee_rate=Decimal("0.003")))
    assert bullet.installments[0].fee_fen == 300


def test_due_dates_fall_on_the_last_day_of_shorter_months():
    schedule = monthly(120000, "0.12", 4, EI, start=date(2028, 1, 31))
    assert [i.due_date for i in schedule.installments] == [
        date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30), date(2028, 5, 31)]
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


def test_apr_is_the_irr_of_the_cash_flows_with_fees():
    schedule = monthly(1_000_000, "0.18", 12, EI, fee="0.003")
    monthly_rate = Fraction(schedule.apr) / 12
    step = Fraction(1, 10**6) / 12

    def npv(rate: Fraction) -> Fraction:
        return sum(Fraction(i.total_fen) / (1 + rate) ** i.period for i in schedule.installments) - 1_000_000

    # The disclosed six-place APR brackets the exact root: NPV changes sign within half a unit of the last place.
    assert npv(monthly_rate - step / 2) > 0 > npv(monthly_rate + step / 2)
    assert schedule.apr == Decimal("0.242489")


def test_irr_edge_cases():
    assert periodic_irr(100, [100]) == 0
    assert abs(periodic_irr(100, [110]) - Decimal("0.1")) < Decimal("1e-30")
    with pytest.raises(ValueError):
        periodic_irr(100, [50])
    with pytest.raises(ValueError):
        periodic_irr(0, [50])


def test_zero_rate_loans_have_zero_interest_and_zero_apr():
    schedule = monthly(100000, "0", 3, EI)
    assert lines(schedule) == [(33333, 0, 0), (33333, 0, 0), (33334, 0, 0)]
    assert schedule.apr == 0


def test_daily_interest_rounds_half_up():
    assert daily_interest(100000, Decimal("0.18"), 1, DayCount.ACT_360) == 50
    assert daily_interest(12345, Decimal("0.18"), 7, DayCount.ACT_365) == 43  # 42.61 → 43
    assert daily_interest(100, Decimal("0.18"), 10, DayCount.ACT_360) == 1  # 0.5 → 1, half-up


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"principal_fen": 0}, "principal_fen"),
        ({"principal_fen": 100.0}, "principal_fen"),
        ({"annual_rate": Decimal("-0.01")}, "annual_rate"),
        ({"annual_rate": Decimal("1.5")}, "annual_rate"),
        ({"term_months": 0}, "term_months"),
        ({"term_months": 61}, "term_months"),
        ({"term_days": 30}, "term_days"),
        ({"method": BULLET, "term_months": None, "term_days": 366}, "term_days"),
        ({"method": BULLET}, "term_months"),
        ({"monthly_fee_rate": Decimal("NaN")}, "monthly_fee_rate"),
    ],
)
def test_invalid_terms_name_the_field(fields, field):
    base = {"principal_fen": 100000, "annual_rate": Decimal("0.12"), "method": EI, "start_date": START,
            "term_months": 3}
    with pytest.raises(InvalidLoanTerms) as raised:
        LoanTerms(**{**base, **fields})
    assert raised.value.field == field
    with pytest.raises(DomainError) as problem:
        terms_or_error(**{**base, **fields})
    assert problem.value.code == "LOAN_TERMS_INVALID" and field in problem.value.message_en


def test_quote_above_the_cost_cap_is_refused_with_the_apr_in_the_message():
    terms = LoanTerms(1_000_000, Decimal("0.18"), EI, START, term_months=12, monthly_fee_rate=Decimal("0.003"))
    with pytest.raises(DomainError) as refused:
        quote(terms)
    assert refused.value.code == "LOAN_APR_ABOVE_CAP"
    assert "24.2489%" in refused.value.message_en and "24.00%" in refused.value.message_zh
    assert quote(terms, cost_cap=Decimal("0.36")).apr == Decimal("0.242489")


def test_quote_json_shape():
    body = quote_json(monthly(100000, "0.12", 3, EI, fee="0.001"))
    assert set(body) == {"installments", "total_interest_fen", "total_fee_fen", "total_cost_fen", "apr"}
    assert body["installments"][0] == {"period": 1, "due_date": "2026-02-15", "principal_fen": 33002,
                                       "interest_fen": 1000, "fee_fen": 100, "total_fen": 34102}
    assert body["total_cost_fen"] == 2007 + 300 and isinstance(body["apr"], str)


# -- properties ------------------------------------------------------------------------------------

principals = st.integers(min_value=100_00, max_value=200_000_00)  # ¥100 .. ¥200,000
rates = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.36"), places=4)
fees = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.01"), places=4)
monthly_methods = st.sampled_from([EI, EP, IF])
months = st.integers(min_value=1, max_value=36)
starts = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))


@st.composite
def any_terms(draw, fee=None):
    method = draw(st.sampled_from(list(RepaymentMethod)))
    common = {"principal_fen": draw(principals), "annual_rate": draw(rates), "method": method,
              "start_date": draw(starts), "monthly_fee_rate": fee if fee is not None else draw(fees | st.just(0))}
    common["monthly_fee_rate"] = Decimal(common["monthly_fee_rate"])
    if method is BULLET:
        return LoanTerms(**common, term_days=draw(st.integers(1, 365)),
                         day_count=draw(st.sampled_from(list(DayCount))))
    return LoanTerms(**common, term_months=draw(months))


@settings(max_examples=300)
@given(any_terms())
def test_principal_sums_to_p_no_line_is_negative_and_the_balance_reaches_zero(terms):
    schedule = build_schedule(terms)
    assert schedule.total_principal_fen == terms.principal_fen
    assert all(i.principal_fen >= 0 and i.interest_fen >= 0 and i.fee_fen >= 0 for i in schedule.installments)
    balances = [terms.principal_fen] + [i.closing_balance_fen for i in schedule.installments]
    assert balances[-1] == 0
    steps = zip(balances[:-1], balances[1:], schedule.installments, strict=True)
    assert all(opening - closing == line.principal_fen for opening, closing, line in steps)
    assert [i.period for i in schedule.installments] == list(range(1, len(schedule.installments) + 1))
    dues = [i.due_date for i in schedule.installments]
    assert dues == sorted(dues) and dues[0] > terms.start_date


@settings(max_examples=200)
@given(any_terms(fee=0))
def test_without_fees_the_apr_is_the_nominal_rate(terms):
    schedule = build_schedule(terms)
    # Exact up to the fen rounding of each line: each of the n lines can move the IRR by at most half a fen
    # over the balances it is owed on, i.e. |Δ| ≤ periods-per-year / principal (and one unit of the 6th place).
    bound = Decimal(12 if terms.method.is_monthly else terms.day_count.basis) / terms.principal_fen
    if not terms.method.is_monthly:
        bound = bound / terms.term_days
    assert abs(schedule.apr - terms.annual_rate) <= bound + Decimal("0.000001")


@settings(max_examples=200)
@given(any_terms(fee=0), fees)
def test_a_fee_raises_the_apr(terms, fee):
    without = build_schedule(terms)
    with_fee = build_schedule(LoanTerms(**{**_fields(terms), "monthly_fee_rate": fee}))
    assert with_fee.total_fee_fen >= without.total_fee_fen
    if with_fee.total_fee_fen > 0:
        assert with_fee.apr > without.apr or with_fee.total_fee_fen * 10**6 < terms.principal_fen
    else:
        assert with_fee.apr == without.apr


@settings(max_examples=100)
@given(principals, rates, months)
def test_equal_installments_are_level_but_the_last(principal, rate, n):
    schedule = monthly(principal, str(rate), n, EI)
    payment = equal_installment_payment(principal, rate, n)
    assert all(i.total_fen == payment for i in schedule.installments[:-1])
    assert abs(schedule.installments[-1].total_fen - payment) <= n  # the last absorbs ≤ ½ fen per period


def _fields(terms: LoanTerms) -> dict:
    return {name: getattr(terms, name) for name in LoanTerms.__slots__}
