"""Servicing a loan and a line by staff (the back office's maker-checker actions run these when approved):
waiving penalty interest and late fees, freezing and unfreezing a line, adjusting its limit, closing a
borrower's lines. Each ``*_in`` runs in the caller's transaction and audits itself; each ``*_preview`` only
reads, and gives the figures before and after, so a checker sees what they approve.

**Waiver** (减免): penalty interest and late fees are charged by the end-of-day batch to an installment's
``penalty_fen`` and posted Dr penalty receivable / Cr penalty income (:mod:`miaodai.loans.accounting`). A
waiver of ``W`` fen is the compensating entry Dr penalty income / Cr penalty receivable for ``W``, and
lowers the installments' ``penalty_fen`` by ``W`` in all, oldest installment first — so the loan owes ``W``
less, and its sub-ledger (penalty receivable = Σ penalty − penalty paid) still matches the installments.
Never more than is charged and unpaid. An installment left with nothing owed is settled; a loan left with
nothing owed is paid off, and an overdue loan with nothing due unpaid is current again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date
from miaodai.core.db import rows_changed
from miaodai.core.errors import DomainError
from miaodai.core.money import Money
from miaodai.core.ports import Platform
from miaodai.ledger.accounts import Account
from miaodai.ledger.models import JournalEntry
from miaodai.ledger.service import Leg, post
from miaodai.loans.errors import LoanErrors
from miaodai.loans.loan_service import installments_of
from miaodai.loans.locking import lock_loan
from miaodai.loans.models import CreditLine, CreditLineProposal, Loan, LoanInstallment, LoanProduct
from miaodai.loans.repayment_service import outstanding, settle_status
from miaodai.loans.states import ON_BOOK, LineStatus, LoanStatus, ProposalStatus

# -- waiver -----------------------------------------------------------------------------------------------


def _unpaid_penalty(rows: list[LoanInstallment]) -> int:
    return sum(r.penalty_fen - r.penalty_paid_fen for r in rows)


def _owed(rows: list[LoanInstallment]) -> int:
    return sum(outstanding(r) for r in rows)


def _waivable(session: Session, loan: Loan | None, loan_id: int) -> tuple[Loan, list[LoanInstallment], int]:
    if loan is None:
        raise DomainError(LoanErrors.LOAN_NOT_FOUND, params={"loan_id": loan_id})
    if loan.status not in ON_BOOK:
        raise DomainError(LoanErrors.NOT_REPAYABLE, params={"status": loan.status.value})
    rows = installments_of(session, loan.id)
    unpaid = _unpaid_penalty(rows)
    if unpaid <= 0:
        raise DomainError(LoanErrors.NOTHING_TO_WAIVE)
    return loan, rows, unpaid


def _checked_amount(amount_fen: int | None, unpaid: int) -> int:
    amount = unpaid if amount_fen is None else amount_fen
    if amount <= 0 or amount > unpaid:
        raise DomainError(LoanErrors.WAIVER_TOO_LARGE, params={
            "amount_yuan": Money(max(amount, 0)).to_yuan(), "unpaid_yuan": Money(unpaid).to_yuan()})
    return amount


@dataclass(frozen=True)
class WaiverFigures:
    loan_id: int
    amount_fen: int  # what the waiver takes off
    before: dict[str, int]
    after: dict[str, int]


def waiver_preview(session: Session, loan_id: int, amount_fen: int | None) -> WaiverFigures:
    """What waiving ``amount_fen`` (None: all of it) of the loan's unpaid penalty interest and late fees changes."""
    loan, rows, unpaid = _waivable(session, session.get(Loan, loan_id), loan_id)
    amount = _checked_amount(amount_fen, unpaid)
    owed = _owed(rows)
    return WaiverFigures(loan.id, amount, {"penalty_unpaid_fen": unpaid, "owed_fen": owed},
                         {"penalty_unpaid_fen": unpaid - amount, "owed_fen": owed - amount})


def waive_penalty_in(session: Session, ports: Platform, loan_id: int, amount_fen: int, *, key: str, actor: str,
                     reason: str) -> WaiverFigures:
    """Waive ``amount_fen`` of the loan's unpaid penalty interest and late fees, oldest installment first, by one
    compensating journal entry (posted once under ``key``: the same key again changes nothing)."""
    now = ports.clock.now()
    today = business_date(now)
    locked = lock_loan(session, loan_id)  # the loans locking protocol: before reading what changes
    entry_key = f"loan:{loan_id}:waiver:{key}"
    if locked is not None and session.execute(select(JournalEntry.id).where(
            JournalEntry.idempotency_key == entry_key)).first() is not None:
        return WaiverFigures(loan_id, amount_fen, {}, {})  # waived under this key before: nothing changes
    loan, rows, unpaid = _waivable(session, locked, loan_id)
    amount = _checked_amount(amount_fen, unpaid)
    owed = _owed(rows)
    result = post(session, kind="penalty_waiver", idempotency_key=entry_key,
                  business_date=today, now=now, loan_id=loan.id,
                  legs=[Leg(Account.PENALTY_INCOME, amount, loan_id=loan.id),
                        Leg(Account.PENALTY_RECEIVABLE, -amount, loan_id=loan.id)],
                  memo=f"penalty waiver: {reason[:80]}")
    left = amount
    for row in sorted(rows, key=lambda r: r.period):
        take = min(left, row.penalty_fen - row.penalty_paid_fen)
        if take <= 0:
            continue
        row.penalty_fen -= take
        left -= take
        if outstanding(row) == 0 and row.paid_off_on is None:
            row.paid_off_on = today
        if left == 0:
            break
    settle_status(loan, rows, today, now=now)
    ports.audit.record(session, actor=actor, action="loan.penalty_waived", subject=f"loan:{loan.id}",
                       details={"amount_fen": amount, "reason": reason, "entry_id": result.entry.id})
    return WaiverFigures(loan.id, amount, {"penalty_unpaid_fen": unpaid, "owed_fen": owed},
                         {"penalty_unpaid_fen": unpaid - amount, "owed_fen": owed - amount})


# -- credit lines ------------------------------------------------------------------------------------------


def line_of(session: Session, line_id: int, *, lock: bool = False) -> CreditLine:
    query = select(CreditLine).where(CreditLine.id == line_id)
    line = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if line is None:
        raise DomainError(LoanErrors.LINE_NOT_FOUND)
    return line


def _line_figures(line: CreditLine) -> dict[str, object]:
    return {"status": line.status.value, "limit_fen": line.limit_fen, "available_fen": line.available_fen,
            "drawn_fen": line.limit_fen - line.available_fen}


def _expect(line: CreditLine, expected: LineStatus) -> None:
    if line.status is not expected:
        raise DomainError(LoanErrors.LINE_STATUS_WRONG, params={"status": line.status.value,
                                                                 "expected": expected.value})


def _written_off_on(session: Session, line_id: int) -> bool:
    return session.execute(select(Loan.id).where(Loan.credit_line_id == line_id,
                                                 Loan.status == LoanStatus.WRITTEN_OFF).limit(1)).first() is not None


def status_preview(session: Session, line_id: int, target: LineStatus) -> tuple[CreditLine, dict, dict]:
    """Freezing (``target`` frozen: the line must be active) or unfreezing (``target`` active: it must be frozen,
    and not frozen by a write-off on it), as figures before and after."""
    line = line_of(session, line_id)
    _check_status_change(session, line, target)
    before = _line_figures(line)
    return line, before, {**before, "status": target.value}


def _check_status_change(session: Session, line: CreditLine, target: LineStatus) -> None:
    _expect(line, LineStatus.FROZEN if target is LineStatus.ACTIVE else LineStatus.ACTIVE)
    if target is LineStatus.ACTIVE and _written_off_on(session, line.id):
        raise DomainError(LoanErrors.LINE_STATUS_WRONG, params={"status": "frozen (written-off loan)",
                                                                 "expected": LineStatus.FROZEN.value})


def set_line_status_in(session: Session, ports: Platform, line_id: int, target: LineStatus, *, actor: str,
                       reason: str) -> CreditLine:
    """Freeze an active line (nothing can be drawn on it; loans drawn run on) or unfreeze a frozen one."""
    now = ports.clock.now()
    line = line_of(session, line_id, lock=True)
    _check_status_change(session, line, target)
    before = line.status
    line.status = target
    line.updated_at = now
    session.flush()
    ports.audit.record(session, actor=actor, action="credit.line.frozen" if target is LineStatus.FROZEN
                       else "credit.line.unfrozen", subject=f"credit_line:{line.id}",
                       details={"before": before.value, "after": target.value, "reason": reason})
    return line


@dataclass(frozen=True)
class LimitBounds:
    min_fen: int
    max_fen: int
    step_fen: int


def limit_bounds(session: Session, line: CreditLine, *, policy_max_fen: int, step_fen: int) -> LimitBounds:
    """The limits a line may be set to: at least what is drawn on it and the product's minimum, at most the
    product's maximum and ``policy_max_fen`` (what the credit policy allows, from the caller), in ``step_fen``."""
    product = session.get_one(LoanProduct, line.product_id)
    drawn = line.limit_fen - line.available_fen
    low = max(drawn, product.min_amount_fen)
    low = -(-low // step_fen) * step_fen  # up to the step
    high = min(product.max_amount_fen, policy_max_fen) // step_fen * step_fen
    return LimitBounds(low, high, step_fen)


def _check_limit(bounds: LimitBounds, new_limit_fen: int) -> None:
    if not bounds.min_fen <= new_limit_fen <= bounds.max_fen or new_limit_fen % bounds.step_fen:
        raise DomainError(LoanErrors.LINE_LIMIT_OUT_OF_POLICY, params={
            "min_yuan": Money(bounds.min_fen).to_yuan(), "max_yuan": Money(max(bounds.max_fen, 0)).to_yuan(),
            "step_yuan": Money(bounds.step_fen).to_yuan(), "min_fen": bounds.min_fen, "max_fen": bounds.max_fen})


def limit_preview(session: Session, line_id: int, new_limit_fen: int, *, policy_max_fen: int,
                  step_fen: int) -> tuple[CreditLine, dict, dict]:
    line = line_of(session, line_id)
    if line.status is LineStatus.CLOSED:
        _expect(line, LineStatus.ACTIVE)
    _check_limit(limit_bounds(session, line, policy_max_fen=policy_max_fen, step_fen=step_fen), new_limit_fen)
    before = _line_figures(line)
    drawn = line.limit_fen - line.available_fen
    return line, before, {**before, "limit_fen": new_limit_fen, "available_fen": new_limit_fen - drawn}


def adjust_limit_in(session: Session, ports: Platform, line_id: int, new_limit_fen: int, *, policy_max_fen: int,
                    step_fen: int, actor: str, reason: str) -> CreditLine:
    """Set the line's limit (its available credit moves by the same amount): checked against the bounds under
    the line's row lock, so a drawdown meanwhile cannot leave the limit below what is drawn."""
    now = ports.clock.now()
    line = line_of(session, line_id, lock=True)
    if line.status is LineStatus.CLOSED:
        _expect(line, LineStatus.ACTIVE)
    _check_limit(limit_bounds(session, line, policy_max_fen=policy_max_fen, step_fen=step_fen), new_limit_fen)
    old_limit, old_available = line.limit_fen, line.available_fen
    changed = rows_changed(session.execute(
        update(CreditLine)
        .where(CreditLine.id == line.id, CreditLine.limit_fen - CreditLine.available_fen <= new_limit_fen)
        .values(available_fen=CreditLine.available_fen + (new_limit_fen - CreditLine.limit_fen),
                limit_fen=new_limit_fen, version=CreditLine.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)))
    if changed != 1:  # drawn beyond the new limit since it was read (SQLite: never, one writer at a time)
        session.refresh(line)
        _check_limit(limit_bounds(session, line, policy_max_fen=policy_max_fen, step_fen=step_fen), new_limit_fen)
    session.refresh(line)
    ports.audit.record(session, actor=actor, action="credit.line.limit_adjusted", subject=f"credit_line:{line.id}",
                       details={"old_limit_fen": old_limit, "new_limit_fen": new_limit_fen,
                                "old_available_fen": old_available, "new_available_fen": line.available_fen,
                                "reason": reason})
    return line


# -- account closure --------------------------------------------------------------------------------------

# A loan that is over: nothing owed by the borrower (paid off, or cancelled before money left).
_OVER = (LoanStatus.PAID_OFF, LoanStatus.CANCELLED)


def loans_keeping_account_open(session: Session, borrower_id: int) -> list[int]:
    """The borrower's loans that are not over, or that hold money for them (an overpayment to refund)."""
    return list(session.execute(
        select(Loan.id).where(Loan.borrower_id == borrower_id,
                              Loan.status.not_in(_OVER) | (Loan.overpayment_fen > 0)).order_by(Loan.id)
    ).scalars())


def close_lines_in(session: Session, ports: Platform, borrower_id: int, *, actor: str, reason: str) -> list[int]:
    """Close every line of the borrower that is not closed (the account is closing); their ids."""
    now = ports.clock.now()
    ids = list(session.execute(select(CreditLine.id).where(CreditLine.borrower_id == borrower_id,
                                                            CreditLine.status != LineStatus.CLOSED)
                               .order_by(CreditLine.id).with_for_update()).scalars())
    if ids:
        session.execute(update(CreditLine).where(CreditLine.id.in_(ids))
                        .values(status=LineStatus.CLOSED, version=CreditLine.version + 1, updated_at=now)
                        .execution_options(synchronize_session=False))
        for line_id in ids:
            ports.audit.record(session, actor=actor, action="credit.line.closed", subject=f"credit_line:{line_id}",
                               details={"reason": reason})
    return ids


# -- what waits for a checker --------------------------------------------------------------------------------


def pending_line_proposals(session: Session) -> list[CreditLineProposal]:
    """Manual credit-line proposals awaiting a checker (maker: ``proposed_by``), oldest first."""
    return list(session.execute(select(CreditLineProposal).where(CreditLineProposal.status == ProposalStatus.PENDING)
                                .order_by(CreditLineProposal.id)).scalars())


def borrower_lines(session: Session, borrower_id: int) -> list[CreditLine]:
    return list(session.execute(select(CreditLine).where(CreditLine.borrower_id == borrower_id)
                                .order_by(CreditLine.id)).scalars())
