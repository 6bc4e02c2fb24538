"""Loan and credit-line states with their one transition table. Pure.

    requested ──sign──▶ signed ──submit payout──▶ disbursing ──payout succeeded──▶ active
        │                  │                          │                             │  ▲
        └──cancel──────────┴──cancel (payout failed)──┘                   falls due │  │ caught up
                                                                                    ▼  │
                                              paid_off ◀──repaid in full──────── overdue ──▶ written_off

``cancelled`` is reachable only before any money has left (requested, signed, or disbursing after
a *definite* payout failure — the payments layer decides that, never on an unknown outcome);
a definite failure may also return the loan to ``signed`` for a new payout attempt to another card.
``written_off`` only from overdue.
"""

from __future__ import annotations

from enum import StrEnum

from miaodai.core.errors import DomainError
from miaodai.loans.errors import LoanErrors


class LoanStatus(StrEnum):
    REQUESTED = "requested"
    SIGNED = "signed"
    DISBURSING = "disbursing"
    ACTIVE = "active"
    OVERDUE = "overdue"
    PAID_OFF = "paid_off"
    CANCELLED = "cancelled"
    WRITTEN_OFF = "written_off"


S = LoanStatus
TRANSITIONS: dict[LoanStatus, frozenset[LoanStatus]] = {
    S.REQUESTED: frozenset({S.SIGNED, S.CANCELLED}),
    S.SIGNED: frozenset({S.DISBURSING, S.CANCELLED}),
    # Back to signed after a *definite* payout failure: the borrower picks another card or cancels.
    S.DISBURSING: frozenset({S.ACTIVE, S.SIGNED, S.CANCELLED}),
    S.ACTIVE: frozenset({S.OVERDUE, S.PAID_OFF}),
    S.OVERDUE: frozenset({S.ACTIVE, S.PAID_OFF, S.WRITTEN_OFF}),
    S.PAID_OFF: frozenset(),
    S.CANCELLED: frozenset(),
    S.WRITTEN_OFF: frozenset(),
}
# Money is out and owed: the book the end-of-day batch works on.
ON_BOOK = frozenset({S.ACTIVE, S.OVERDUE})


def check_transition(current: LoanStatus, target: LoanStatus) -> None:
    """Raise the typed LOAN_ILLEGAL_TRANSITION unless the table allows ``current → target``."""
    if target not in TRANSITIONS[current]:
        raise DomainError(LoanErrors.ILLEGAL_TRANSITION, params={"current": current.value, "target": target.value})


class LineStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class ProposalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
