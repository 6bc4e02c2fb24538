"""Money in fen: no floats, exact sums, one half-up rounding policy."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from miaodai.core.money import Money, parse_rate, round_fen

fen = st.integers(min_value=-10**12, max_value=10**12)


def test_money_refuses_floats_and_bools():
    with pytest.raises(TypeError):
        Money(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True)
    with pytest.raises(TypeError):
        Money(100) * 1.1  # type: ignore[operator]


def test_rounding_is_half_up_to_the_fen():
    assert round_fen(Decimal("0.5")) == 1
    assert round_fen(Decimal("1.49")) == 1
    assert round_fen(Decimal("2.5")) == 3  # not banker's rounding
    assert round_fen(Decimal("-2.5")) == -3  # half away from zero
    with pytest.raises(TypeError):
        round_fen(2.5)  # type: ignore[arg-type]


def test_one_month_interest_on_ten_thousand_yuan_at_18_percent():
    principal = Money.from_yuan("10000.00")
    assert principal.apply_rate(Decimal("0.18") / 12) == Money(15000)


def test_yuan_strings_parse_at_the_edge():
    assert Money.from_yuan("1234.56") == Money(123456)
    assert Money.from_yuan("0.1") == Money(10)
    assert Money(123456).to_yuan() == "1234.56"
    assert Money(-5).to_yuan() == "-0.05"
    assert str(Money(100000)) == "¥1000.00"
    for bad in ("1.234", "abc", "NaN", "Infinity", ""):
        with pytest.raises(ValueError):
            Money.from_yuan(bad)


def test_rates_are_decimal_never_float():
    assert parse_rate("0.2399") == Decimal("0.2399")
    with pytest.raises(TypeError):
        parse_rate(0.24)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_rate("-0.1")


@given(fen, fen)
def test_addition_and_subtraction_are_exact(a, b):
    assert (Money(a) + Money(b)).fen == a + b
    assert (Money(a) + Money(b) - Money(b)) == Money(a)


@given(fen)
def test_yuan_round_trip(a):
    assert Money.from_yuan(Money(a).to_yuan()) == Money(a)


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=360))
def test_allocation_sums_exactly_and_differs_by_at_most_a_fen(total, parts):
    shares = Money(total).allocate(parts)
    assert sum(s.fen for s in shares) == total
    assert max(s.fen for s in shares) - min(s.fen for s in shares) <= 1


@given(st.integers(min_value=0, max_value=10**10), st.decimals(min_value=0, max_value=1, places=6))
def test_applying_a_rate_is_within_half_a_fen_of_exact(amount, rate):
    exact = Decimal(amount) * rate
    assert abs(Decimal(Money(amount).apply_rate(rate).fen) - exact) <= Decimal("0.5")
