"""Credit lines (授信额度): granted by staff with maker-checker until the decision engine grants them.

One staff member proposes (``credit_line.propose``), a different one approves or rejects
(``credit_line.approve``); the four-eyes rule is checked here and by a CHECK constraint. A decision
is taken once: the proposal row is claimed with a conditional UPDATE (``WHERE status = 'pending'``),
so two checkers racing cannot both create a line.

Reserving and releasing available credit are single conditional UPDATEs
(``available_fen = available_fen - :x WHERE available_fen >= :x``), atomic on both databases, so
concurrent drawdowns can never overdraw a line; they bump the line's ``version`` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date
from miaodai.core.db import days_between, rows_changed, table_of
from miaodai.core.errors import DomainError
from miaodai.core.money import Money
from miaodai.core.ports import Platform
from miaodai.identity.models import Borrower, KycStatus
from miaodai.identity.staff_service import StaffContext
from miaodai.loans.errors import LoanErrors
from miaodai.loans.models import CreditLine, CreditLineProposal, Loan, LoanInstallment
from miaodai.loans.overdue import OverdueLoan, Standing
from miaodai.loans.ports import ActiveDelinquencyPolicy, LoanPorts
from miaodai.loans.product_service import product_by_code
from miaodai.loans.states import LineStatus, ProposalStatus


@dataclass(frozen=True)
class LineProposalRequest:
    borrower_id: int
    product_code: str
    limit_fen: int
    annual_rate: Decimal
    risk_grade: str
    expires_on: date
    reason: str


def verified_borrower(session: Session, borrower_id: int) -> Borrower:
    borrower = session.get(Borrower, borrower_id)
    if borrower is None:
        raise DomainError(LoanErrors.BORROWER_NOT_FOUND, params={"borrower_id": borrower_id})
    if borrower.kyc_status is not KycStatus.VERIFIED:
        raise DomainError(LoanErrors.BORROWER_NOT_VERIFIED)
    return borrower


def _active_line(session: Session, borrower_id: int, product_id: int) -> CreditLine | None:
    return session.execute(
        select(CreditLine).where(
            CreditLine.borrower_id == borrower_id, CreditLine.product_id == product_id,
            CreditLine.status != LineStatus.CLOSED,
        )
    ).scalars().first()


def propose(ports: Platform, staff: StaffContext, request: LineProposalRequest) -> CreditLineProposal:
    now = ports.clock.now()
    with ports.db.transaction() as session:
        verified_borrower(session, request.borrower_id)
        product = product_by_code(session, request.product_code)
        spec = product.spec()
        if request.limit_fen < spec.min_amount_fen or request.expires_on <= business_date(now):
            raise DomainError(LoanErrors.LINE_LIMIT_INVALID, params={"min_yuan": Money(spec.min_amount_fen).to_yuan()})
        if not spec.min_annual_rate <= request.annual_rate <= spec.max_annual_rate:
            # A line's price must be one the product offers (its drawdowns are priced at it).
            raise DomainError(LoanErrors.RATE_OUT_OF_RANGE, params={
                "min_rate": str(spec.min_annual_rate), "max_rate": str(spec.max_annual_rate)})
        existing = _active_line(session, request.borrower_id, product.id)
        if existing is not None:
            raise DomainError(LoanErrors.LINE_EXISTS, params={"line_id": existing.id})
        proposal = CreditLineProposal(
            borrower_id=request.borrower_id, product_id=product.id, limit_fen=request.limit_fen,
            annual_rate=request.annual_rate, risk_grade=request.risk_grade, expires_on=request.expires_on,
            reason=request.reason, status=ProposalStatus.PENDING, proposed_by=staff.staff_id, proposed_at=now,
        )
        session.add(proposal)
        session.flush()
        ports.audit.record(
            session, actor=staff.actor, action="credit_line.propose", subject=f"credit_line_proposal:{proposal.id}",
            details={"borrower_id": request.borrower_id, "product": request.product_code,
                     "limit_fen": request.limit_fen, "annual_rate": str(request.annual_rate),
                     "risk_grade": request.risk_grade, "expires_on": request.expires_on.isoformat()},
        )
    return proposal


def pending_proposals(ports: Platform) -> list[CreditLineProposal]:
    with ports.db.transaction() as session:
        return list(session.execute(
            select(CreditLineProposal).where(CreditLineProposal.status == ProposalStatus.PENDING)
            .order_by(CreditLineProposal.id)
        ).scalars())


def decide(
    ports: Platform, staff: StaffContext, proposal_id: int, *, approve: bool, note: str
) -> tuple[CreditLineProposal, CreditLine | None]:
    now = ports.clock.now()
    with ports.db.transaction() as session:
        proposal = session.get(CreditLineProposal, proposal_id)
        if proposal is None:
            raise DomainError(LoanErrors.PROPOSAL_NOT_FOUND, params={"proposal_id": proposal_id})
        if proposal.proposed_by == staff.staff_id:
            raise DomainError(LoanErrors.FOUR_EYES)
        status = ProposalStatus.APPROVED if approve else ProposalStatus.REJECTED
        claimed = rows_changed(session.execute(
            update(CreditLineProposal)
            .where(CreditLineProposal.id == proposal_id, CreditLineProposal.status == ProposalStatus.PENDING)
            .values(status=status, decided_by=staff.staff_id, decided_at=now, decision_note=note)
            .execution_options(synchronize_session=False)
        ))
        if claimed != 1:
            session.refresh(proposal)
            raise DomainError(LoanErrors.PROPOSAL_DECIDED,
                              params={"proposal_id": proposal_id, "status": proposal.status.value})
        line = None
        if approve:
            verified_borrower(session, proposal.borrower_id)
            existing = _active_line(session, proposal.borrower_id, proposal.product_id)
            if existing is not None:
                raise DomainError(LoanErrors.LINE_EXISTS, params={"line_id": existing.id})
            line = CreditLine(
                borrower_id=proposal.borrower_id, product_id=proposal.product_id, limit_fen=proposal.limit_fen,
                available_fen=proposal.limit_fen, annual_rate=proposal.annual_rate, risk_grade=proposal.risk_grade,
                expires_on=proposal.expires_on, status=LineStatus.ACTIVE, source=f"staff:proposal:{proposal.id}",
                created_at=now, updated_at=now,
            )
            session.add(line)
            session.flush()
            session.execute(update(CreditLineProposal).where(CreditLineProposal.id == proposal_id)
                            .values(credit_line_id=line.id).execution_options(synchronize_session=False))
        session.refresh(proposal)
        ports.audit.record(
            session, actor=staff.actor, action=f"credit_line.{status.value}",
            subject=f"credit_line_proposal:{proposal.id}",
            details={"credit_line_id": line.id if line else None, "proposed_by": proposal.proposed_by, "note": note},
        )
    return proposal, line


def grant_line(
    session: Session, *, borrower_id: int, product_id: int, limit_fen: int, annual_rate: Decimal, risk_grade: str,
    expires_on: date, source: str, now: datetime,
) -> CreditLine:
    """Create an active line directly (demo seed; the decision engine later). The caller audits it."""
    line = CreditLine(
        borrower_id=borrower_id, product_id=product_id, limit_fen=limit_fen, available_fen=limit_fen,
        annual_rate=annual_rate, risk_grade=risk_grade, expires_on=expires_on, status=LineStatus.ACTIVE,
        source=source, created_at=now, updated_at=now,
    )
    session.add(line)
    session.flush()
    return line


def insert_line(
    session: Session, *, borrower_id: int, product_id: int, limit_fen: int, annual_rate: Decimal, risk_grade: str,
    expires_on: date, source: str, now: datetime,
) -> int:
    """:func:`grant_line` as one INSERT with no ORM object, for the credit decision's hot path; the new line's id.
    The caller audits it."""
    return session.connection().execute(_INSERT_LINE, {
        "borrower_id": borrower_id, "product_id": product_id, "limit_fen": limit_fen, "available_fen": limit_fen,
        "annual_rate": annual_rate, "risk_grade": risk_grade, "expires_on": expires_on, "status": LineStatus.ACTIVE,
        "source": source, "created_at": now, "updated_at": now, "version": 1,  # the ORM's first version too
    }).scalar_one()


_INSERT_LINE = insert(table_of(CreditLine)).returning(table_of(CreditLine).c.id)


def borrower_lines(ports: Platform, borrower_id: int) -> list[CreditLine]:
    with ports.db.transaction() as session:
        return list(session.execute(
            select(CreditLine).where(CreditLine.borrower_id == borrower_id).order_by(CreditLine.id)).scalars())


@dataclass(frozen=True)
class BorrowerLines:
    """A borrower's lines with their repayment standing: a line the credit policy freezes while they are
    overdue (``delinquency`` in the ruleset) is shown frozen, nothing available, until they are current."""

    lines: list[CreditLine]
    standing: Standing

    def frozen_for_overdue(self, line: CreditLine) -> bool:
        return line.status is LineStatus.ACTIVE and self.standing.line_frozen

    def status(self, line: CreditLine) -> LineStatus:
        return LineStatus.FROZEN if self.frozen_for_overdue(line) else line.status

    def drawable_fen(self, line: CreditLine) -> int:
        """What may be drawn on the line now: its available amount, or nothing while it is frozen."""
        return 0 if self.frozen_for_overdue(line) else line.available_fen


@cache
def _standing_statement(policy_columns: tuple[Any, ...]) -> Any:
    """The policy's row, with each of the borrower's loans that has something due by ``today`` and unpaid (none:
    one row of NULLs). Built once (a statement memoizes its cache key): every drawdown reads it."""
    i = LoanInstallment
    today = bindparam("today", type_=i.due_date.type)
    unpaid = (i.principal_fen - i.principal_paid_fen + i.interest_fen - i.interest_paid_fen
              + i.fee_fen - i.fee_paid_fen + i.penalty_fen - i.penalty_paid_fen)
    per_loan = (
        select(Loan.id.label("loan_id"), Loan.grace_days.label("grace_days"),
               func.max(days_between(today, i.due_date)).label("days_past_due"),
               func.sum(unpaid).label("owed_now_fen"))
        .join(i, i.loan_id == Loan.id)
        # Every loan whose money is out and still owed (written-off loans are owed too); paid-off and
        # cancelled loans have nothing unpaid.
        .where(Loan.borrower_id == bindparam("borrower_id"),
               # not an IN list: SQLAlchemy renders an expanding IN anew on every execution
               or_(*(Loan.status == status for status in ("active", "overdue", "written_off"))),
               i.paid_off_on.is_(None), i.due_date <= today)
        .group_by(Loan.id, Loan.grace_days)
        .subquery("due")
    )
    policy = select(*policy_columns).subquery("policy")
    return select(policy, per_loan).select_from(policy.outerjoin(per_loan, true()))


def standing(session: Session, policy: ActiveDelinquencyPolicy, borrower_id: int, today: date) -> Standing:
    """The borrower's standing on business date ``today`` under the active policy: one statement, computed from
    the due dates and the business date (not from ``loans.status`` or ``days_past_due``, which the batch keeps),
    so it holds between end-of-day runs."""
    rows = session.execute(_standing_statement(policy.policy_columns()),
                           {"borrower_id": borrower_id, "today": today}).all()
    section, version = policy.delinquency_of(session, rows[0] if rows else None)
    loans = [OverdueLoan(row.loan_id, int(row.days_past_due), int(row.grace_days), int(row.owed_now_fen))
             for row in rows if row.loan_id is not None and int(row.days_past_due) > 0]
    loans.sort(key=lambda loan: (-loan.days_past_due, loan.loan_id))
    return Standing(today=today, policy=section, ruleset_version=version, loans=tuple(loans))


def borrower_lines_standing(ports: LoanPorts, borrower_id: int) -> BorrowerLines:
    """The borrower's lines and where they stand with their repayments today (two statements, one transaction)."""
    today = business_date(ports.clock.now())
    with ports.db.transaction() as session:
        lines = list(session.execute(
            select(CreditLine).where(CreditLine.borrower_id == borrower_id).order_by(CreditLine.id)).scalars())
        return BorrowerLines(lines, standing(session, ports.credit_policy, borrower_id, today))


def refuse_if_overdue(session: Session, ports: LoanPorts, borrower_id: int, today: date) -> None:
    """LOAN_BORROWER_OVERDUE while the credit policy freezes the borrower's line for an overdue installment —
    decided from the installments and today's date (one statement), so it holds between end-of-day runs."""
    where = standing(session, ports.credit_policy, borrower_id, today)
    if where.line_frozen:
        first = where.first
        assert first is not None  # frozen only while something is overdue
        raise DomainError(LoanErrors.BORROWER_OVERDUE, params={
            "loan_id": first.loan_id, "days_past_due": where.days_past_due,
            "owed_fen": where.owed_now_fen, "owed_yuan": Money(where.owed_now_fen).to_yuan()})


def reserve(session: Session, line_id: int, amount_fen: int, *, now: datetime) -> bool:
    """Take ``amount_fen`` from the line's available credit; False (nothing changed) if there is not enough."""
    taken = rows_changed(session.execute(
        update(CreditLine)
        .where(CreditLine.id == line_id, CreditLine.status == LineStatus.ACTIVE, CreditLine.available_fen >= amount_fen)
        .values(available_fen=CreditLine.available_fen - amount_fen, version=CreditLine.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    ))
    return taken == 1


def release(session: Session, line_id: int, amount_fen: int, *, now: datetime) -> None:
    """Give principal back to the line (a cancelled drawdown, or principal repaid): a revolving line."""
    session.execute(_RELEASE, {"line_id": line_id, "amount_fen": amount_fen, "now": now})


# Built once (a statement memoizes its cache key): repayments of principal release credit all day long.
_RELEASE = (
    update(CreditLine)
    .where(CreditLine.id == bindparam("line_id"))
    .values(available_fen=CreditLine.available_fen + bindparam("amount_fen"), version=CreditLine.version + 1,
            updated_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)
