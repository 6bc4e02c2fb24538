"""Ports the loans domain owns: what it needs from the layers built on it, as Protocols.

Loans sits below payments and credit (docs/architecture.md): they import loans, never the reverse. Where a loan's
use case needs them — signing orders a payout; a drawdown follows the credit policy on delinquency — it asks a
port declared here, and the composition root (``miaodai.container``) hands in the implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends
from sqlalchemy.orm import Session

from miaodai.contracts.signing import PlatformSigner
from miaodai.core.http import app_platform
from miaodai.core.ports import Platform
from miaodai.core.rollups import DailyRollup
from miaodai.identity.ports import IdentityPorts
from miaodai.loans.disclosure import DisclosurePorts
from miaodai.loans.models import Loan
from miaodai.loans.overdue import DelinquencyPolicy


class PayoutOrders(Protocol):
    """The payment order of a loan's payout (implemented by ``payments.orders.LoanPayouts``)."""

    def ordered_by(self, session: Session, loan_id: int, request_key: str) -> bool:
        """Whether the request under ``request_key`` already ordered a payout of the loan."""
        ...

    def order(self, session: Session, loan: Loan, *, now: datetime, request_key: str | None) -> None:
        """Store the order of the loan's current payout attempt in the caller's transaction (sent after commit)."""
        ...

    def send(self, loan_id: int) -> None:
        """Send the loan's stored payout order to the channel now (after the ordering transaction committed)."""
        ...

    def require_method(self, session: Session, borrower_id: int) -> None:
        """Refuse (``PAYMENT_PAYOUT_METHOD_REQUIRED``) a borrower with no active method to be paid out to."""
        ...


class ActiveDelinquencyPolicy(Protocol):
    """The active credit policy's ``delinquency`` section (implemented by ``credit.registry.PolicyCache``)."""

    def policy_columns(self) -> tuple[Any, ...]:
        """Labelled columns naming the active policy, read on the standing's own row (no extra round trip)."""
        ...

    def delinquency_of(self, session: Session, row: Any | None) -> tuple[DelinquencyPolicy, str]:
        """The policy named by a row carrying :meth:`policy_columns` (None: no row), and its ruleset version."""
        ...


class LoanPorts(IdentityPorts, DisclosurePorts, Protocol):
    """What the loans domain's services are given: identity's port (loans sends signing codes and reminders),
    the products' terms cache (``DisclosurePorts``), the contract signer, and the two ports above. Payments and
    credit extend it, as they call loans' services."""

    @property
    def signer(self) -> PlatformSigner: ...

    @property
    def payouts(self) -> PayoutOrders: ...

    @property
    def credit_policy(self) -> ActiveDelinquencyPolicy: ...


class EodPorts(Platform, Protocol):
    """What the end-of-day batch is given: the platform, and the dashboards' daily roll-ups of every domain
    (credit's applications, payments' orders and callbacks, loans' own), which it brings up to the date it
    closes (its last step, ``rollups``)."""

    @property
    def daily_rollups(self) -> Sequence[DailyRollup]: ...


# What loans' routers are given: the running service's wiring, seen through the loans port only.
LoanPortsDep = Annotated[LoanPorts, Depends(app_platform)]
