"""Credit lines: maker-checker proposals by staff, and the borrower's own lines. Thin."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from miaodai.core.fields import RowId, RowIdField
from miaodai.identity.http import CurrentBorrower
from miaodai.identity.staff_deps import require_permission
from miaodai.identity.staff_service import StaffContext
from miaodai.loans import line_service
from miaodai.loans.disclosure import AprExample, line_apr_of
from miaodai.loans.models import CreditLine, CreditLineProposal
from miaodai.loans.ports import LoanPorts, LoanPortsDep
from miaodai.loans.states import LineStatus, ProposalStatus
from miaodai.loans.views import Fen, Rate, RateOut

router = APIRouter(tags=["credit lines"])

Proposer = Annotated[StaffContext, Depends(require_permission("credit_line.propose"))]
Checker = Annotated[StaffContext, Depends(require_permission("credit_line.approve"))]


class ProposalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    borrower_id: RowIdField
    product_code: str = Field(min_length=1, max_length=32)
    limit_fen: Fen
    annual_rate: Rate
    risk_grade: str = Field(pattern=r"^[A-E]$", description="A (best) … E")
    expires_on: date
    reason: str = Field(min_length=1, max_length=500, description="Why this line: what the checker reviews")


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=500)


class ProposalView(BaseModel):
    id: int
    borrower_id: int
    product_id: int
    limit_fen: int
    annual_rate: RateOut
    risk_grade: str
    expires_on: date
    reason: str
    status: ProposalStatus
    proposed_by: int
    proposed_at: datetime
    decided_by: int | None
    decided_at: datetime | None
    decision_note: str | None
    credit_line_id: int | None


class OverdueView(BaseModel):
    loan_id: int = Field(description="The loan to repay first (the one late the longest)")
    days_past_due: int
    owed_now_fen: int = Field(description="Principal, interest, fee and penalty due by today and unpaid, all loans")


class LineView(BaseModel):
    id: int
    product_id: int
    limit_fen: int
    available_fen: int = Field(description="What can be drawn now: 0 while the line is frozen")
    apr: RateOut | None = Field(default=None, description=(
        "Annualized rate of all costs (IRR: interest and the service fee) for the line's default terms "
        "(apr_example): the rate to show first (PBoC announcement [2021] No. 3); annual_rate is nominal only"))
    apr_example: AprExample | None = Field(default=None, description="The default terms apr is computed for")
    annual_rate: RateOut
    risk_grade: str
    expires_on: date
    status: LineStatus = Field(description="frozen also while you are overdue, when the "
                        "credit policy says so (by default), until you are current again")
    frozen_reason: str | None = Field(default=None, description="overdue: repay what is overdue to unfreeze it")
    overdue: OverdueView | None = Field(default=None, description="While you are overdue: what to repay")


def _proposal(p: CreditLineProposal) -> ProposalView:
    return ProposalView(
        id=p.id, borrower_id=p.borrower_id, product_id=p.product_id, limit_fen=p.limit_fen, annual_rate=p.annual_rate,
        risk_grade=p.risk_grade, expires_on=p.expires_on, reason=p.reason, status=p.status,
        proposed_by=p.proposed_by, proposed_at=p.proposed_at, decided_by=p.decided_by, decided_at=p.decided_at,
        decision_note=p.decision_note, credit_line_id=p.credit_line_id,
    )


def line_view(line: CreditLine, held: line_service.BorrowerLines | None = None) -> LineView:
    """The line as the borrower may use it now: with ``held`` (their repayment standing), frozen while the credit
    policy freezes it for an overdue installment."""
    frozen = held is not None and held.frozen_for_overdue(line)
    first = held.standing.first if frozen and held is not None else None
    return LineView(
        id=line.id, product_id=line.product_id, limit_fen=line.limit_fen,
        available_fen=0 if frozen else line.available_fen, annual_rate=line.annual_rate,
        risk_grade=line.risk_grade, expires_on=line.expires_on,
        status=LineStatus.FROZEN if frozen else line.status,
        frozen_reason="overdue" if frozen else None,
        overdue=OverdueView(loan_id=first.loan_id, days_past_due=held.standing.days_past_due,
                            owed_now_fen=held.standing.owed_now_fen) if first is not None and held else None,
    )


@router.post("/v1/staff/credit-line-proposals", status_code=201,
             summary="Propose a credit line for a verified borrower (maker; needs credit_line.propose)")
def propose(body: ProposalRequest, staff: Proposer, ports: LoanPortsDep) -> ProposalView:
    request = line_service.LineProposalRequest(**body.model_dump())
    return _proposal(line_service.propose(ports, staff, request))


@router.get("/v1/staff/credit-line-proposals", summary="Proposals waiting for a checker (needs credit_line.approve)")
def pending(_staff: Checker, ports: LoanPortsDep) -> list[ProposalView]:
    return [_proposal(p) for p in line_service.pending_proposals(ports)]


@router.post("/v1/staff/credit-line-proposals/{proposal_id}/approve",
             summary="Approve another staff member's proposal: the line is created (checker)")
def approve(proposal_id: RowId, staff: Checker, ports: LoanPortsDep,
            body: DecisionRequest = DecisionRequest()) -> ProposalView:
    proposal, _line = line_service.decide(ports, staff, proposal_id, approve=True, note=body.note)
    return _proposal(proposal)


@router.post("/v1/staff/credit-line-proposals/{proposal_id}/reject", summary="Reject a proposal (checker)")
def reject(proposal_id: RowId, staff: Checker, ports: LoanPortsDep,
           body: DecisionRequest = DecisionRequest()) -> ProposalView:
    proposal, _line = line_service.decide(ports, staff, proposal_id, approve=False, note=body.note)
    return _proposal(proposal)


@router.get("/v1/credit-lines", summary="My credit lines: limit, available credit, rate, expiry")
def my_lines(auth: CurrentBorrower, ports: LoanPortsDep) -> list[LineView]:
    held = line_service.borrower_lines_standing(ports, auth.borrower_id)
    return [_with_apr(ports, line_view(line, held)) for line in held.lines]


def _with_apr(ports: LoanPorts, view: LineView) -> LineView:
    """The line's all-in APR at its default terms (cached per product terms and rate: no query of its own)."""
    disclosed = line_apr_of(ports, view.product_id, view.annual_rate)
    return view.model_copy(update={"apr": disclosed.apr, "apr_example": disclosed.example})
