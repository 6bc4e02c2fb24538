"""Borrowers behind on their repayments (逾期): what the credit policy does with their line while they are
overdue, and where a borrower stands — pure values, no database (the query is ``line_service.standing``).

The policy is the ``delinquency`` section of the versioned credit ruleset (``credit/data/default_ruleset.json``,
parsed by ``credit.rules.Ruleset``), activated by two staff like the rest of it (docs/credit.md)::

    "delinquency": {"line_while_overdue": "freeze", "overdue_from": "after_grace"}

* ``line_while_overdue`` — ``freeze``: while the borrower is overdue nothing may be drawn on their line and its
  available amount is not offered; it comes back by itself once they are current again. (The only value this
  version knows: another treatment of the line is a reviewed code change, like a new rule.)
* ``overdue_from`` — when an unpaid installment makes the borrower overdue: ``after_grace`` (the default: past
  its due date plus its loan's grace days, when penalty interest starts) or ``after_due_date`` (stricter: from
  the first day after a missed due date; the grace days then only spare the penalty). Never later than grace.

A ruleset without the section (every document written before it existed) gets these defaults. The types live in
loans, which owns the installments the standing is read from; credit's ruleset holds a :class:`DelinquencyPolicy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

SECTION = "delinquency"


class LineWhileOverdue(StrEnum):
    FREEZE = "freeze"


class OverdueFrom(StrEnum):
    AFTER_GRACE = "after_grace"
    AFTER_DUE_DATE = "after_due_date"


@dataclass(frozen=True)
class DelinquencyPolicy:
    line_while_overdue: LineWhileOverdue = LineWhileOverdue.FREEZE
    overdue_from: OverdueFrom = OverdueFrom.AFTER_GRACE

    @classmethod
    def from_document(cls, section: Any) -> DelinquencyPolicy:
        """The section as a ruleset document gives it (absent: the defaults). Raises ValueError naming what is wrong."""
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise ValueError(f"{SECTION} must be an object")
        unknown = set(section) - {"line_while_overdue", "overdue_from"}
        if unknown:
            raise ValueError(f"{SECTION} has unknown settings: {', '.join(sorted(unknown))}")
        try:
            return cls(
                line_while_overdue=LineWhileOverdue(section.get("line_while_overdue", LineWhileOverdue.FREEZE)),
                overdue_from=OverdueFrom(section.get("overdue_from", OverdueFrom.AFTER_GRACE)))
        except ValueError:
            raise ValueError(
                f"{SECTION}.line_while_overdue must be one of {', '.join(LineWhileOverdue)}, "
                f"{SECTION}.overdue_from one of {', '.join(OverdueFrom)}") from None


@dataclass(frozen=True)
class OverdueLoan:
    """A loan with an installment unpaid past its due date: how late, and what is owed on it now."""

    loan_id: int
    days_past_due: int  # since its oldest unpaid due date (1 = due yesterday)
    grace_days: int
    owed_now_fen: int  # principal + interest + fee + penalty of its installments due by today, unpaid

    @property
    def days_past_grace(self) -> int:
        return self.days_past_due - self.grace_days


@dataclass(frozen=True)
class Standing:
    """Where a borrower stands with their repayments on ``today``, under the active policy."""

    today: date
    policy: DelinquencyPolicy
    ruleset_version: str
    loans: tuple[OverdueLoan, ...]  # loans with an installment past its due date, the latest the longest first

    @property
    def past_due(self) -> bool:
        """Something is unpaid past its due date (perhaps still within grace)."""
        return bool(self.loans)

    @property
    def overdue(self) -> bool:
        """Overdue as the policy counts it: past grace (or past the due date, under ``after_due_date``)."""
        if self.policy.overdue_from is OverdueFrom.AFTER_DUE_DATE:
            return self.past_due
        return any(loan.days_past_grace > 0 for loan in self.loans)

    @property
    def line_frozen(self) -> bool:
        return self.overdue and self.policy.line_while_overdue is LineWhileOverdue.FREEZE

    @property
    def days_past_due(self) -> int:
        return max((loan.days_past_due for loan in self.loans), default=0)

    @property
    def owed_now_fen(self) -> int:
        """Everything due by today and unpaid, on every loan past due."""
        return sum(loan.owed_now_fen for loan in self.loans)

    @property
    def first(self) -> OverdueLoan | None:
        """The loan to repay first: the one late the longest."""
        return self.loans[0] if self.loans else None
