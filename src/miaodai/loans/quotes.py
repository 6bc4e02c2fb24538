"""Quotes: a schedule checked against the cost cap, in the one JSON shape the CLI and the API share.

Pure (no I/O). The cap (综合年化成本上限) defaults to 24 %: a quote whose APR — interest and every
fee, IRR method — is above the product's cap is refused, never shown as an offer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from miaodai.core.errors import DomainError
from miaodai.core.formatting import percent
from miaodai.loans.errors import LoanErrors
from miaodai.loans.schedule import InvalidLoanTerms, LoanTerms, Schedule, build_schedule

DEFAULT_COST_CAP = Decimal("0.24")


def terms_or_error(**fields: Any) -> LoanTerms:
    """Build :class:`LoanTerms`, turning a bad field into the bilingual LOAN_TERMS_INVALID problem."""
    try:
        return LoanTerms(**fields)
    except InvalidLoanTerms as invalid:
        raise DomainError(
            LoanErrors.TERMS_INVALID,
            params={"field": invalid.field, "_reason_zh": invalid.reason_zh, "_reason_en": invalid.reason_en},
        ) from None


def check_cost_cap(schedule: Schedule, cap: Decimal) -> None:
    if schedule.apr > cap:
        raise DomainError(
            LoanErrors.APR_ABOVE_CAP,
            params={
                "apr": str(schedule.apr), "cost_cap": str(cap),
                "apr_percent": percent(schedule.apr), "cap_percent": percent(cap),
            },
        )


def quote(terms: LoanTerms, *, cost_cap: Decimal = DEFAULT_COST_CAP) -> Schedule:
    """The schedule of ``terms``, refused when its APR is above ``cost_cap``."""
    schedule = build_schedule(terms)
    check_cost_cap(schedule, cost_cap)
    return schedule


def quote_json(schedule: Schedule) -> dict[str, Any]:
    """The quote as the CLI (``--json``) and ``POST /v1/quotes`` print it; money in fen, APR a decimal string."""
    return {
        "installments": [
            {
                "period": i.period,
                "due_date": i.due_date.isoformat(),
                "principal_fen": i.principal_fen,
                "interest_fen": i.interest_fen,
                "fee_fen": i.fee_fen,
                "total_fen": i.total_fen,
            }
            for i in schedule.installments
        ],
        "total_interest_fen": schedule.total_interest_fen,
        "total_fee_fen": schedule.total_fee_fen,
        "total_cost_fen": schedule.total_cost_fen,
        "apr": str(schedule.apr),
    }
