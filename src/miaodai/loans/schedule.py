"""Repayment schedules and the annualized-rate disclosure. Pure: no I/O, no clock, no database.

The formulas (docs/architecture.md §3, and the loan-engine issue) — every amount is integer fen and every
rounding goes through :func:`miaodai.core.money.round_fen` (half-up):

* Monthly methods: period interest = opening balance × annual rate / 12, rounded to the fen.
  - ``equal_installment`` (等额本息): payment = P·r(1+r)^n / ((1+r)^n − 1), r = annual rate / 12,
    rounded; principal of a period = payment − its interest; the last period takes the balance.
  - ``equal_principal`` (等额本金): principal of a period = P / n rounded; the last takes the balance.
  - ``interest_first`` (先息后本): interest every period, all principal with the last.
* ``bullet`` (一次性还本付息): one payment after ``term_days`` (≤ 365):
  interest = P × annual rate / basis × days, basis 360 (ACT/360) or 365 (ACT/365).
* Service fee (服务费): original principal × monthly fee rate, a separate line of every monthly
  installment; for a bullet loan the same monthly rate runs by the day (× 12 / basis × days).
  Nothing is ever deducted from the principal at payout: the borrower receives P in full, which
  is why the schedule has no "net disbursed" figure to get wrong (no 砍头息 by construction).
* Due dates: the same day of each following month counted from the start date, on the month's last
  day when the month is shorter (31 Jan → 28/29 Feb → 31 Mar).
* APR (年化利率, PBoC Announcement [2021] No. 3): the IRR of the borrower's cash flows (+P at the
  start, −each installment total including fees) per period × periods per year — 12 for monthly
  methods, basis / days for a bullet. Quantized to :data:`APR_PLACES`.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum

from miaodai.core.money import round_fen

MONTHS_PER_YEAR = 12
MAX_BULLET_DAYS = 365
MAX_TERM_MONTHS = 60
# Six places are the disclosure precision the issue asks for ("at least 6"): 0.195618 = 19.5618 %.
APR_PLACES = Decimal("0.000001")
# Enough digits that (1+r)^n and the IRR iteration are exact far beyond the fen.
_PRECISION = 50


class RepaymentMethod(StrEnum):
    EQUAL_INSTALLMENT = "equal_installment"  # 等额本息
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金
    INTEREST_FIRST = "interest_first"  # 先息后本
    BULLET = "bullet"  # 一次性还本付息

    @property
    def is_monthly(self) -> bool:
        return self is not RepaymentMethod.BULLET

    @property
    def name_zh(self) -> str:
        return _METHOD_NAMES_ZH[self]


_METHOD_NAMES_ZH = {
    RepaymentMethod.EQUAL_INSTALLMENT: "等额本息",
    RepaymentMethod.EQUAL_PRINCIPAL: "等额本金",
    RepaymentMethod.INTEREST_FIRST: "先息后本",
    RepaymentMethod.BULLET: "一次性还本付息",
}


class DayCount(StrEnum):
    ACT_360 = "ACT/360"
    ACT_365 = "ACT/365"

    @property
    def basis(self) -> int:
        return 360 if self is DayCount.ACT_360 else 365


class InvalidLoanTerms(ValueError):
    """Terms no schedule can be built from; ``field`` names the offending input (reasons in zh-CN and English)."""

    def __init__(self, field: str, reason_en: str, reason_zh: str) -> None:
        super().__init__(f"{field}: {reason_en}")
        self.field = field
        self.reason_en = reason_en
        self.reason_zh = reason_zh


@dataclass(frozen=True, slots=True)
class LoanTerms:
    """What a schedule is computed from. Monthly methods take ``term_months``, a bullet ``term_days``."""

    principal_fen: int
    annual_rate: Decimal
    method: RepaymentMethod
    start_date: date
    term_months: int | None = None
    term_days: int | None = None
    monthly_fee_rate: Decimal = Decimal(0)
    day_count: DayCount = DayCount.ACT_360

    def __post_init__(self) -> None:
        _check_terms(self)

    @property
    def periods(self) -> int:
        return self.term_months if self.method.is_monthly else 1  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Installment:
    period: int
    due_date: date
    principal_fen: int
    interest_fen: int
    fee_fen: int
    # Principal still owed after this installment is paid (for statements and prepayment).
    closing_balance_fen: int

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.interest_fen + self.fee_fen


@dataclass(frozen=True, slots=True)
class Schedule:
    terms: LoanTerms
    installments: tuple[Installment, ...]
    apr: Decimal

    @property
    def total_principal_fen(self) -> int:
        return sum(i.principal_fen for i in self.installments)

    @property
    def total_interest_fen(self) -> int:
        return sum(i.interest_fen for i in self.installments)

    @property
    def total_fee_fen(self) -> int:
        return sum(i.fee_fen for i in self.installments)

    @property
    def total_cost_fen(self) -> int:
        """What borrowing costs on top of the principal: all interest and all fees."""
        return self.total_interest_fen + self.total_fee_fen

    @property
    def total_repayment_fen(self) -> int:
        return self.terms.principal_fen + self.total_cost_fen


def _check_terms(terms: LoanTerms) -> None:
    if not isinstance(terms.principal_fen, int) or isinstance(terms.principal_fen, bool):
        raise InvalidLoanTerms("principal_fen", "must be an integer number of fen", "须为整数（分）")
    if terms.principal_fen <= 0:
        raise InvalidLoanTerms("principal_fen", "must be positive", "须大于零")
    for name in ("annual_rate", "monthly_fee_rate"):
        value = getattr(terms, name)
        if not isinstance(value, Decimal):
            raise InvalidLoanTerms(name, "must be a decimal number", "须为小数")
        if not value.is_finite() or value < 0 or value >= 1:
            raise InvalidLoanTerms(name, "must be at least 0 and below 1", "须不小于 0 且小于 1")
    if terms.method.is_monthly:
        if terms.term_days is not None:
            raise InvalidLoanTerms(
                "term_days", f"{terms.method.value} is repaid monthly; give term_months", "按月还款方式请填写期数（月）"
            )
        if terms.term_months is None or not 1 <= terms.term_months <= MAX_TERM_MONTHS:
            raise InvalidLoanTerms(
                "term_months", f"must be between 1 and {MAX_TERM_MONTHS}", f"须在 1 至 {MAX_TERM_MONTHS} 个月之间"
            )
    else:
        if terms.term_months is not None:
            raise InvalidLoanTerms(
                "term_months", "a bullet loan runs in days; give term_days", "一次性还本付息按天计，请填写天数"
            )
        if terms.term_days is None or not 1 <= terms.term_days <= MAX_BULLET_DAYS:
            raise InvalidLoanTerms(
                "term_days", f"must be between 1 and {MAX_BULLET_DAYS}", f"须在 1 至 {MAX_BULLET_DAYS} 天之间"
            )


def add_months(start: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day when it is shorter."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_dates(start: date, periods: int) -> list[date]:
    return [add_months(start, k) for k in range(1, periods + 1)]


def monthly_interest(balance_fen: int, annual_rate: Decimal) -> int:
    """One month's interest on a balance: balance × annual rate / 12, half-up to the fen."""
    return round_fen(Decimal(balance_fen) * annual_rate / MONTHS_PER_YEAR)


def daily_interest(balance_fen: int, annual_rate: Decimal, days: int, day_count: DayCount) -> int:
    """Interest for ``days`` days by daily accrual: balance × annual rate / basis × days."""
    if days < 0:
        raise ValueError("days must not be negative")
    with localcontext(prec=_PRECISION):
        return round_fen(Decimal(balance_fen) * annual_rate * days / day_count.basis)


def equal_installment_payment(principal_fen: int, annual_rate: Decimal, periods: int) -> int:
    """P·r(1+r)^n / ((1+r)^n − 1), half-up to the fen; P / n when the rate is zero."""
    with localcontext(prec=_PRECISION):
        r = annual_rate / MONTHS_PER_YEAR
        if r == 0:
            return round_fen(Decimal(principal_fen) / periods)
        growth = (1 + r) ** periods
        return round_fen(Decimal(principal_fen) * r * growth / (growth - 1))


def monthly_fee(principal_fen: int, monthly_fee_rate: Decimal) -> int:
    return round_fen(Decimal(principal_fen) * monthly_fee_rate)


def build_schedule(terms: LoanTerms) -> Schedule:
    """The full schedule for ``terms``, with its APR."""
    installments = _bullet(terms) if terms.method is RepaymentMethod.BULLET else _monthly(terms)
    return Schedule(terms=terms, installments=installments, apr=apr_of(terms, installments))


def _monthly(terms: LoanTerms) -> tuple[Installment, ...]:
    n = terms.periods
    principal = terms.principal_fen
    fee = monthly_fee(principal, terms.monthly_fee_rate)
    payment = (
        equal_installment_payment(principal, terms.annual_rate, n)
        if terms.method is RepaymentMethod.EQUAL_INSTALLMENT
        else 0
    )
    with localcontext(prec=_PRECISION):
        level_principal = round_fen(Decimal(principal) / n)
    balance = principal
    rows: list[Installment] = []
    for period, due in enumerate(due_dates(terms.start_date, n), start=1):
        interest = monthly_interest(balance, terms.annual_rate)
        if period == n:
            paid = balance  # the last installment takes what remains, so principal sums to P exactly
        elif terms.method is RepaymentMethod.EQUAL_INSTALLMENT:
            paid = payment - interest
        elif terms.method is RepaymentMethod.EQUAL_PRINCIPAL:
            paid = level_principal
        else:  # interest first: no principal until the end
            paid = 0
        # Rounding can only matter for toy amounts (a few fen over many months); never overpay, never go negative.
        paid = max(0, min(paid, balance))
        balance -= paid
        rows.append(Installment(period, due, paid, interest, fee, balance))
    return tuple(rows)


def _bullet(terms: LoanTerms) -> tuple[Installment, ...]:
    days = terms.term_days or 0
    principal = terms.principal_fen
    interest = daily_interest(principal, terms.annual_rate, days, terms.day_count)
    with localcontext(prec=_PRECISION):
        fee = round_fen(
            Decimal(principal) * terms.monthly_fee_rate * MONTHS_PER_YEAR * days / terms.day_count.basis
        )
    due = terms.start_date + timedelta(days=days)
    return (Installment(1, due, principal, interest, fee, 0),)


def periods_per_year(terms: LoanTerms) -> Decimal:
    if terms.method.is_monthly:
        return Decimal(MONTHS_PER_YEAR)
    with localcontext(prec=_PRECISION):
        return Decimal(terms.day_count.basis) / Decimal(terms.term_days or 1)


def apr_of(terms: LoanTerms, installments: Sequence[Installment]) -> Decimal:
    """The disclosed annualized rate: IRR per period × periods per year, at :data:`APR_PLACES`."""
    payments = [i.total_fen for i in installments]
    with localcontext(prec=_PRECISION):
        rate = periodic_irr(terms.principal_fen, payments) * periods_per_year(terms)
        return rate.quantize(APR_PLACES, rounding=ROUND_HALF_UP)


def periodic_irr(received_fen: int, payments_fen: Sequence[int]) -> Decimal:
    """The rate i per period at which Σ payment_k / (1+i)^k equals the amount received.

    Payments are one per period, k = 1..n. Newton's method from a bracketing start, with
    bisection as the fallback, in 50-digit Decimal arithmetic: the result is exact far beyond
    the six places disclosed. The present value falls strictly as i rises (all payments are
    non-negative), so the root is unique.
    """
    if received_fen <= 0 or not payments_fen or any(p < 0 for p in payments_fen):
        raise ValueError("IRR needs a positive amount received and non-negative payments")
    total = sum(payments_fen)
    if total < received_fen:
        raise ValueError("payments do not repay the amount received; the IRR would be negative")
    if total == received_fen:
        return Decimal(0)
    with localcontext(prec=_PRECISION):
        target = Decimal(received_fen)
        flows = [Decimal(p) for p in payments_fen]

        def npv_and_slope(i: Decimal) -> tuple[Decimal, Decimal]:
            value, slope, discount = -target, Decimal(0), Decimal(1)
            step = 1 / (1 + i)
            for k, flow in enumerate(flows, start=1):
                discount *= step
                value += flow * discount
                slope -= k * flow * discount * step
            return value, slope

        # Bracket: npv(0) > 0; grow the upper bound until npv < 0.
        low, high = Decimal(0), Decimal(1)
        while npv_and_slope(high)[0] > 0:
            low, high = high, high * 2
        guess = (total - target) / target / len(flows)  # simple-interest estimate, inside the bracket
        if not low < guess < high:
            guess = (low + high) / 2
        tolerance = Decimal("1e-30")
        for _ in range(200):
            value, slope = npv_and_slope(guess)
            if value > 0:
                low = guess
            else:
                high = guess
            candidate = guess - value / slope if slope != 0 else (low + high) / 2
            if not low < candidate < high:
                candidate = (low + high) / 2  # Newton left the bracket: bisect instead
            if abs(candidate - guess) < tolerance:
                return candidate
            guess = candidate
        return guess
