"""Risk-based limits and prices (pure): what an approved grade gets.

* Rate: the grade's position within the product's rate range, ``min + position × (max − min)``,
  rounded half-up to 0.01 % — a product's whole range is already proven to stay under its
  annualized-cost cap (``validate_product``), so no grade can price above the cap.
* Limit: the smallest of (1) the grade's multiple of declared monthly income, (2) what the
  debt-to-income cap leaves room for — the monthly payment of a ``line_term_months`` equal-installment
  loan of the whole limit must fit under ``dti_cap × income − existing monthly repayments`` —, (3) the
  product's maximum, (4) the RMB 200,000 internet-consumer-credit cap minus what the borrower already
  has; and (5) for a thin file — no bureau history and no loan paid off with us, so the score rests
  on the application alone — the ruleset's optional ``thin_file_max_fen``, a starter line that
  re-scoring can raise once the borrower has repaid a loan with us. Rounded down to
  ``limit_step_fen``. A limit under the product's minimum means no line.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from miaodai.core.money import ROUNDING
from miaodai.credit.rules import Ruleset

RATE_STEP = Decimal("0.0001")


@dataclass(frozen=True)
class Offer:
    limit_fen: int
    annual_rate: Decimal
    binding: str  # which bound set the limit: income_multiple | dti | product_max | credit_cap | thin_file


def grade_rate(position: float, min_rate: Decimal, max_rate: Decimal) -> Decimal:
    rate = min_rate + (max_rate - min_rate) * Decimal(str(position))
    return min(max_rate, max(min_rate, rate.quantize(RATE_STEP, rounding=ROUNDING)))


def annuity_factor(annual_rate: Decimal, months: int) -> Decimal:
    """Monthly payment per yuan borrowed, equal installments: r / (1 − (1 + r)^−n), r = annual / 12."""
    r = annual_rate / 12
    if r == 0:
        return Decimal(1) / months
    return r / (1 - (1 + r) ** -months)


def offer(
    ruleset: Ruleset, *, grade: str, monthly_income_fen: int, existing_monthly_fen: int, existing_credit_fen: int,
    product_max_fen: int, min_rate: Decimal, max_rate: Decimal, thin_file: bool = False,
) -> Offer:
    policy = ruleset.grades[grade]
    limits = ruleset.limits
    rate = grade_rate(policy.rate_position, min_rate, max_rate)
    headroom = Decimal(str(limits["dti_cap"])) * monthly_income_fen - existing_monthly_fen
    dti_limit = int(max(Decimal(0), headroom) / annuity_factor(rate, int(limits["line_term_months"])))
    bounds = {
        "income_multiple": policy.income_multiple * monthly_income_fen,
        "dti": dti_limit,
        "product_max": product_max_fen,
        "credit_cap": max(0, int(limits["credit_cap_fen"]) - existing_credit_fen),
    }
    if thin_file and "thin_file_max_fen" in limits:
        bounds["thin_file"] = int(limits["thin_file_max_fen"])
    binding = min(bounds, key=bounds.__getitem__)
    step = int(limits["limit_step_fen"])
    limit = int((Decimal(bounds[binding]) / step).to_integral_value(rounding=ROUND_DOWN)) * step
    return Offer(limit_fen=limit, annual_rate=rate, binding=binding)
