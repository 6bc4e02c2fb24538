"""Loan product rules (pure): what a product may be, and what a drawdown under it may ask for.

A product is refused when any of its offers could cost more than its cap: for every method and
term it allows, the quote at its highest rate and its service fee must stay within
``cost_cap`` (APR by the IRR method). Penalty interest is the contract rate × a multiplier within
PBoC Yinfa [2003] 251's +30 %…+50 % range; overdue charges are additionally capped at run time by
the cost cap (see the end-of-day batch), so the multiplier never lets an overdue borrower pay more
than the cap's annualized rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from miaodai.core.errors import DomainError
from miaodai.core.formatting import percent
from miaodai.core.money import Money
from miaodai.loans.errors import LoanErrors
from miaodai.loans.quotes import DEFAULT_COST_CAP
from miaodai.loans.schedule import (
    MAX_BULLET_DAYS,
    MAX_TERM_MONTHS,
    DayCount,
    LoanTerms,
    RepaymentMethod,
    build_schedule,
)

PENALTY_MULTIPLIER_RANGE = (Decimal("1.3"), Decimal("1.5"))
DEFAULT_PENALTY_MULTIPLIER = Decimal("1.5")
# The highest cap a product may carry; the default is 24 %.
MAX_COST_CAP = Decimal("0.36")


class Bucket(StrEnum):
    """The parts of what a borrower owes, in the names allocation orders use."""

    PENALTY = "penalty"
    FEE = "fee"
    INTEREST = "interest"
    PRINCIPAL = "principal"


DEFAULT_ALLOCATION = (Bucket.PENALTY, Bucket.FEE, Bucket.INTEREST, Bucket.PRINCIPAL)


@dataclass(frozen=True, slots=True)
class ProductSpec:
    code: str
    name_zh: str
    name_en: str
    min_amount_fen: int
    max_amount_fen: int
    methods: tuple[RepaymentMethod, ...]
    min_annual_rate: Decimal
    max_annual_rate: Decimal
    terms_months: tuple[int, ...] = ()
    bullet_max_days: int | None = None
    day_count: DayCount = DayCount.ACT_360
    monthly_fee_rate: Decimal = Decimal(0)
    penalty_rate_multiplier: Decimal = DEFAULT_PENALTY_MULTIPLIER
    late_fee_fen: int = 0
    grace_days: int = 3
    cost_cap: Decimal = DEFAULT_COST_CAP
    allocation_order: tuple[Bucket, ...] = field(default=DEFAULT_ALLOCATION)

    def penalty_rate(self, annual_rate: Decimal) -> Decimal:
        return annual_rate * self.penalty_rate_multiplier


def _invalid(name: str, reason_en: str, reason_zh: str) -> DomainError:
    return DomainError(
        LoanErrors.PRODUCT_INVALID, params={"field": name, "_reason_en": reason_en, "_reason_zh": reason_zh}
    )


def validate_product(spec: ProductSpec, *, today: date) -> None:
    """Refuse a product that is malformed or whose worst offer would exceed its cost cap."""
    if not spec.code or len(spec.code) > 32 or not spec.code.replace("-", "").replace("_", "").isalnum():
        raise _invalid("code", "must be 1–32 letters, digits, - or _", "须为 1–32 位字母、数字、- 或 _")
    if not 0 < spec.min_amount_fen <= spec.max_amount_fen:
        raise _invalid("min_amount_fen", "must be positive and not above max_amount_fen", "须大于零且不超过最高金额")
    if not spec.methods or len(set(spec.methods)) != len(spec.methods):
        raise _invalid("methods", "must list each offered repayment method once", "须列出各还款方式且不重复")
    monthly = [m for m in spec.methods if m.is_monthly]
    if monthly and not spec.terms_months:
        raise _invalid("terms_months", "monthly methods need at least one term", "按月还款方式须至少提供一个期限")
    if any(not 1 <= t <= MAX_TERM_MONTHS for t in spec.terms_months) or len(set(spec.terms_months)) != len(
        spec.terms_months
    ):
        raise _invalid(
            "terms_months", f"each term once, 1–{MAX_TERM_MONTHS} months", f"期限须为 1–{MAX_TERM_MONTHS} 个月且不重复"
        )
    has_bullet = RepaymentMethod.BULLET in spec.methods
    if has_bullet != (spec.bullet_max_days is not None):
        raise _invalid("bullet_max_days", "set exactly when bullet is offered", "仅在提供一次性还本付息时设置")
    if spec.bullet_max_days is not None and not 1 <= spec.bullet_max_days <= MAX_BULLET_DAYS:
        raise _invalid("bullet_max_days", f"must be 1–{MAX_BULLET_DAYS} days", f"须为 1–{MAX_BULLET_DAYS} 天")
    if not Decimal(0) <= spec.min_annual_rate <= spec.max_annual_rate < 1:
        raise _invalid("min_annual_rate", "0 ≤ min ≤ max < 1", "须满足 0 ≤ 最低利率 ≤ 最高利率 < 1")
    if not Decimal(0) <= spec.monthly_fee_rate < Decimal("0.1"):
        raise _invalid("monthly_fee_rate", "must be at least 0 and below 0.1", "须不小于 0 且小于 0.1")
    low, high = PENALTY_MULTIPLIER_RANGE
    if not low <= spec.penalty_rate_multiplier <= high:
        raise _invalid(
            "penalty_rate_multiplier",
            f"must be between {low} and {high} (Yinfa [2003] 251)",
            f"须在 {low} 至 {high} 之间（银发〔2003〕251号）",
        )
    if spec.late_fee_fen < 0 or not 0 <= spec.grace_days <= 30:
        raise _invalid("grace_days", "late fee ≥ 0 and 0–30 grace days", "滞纳金不得为负，宽限期须为 0–30 天")
    if not Decimal(0) < spec.cost_cap <= MAX_COST_CAP:
        raise _invalid("cost_cap", f"must be above 0 and at most {MAX_COST_CAP}", f"须大于 0 且不超过 {MAX_COST_CAP}")
    if sorted(spec.allocation_order) != sorted(DEFAULT_ALLOCATION):
        raise _invalid(
            "allocation_order",
            "must order penalty, fee, interest and principal once each",
            "须包含罚息、服务费、利息、本金各一次",
        )
    for method, term_months, term_days in _offers(spec):
        worst = build_schedule(
            LoanTerms(
                spec.max_amount_fen,
                spec.max_annual_rate,
                method,
                today,
                term_months=term_months,
                term_days=term_days,
                monthly_fee_rate=spec.monthly_fee_rate,
                day_count=spec.day_count,
            )
        )
        if worst.apr > spec.cost_cap:
            raise DomainError(
                LoanErrors.PRODUCT_ABOVE_CAP,
                params={
                    "method": method.value,
                    "_method_zh": method.name_zh,
                    "term": f"{term_months} months" if term_months else f"{term_days} days",
                    "apr": str(worst.apr),
                    "apr_percent": percent(worst.apr),
                    "cap_percent": percent(spec.cost_cap),
                },
            )


def _offers(spec: ProductSpec) -> list[tuple[RepaymentMethod, int | None, int | None]]:
    offers: list[tuple[RepaymentMethod, int | None, int | None]] = []
    for method in spec.methods:
        if method.is_monthly:
            offers += [(method, t, None) for t in spec.terms_months]
        elif spec.bullet_max_days:
            # A fee by the day makes the shortest bullet the costliest per year: check 1 day and the longest.
            offers += [(method, None, 1), (method, None, spec.bullet_max_days)]
    return offers


def check_offer(
    spec: ProductSpec,
    *,
    principal_fen: int,
    method: RepaymentMethod,
    annual_rate: Decimal,
    term_months: int | None,
    term_days: int | None,
) -> None:
    """Refuse a drawdown or quote the product does not offer (amount, method, term, rate)."""
    if not spec.min_amount_fen <= principal_fen <= spec.max_amount_fen:
        raise DomainError(
            LoanErrors.AMOUNT_OUT_OF_RANGE,
            params={
                "min_yuan": Money(spec.min_amount_fen).to_yuan(),
                "max_yuan": Money(spec.max_amount_fen).to_yuan(),
                "min_amount_fen": spec.min_amount_fen,
                "max_amount_fen": spec.max_amount_fen,
            },
        )
    if method not in spec.methods:
        raise DomainError(
            LoanErrors.METHOD_NOT_OFFERED,
            params={
                "method": method.value,
                "_method_zh": method.name_zh,
                "offered": ", ".join(m.value for m in spec.methods),
            },
        )
    if method.is_monthly and term_months not in spec.terms_months:
        raise DomainError(
            LoanErrors.TERM_NOT_OFFERED, params={"offered": ", ".join(f"{t}" for t in spec.terms_months) + " (months)"}
        )
    if not method.is_monthly and not (term_days and 1 <= term_days <= (spec.bullet_max_days or 0)):
        raise DomainError(LoanErrors.TERM_NOT_OFFERED, params={"offered": f"1–{spec.bullet_max_days} (days)"})
    if not spec.min_annual_rate <= annual_rate <= spec.max_annual_rate:
        raise DomainError(
            LoanErrors.RATE_OUT_OF_RANGE,
            params={"min_rate": str(spec.min_annual_rate), "max_rate": str(spec.max_annual_rate)},
        )
