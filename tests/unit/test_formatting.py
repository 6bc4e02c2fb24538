"""The one formatting module: yuan amounts and percentages with exact known answers, a disclosed rate
never shown lower than it is, and every face (contract, pages, CLI, error messages) using it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from miaodai.contracts import formatting as contract_formatting
from miaodai.core import formatting
from miaodai.core.formatting import percent, percent_or_dash, yuan, yuan_plain, yuan_symbol
from miaodai.loans import quotes
from miaodai.web import i18n


@pytest.mark.parametrize(("rate", "shown"), [
    ("0.27625", "27.625%"),  # the drawing page showed 27.62% (half-even at two places) where the contract said 27.625%
    ("0.276250", "27.625%"),  # as the database gives it back (six places)
    ("0.195618", "19.5618%"),
    ("0.200952", "20.0952%"),
    ("0.18", "18.00%"),
    ("0.24", "24.00%"),
    ("0.0015", "0.15%"),
    ("0.00125", "0.125%"),
    ("0", "0.00%"),
    ("0.000001", "0.0001%"),
])
def test_a_rate_is_shown_with_every_digit_the_contract_has(rate, shown):
    assert percent(Decimal(rate)) == shown


@pytest.mark.parametrize(("rate", "shown"), [
    ("0.2762501", "27.6251%"),  # beyond four places: up, never down
    ("0.27624999", "27.625%"),
    ("0.1999999999", "20.00%"),
    ("0.0000001", "0.0001%"),
])
def test_a_rate_with_more_digits_than_shown_is_rounded_up(rate, shown):
    assert percent(Decimal(rate)) == shown
    assert Decimal(shown.rstrip("%")) / 100 >= Decimal(rate)


def test_floats_and_non_finite_rates_are_refused():
    with pytest.raises(TypeError):
        percent(0.27625)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        percent(Decimal("NaN"))
    with pytest.raises(TypeError):
        percent_or_dash(0.27625)  # type: ignore[arg-type]
    assert percent_or_dash("0.27625") == "27.625%" and percent_or_dash(None) == "—"


@pytest.mark.parametrize(("fen", "plain", "grouped", "symbol"), [
    (123456789, "1234567.89", "1,234,567.89", "¥1,234,567.89"),
    (5, "0.05", "0.05", "¥0.05"),
    (-150, "-1.50", "-1.50", "-¥1.50"),
    (0, "0.00", "0.00", "¥0.00"),
    (1_000_000, "10000.00", "10,000.00", "¥10,000.00"),
])
def test_yuan_amounts(fen, plain, grouped, symbol):
    assert (yuan_plain(fen), yuan(fen), yuan_symbol(fen)) == (plain, grouped, symbol)


def test_money_is_integer_fen():
    for bad in (12.5, Decimal("12"), True):
        with pytest.raises(TypeError):
            yuan_symbol(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            yuan_plain(bad)  # type: ignore[arg-type]
    assert yuan_symbol(None) == "—"


def test_every_face_formats_with_the_one_module():
    assert contract_formatting.percent is formatting.percent and contract_formatting.yuan is formatting.yuan
    assert i18n.yuan is formatting.yuan_symbol and i18n.yuan_plain is formatting.yuan_plain
    assert i18n.percent is formatting.percent_or_dash
    assert quotes.percent is formatting.percent  # the cost-cap messages
