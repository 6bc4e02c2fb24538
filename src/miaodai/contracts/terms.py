"""What a loan contract states: the drawdown's exact terms, frozen. Pure, and independent of the loan engine.

The loan service fills :class:`ContractTerms` from its schedule and product (the contract package imports
no loan code, so loans can depend on contracts without a cycle). The checks below refuse terms that would
print a self-contradictory contract: totals that are not the sum of the schedule, an APR above the stated
cap, a term in both months and days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# Repayment method codes (as in miaodai.loans.schedule.RepaymentMethod) and how the contract names them.
REPAYMENT_METHOD_NAMES: dict[str, tuple[str, str]] = {
    "equal_installment": ("等额本息", "equal monthly installments of principal and interest"),
    "equal_principal": ("等额本金", "equal monthly principal plus interest on the balance"),
    "interest_first": ("先息后本", "monthly interest, principal repaid with the last installment"),
    "bullet": ("一次性还本付息", "principal, interest and fees repaid in one payment at maturity"),
}
DAY_COUNT_BASIS = {"ACT/360": 360, "ACT/365": 365}
# Contract numbers are issued by the system; the template also prints them in the page footer's CSS.
CONTRACT_NO_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


class InvalidContractTerms(ValueError):
    """Terms a contract cannot be drawn up from (a bug in the caller, not a borrower's mistake)."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidContractTerms(message)


def _is_fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class ContractInstallment:
    period: int
    due_date: date
    principal_fen: int
    interest_fen: int
    fee_fen: int
    total_fen: int

    def __post_init__(self) -> None:
        amounts = (self.principal_fen, self.interest_fen, self.fee_fen, self.total_fen)
        _require(all(_is_fen(a) and a >= 0 for a in amounts), f"installment {self.period}: amounts are fen >= 0")
        _require(
            self.total_fen == self.principal_fen + self.interest_fen + self.fee_fen,
            f"installment {self.period}: total_fen is not principal + interest + fee",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractTerms:
    contract_no: str
    lender_name_zh: str
    lender_name_en: str
    # Printed as given: the caller decides whether the contract carries the full or the masked name.
    borrower_name: str
    borrower_id_number_masked: str
    borrower_phone_masked: str
    principal_fen: int
    # Monthly methods run ``term_months``; a bullet loan ``term_days``. Exactly one is set.
    term_months: int | None = None
    term_days: int | None = None
    repayment_method: str
    annual_rate: Decimal  # nominal rate the interest is computed at
    apr: Decimal  # annualized rate by the IRR method, all interest and fees included (the disclosed rate)
    monthly_fee_rate: Decimal
    total_interest_fen: int
    total_fee_fen: int
    total_cost_fen: int
    penalty_annual_rate: Decimal
    late_fee_fen: int  # once per overdue installment
    grace_days: int
    cost_cap_annual_rate: Decimal
    day_count: str
    start_date: date
    installments: tuple[ContractInstallment, ...]
    signed_on: date
    # Where the principal is paid, masked (e.g. "招商银行 ****1234"); None when not chosen yet.
    payout_account_masked: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "installments", tuple(self.installments))
        _require(isinstance(self.contract_no, str) and bool(CONTRACT_NO_PATTERN.fullmatch(self.contract_no)),
                 "contract_no must be 1-64 letters, digits or '-'")
        for name in ("contract_no", "lender_name_zh", "lender_name_en", "borrower_name"):
            _require(isinstance(getattr(self, name), str) and bool(getattr(self, name).strip()), f"{name} is empty")
        _require(self.repayment_method in REPAYMENT_METHOD_NAMES, f"unknown repayment method {self.repayment_method!r}")
        _require(self.day_count in DAY_COUNT_BASIS, f"unknown day count {self.day_count!r}")
        for name in ("annual_rate", "apr", "monthly_fee_rate", "penalty_annual_rate", "cost_cap_annual_rate"):
            value = getattr(self, name)
            _require(isinstance(value, Decimal) and value.is_finite() and value >= 0, f"{name} is not a Decimal >= 0")
        for name in ("principal_fen", "total_interest_fen", "total_fee_fen", "total_cost_fen", "late_fee_fen"):
            _require(_is_fen(getattr(self, name)) and getattr(self, name) >= 0, f"{name} is not integer fen >= 0")
        _require(self.principal_fen > 0, "principal_fen must be positive")
        _require(_is_fen(self.grace_days) and self.grace_days >= 0, "grace_days must be a whole number >= 0")
        self._check_term()
        self._check_schedule()
        _require(self.apr <= self.cost_cap_annual_rate, "apr is above the cost cap the contract states")

    def _check_term(self) -> None:
        if self.repayment_method == "bullet":
            _require(self.term_months is None and _is_fen(self.term_days), "a bullet loan has term_days only")
            _require(len(self.installments) == 1, "a bullet loan has one installment")
        else:
            _require(self.term_days is None and _is_fen(self.term_months), "a monthly method has term_months only")
            _require(len(self.installments) == self.term_months, "one installment per month of the term")

    def _check_schedule(self) -> None:
        rows = self.installments
        _require(bool(rows), "the schedule is empty")
        _require([i.period for i in rows] == list(range(1, len(rows) + 1)), "periods must run 1, 2, … in order")
        _require(all(a.due_date < b.due_date for a, b in zip(rows, rows[1:], strict=False)), "due dates must rise")
        _require(rows[0].due_date > self.start_date, "the first due date must be after the start date")
        _require(sum(i.principal_fen for i in rows) == self.principal_fen, "installment principal != principal_fen")
        _require(sum(i.interest_fen for i in rows) == self.total_interest_fen, "installment interest != total")
        _require(sum(i.fee_fen for i in rows) == self.total_fee_fen, "installment fees != total_fee_fen")
        _require(
            self.total_cost_fen == self.total_interest_fen + self.total_fee_fen, "total_cost_fen != interest + fees"
        )

    @property
    def total_repayment_fen(self) -> int:
        return self.principal_fen + self.total_cost_fen

    @property
    def maturity_date(self) -> date:
        return self.installments[-1].due_date

    @property
    def day_count_basis(self) -> int:
        return DAY_COUNT_BASIS[self.day_count]

    @property
    def is_monthly(self) -> bool:
        return self.repayment_method != "bullet"
