"""Writing off a loan (核销) that is more than 90 days past due (M3+).

One journal entry takes every receivable the loan still has off the book against write-off expense
(money the borrower had us hold is applied first, so the expense is what is really lost); the loan
becomes ``written_off`` and its credit line is frozen. Collections may go on: money recovered later is
income for the payments layer to post (recoveries are not part of this issue). The installments keep
what was unpaid, for the record; the loan's expected sub-ledger is zero from now on.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.ledger.accounts import Account
from miaodai.ledger.service import Leg, loan_subledger, post
from miaodai.loans.errors import LoanErrors
from miaodai.loans.locking import lock_loan
from miaodai.loans.models import CreditLine, Loan
from miaodai.loans.states import LineStatus, LoanStatus, check_transition

# Written off only beyond M3: more than 90 days past due.
MINIMUM_DAYS_PAST_DUE = 90


def write_off(ports: Platform, loan_id: int, *, actor: str, reason: str) -> Loan:
    with ports.db.transaction() as session:
        return write_off_in(session, ports, loan_id, actor=actor, reason=reason)


def write_off_in(session: Session, ports: Platform, loan_id: int, *, actor: str, reason: str) -> Loan:
    """:func:`write_off` in the caller's transaction (the back office runs it when a checker approves)."""
    now = ports.clock.now()
    loan = lock_loan(session, loan_id)  # the loans locking protocol: before reading what changes
    if loan is None:
        raise DomainError(LoanErrors.LOAN_NOT_FOUND, params={"loan_id": loan_id})
    if loan.status is LoanStatus.WRITTEN_OFF:
        return loan  # done before: writing off twice changes nothing
    check_transition(loan.status, LoanStatus.WRITTEN_OFF)
    if loan.days_past_due <= MINIMUM_DAYS_PAST_DUE:
        raise DomainError(LoanErrors.WRITE_OFF_TOO_EARLY, params={
            "days_past_due": loan.days_past_due, "minimum_days": MINIMUM_DAYS_PAST_DUE})
    owed = loan_subledger(session, loan.id)
    credits = [(Account.PRINCIPAL_RECEIVABLE, owed.principal_fen), (Account.INTEREST_RECEIVABLE, owed.interest_fen),
               (Account.FEE_RECEIVABLE, owed.fee_fen), (Account.PENALTY_RECEIVABLE, owed.penalty_fen)]
    legs = [Leg(account, -fen, loan_id=loan.id) for account, fen in credits if fen]
    if owed.overpayment_fen:
        legs.append(Leg(Account.OVERPAYMENT_LIABILITY, owed.overpayment_fen, loan_id=loan.id))
    lost = sum(fen for _, fen in credits) - owed.overpayment_fen
    if lost:
        legs.append(Leg(Account.WRITE_OFF_EXPENSE, lost, loan_id=loan.id))
    entry_id = None
    if legs:
        entry_id = post(session, kind="write_off", idempotency_key=f"loan:{loan.id}:write_off",
                        business_date=business_date(now), now=now, loan_id=loan.id, legs=legs,
                        memo=f"write-off: {reason}").entry.id
    loan.status = LoanStatus.WRITTEN_OFF
    loan.closed_at = now
    loan.overpayment_fen = 0
    session.execute(update(CreditLine).where(CreditLine.id == loan.credit_line_id)
                    .values(status=LineStatus.FROZEN, version=CreditLine.version + 1, updated_at=now))
    ports.audit.record(session, actor=actor, action="loan.write_off", subject=f"loan:{loan.id}",
                       details={"reason": reason, "written_off_fen": lost, "entry_id": entry_id,
                                    "days_past_due": loan.days_past_due})
    return loan
