"""Maker-checker over HTTP: propose a servicing action (202: it waits for a checker), see its figures first,
read the one inbox, approve or reject. Thin: parse, call :mod:`miaodai.backoffice.approvals`, shape the answer.

The proposals that move money — refunds and repayment reversals — take an ``Idempotency-Key`` as before they
were four-eyes (a retry gets the first answer); approving is safe to retry by its own state machine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from miaodai.backoffice import approvals
from miaodai.backoffice.actions import ACTIONS, ActionKind, ServicingPortsDep
from miaodai.backoffice.approval_models import ApprovalRequest
from miaodai.backoffice.errors import BackofficeErrors
from miaodai.backoffice.inbox import InboxItem, Order, Source, inbox
from miaodai.core.errors import DomainError
from miaodai.core.fields import ROW_ID_MAX, RowId
from miaodai.core.idempotency import IdempotencyDep
from miaodai.identity import rbac
from miaodai.identity.staff_deps import CurrentStaff, require_permission
from miaodai.identity.staff_errors import StaffErrors
from miaodai.identity.staff_service import StaffContext
from miaodai.loans.views import Fen

router = APIRouter(tags=["maker-checker"])

Reason = Annotated[str, Field(min_length=2, max_length=500, description="Why: what the checker reads")]


def require_any_permission(*permissions: str) -> Callable[[StaffContext], StaffContext]:
    """Let the call through if the staff member's roles grant any of ``permissions`` (the inbox serves every
    checker; each item is then filtered by its own approve permission)."""
    for permission in permissions:
        if not rbac.is_known_permission(permission):
            raise ValueError(f"unknown permission {permission!r}")

    def dependency(staff: CurrentStaff) -> StaffContext:
        if not any(rbac.is_allowed(staff.roles, permission) for permission in permissions):
            raise DomainError(StaffErrors.FORBIDDEN, params={"permission": " | ".join(permissions)})
        return staff

    return dependency


_PROPOSERS = sorted({a.propose_permission.value for a in ACTIONS.values()})
_CHECKERS = sorted({a.approve_permission.value for a in ACTIONS.values()} | {
    "credit_line.approve", "review.approve_override", "credit_policy.approve"})
AnyMaker = Annotated[StaffContext, Depends(require_any_permission(*_PROPOSERS))]
# The inbox also shows makers of the other tables' items their own (``mine``).
_OTHER_MAKERS = ("credit_line.propose", "review.decide", "credit_policy.propose")
AnyStaffOfApprovals = Annotated[StaffContext, Depends(require_any_permission(*_PROPOSERS, *_CHECKERS,
                                                                             *_OTHER_MAKERS))]
AnyChecker = Annotated[StaffContext, Depends(require_any_permission(*_CHECKERS))]


class FiguresView(BaseModel):
    before: dict[str, Any]
    after: dict[str, Any]


class ApprovalView(BaseModel):
    id: int
    kind: ActionKind
    name_zh: str
    name_en: str
    subject: str = Field(description="What it acts on: loan:12, repayment:7, credit_line:3, borrower:5")
    state: str = Field(description="pending, approved, rejected, failed (the action was no longer possible "
                                   "when approved: error_code says why; nothing changed), or withdrawn (by its "
                                   "maker before anyone decided it; decision_reason is theirs, no checker)")
    params: dict[str, Any]
    figures: FiguresView = Field(description="Before and after, as computed when it was proposed")
    maker_id: int
    maker_reason: str
    created_at: datetime
    checker_id: int | None
    decision_reason: str | None
    decided_at: datetime | None
    result: dict[str, Any] | None = Field(description="What approving it did (ids, amounts)")
    error_code: str | None
    shown_once: dict[str, str] | None = Field(
        default=None, description="Only in the answer to the approval that ran it: what the checker hands on and "
                                  "is never shown again (a new staff account's or a reset's one-time password)")


def approval_view(request: ApprovalRequest) -> ApprovalView:
    action = ACTIONS[ActionKind(request.kind)]
    return ApprovalView(
        id=request.id, kind=action.kind, name_zh=action.name_zh, name_en=action.name_en, subject=request.subject,
        state=request.state.value, params=request.params_dict, figures=FiguresView(**request.figures_dict),
        maker_id=request.maker_id, maker_reason=request.maker_reason, created_at=request.created_at,
        checker_id=request.checker_id, decision_reason=request.decision_reason, decided_at=request.decided_at,
        result=request.result_dict, error_code=request.error_code)


class InboxItemView(BaseModel):
    source: Source
    id: str
    kind: str
    subject: str
    maker_id: int | None
    created_at: datetime
    age_seconds: int
    approve_permission: str
    link: str = Field(description="The API path where the item is read and decided")
    summary: dict[str, Any]


def _item(item: InboxItem) -> InboxItemView:
    return InboxItemView(**{name: getattr(item, name) for name in InboxItemView.model_fields})


# -- the inbox and the decisions -------------------------------------------------------------------------


@router.get("/v1/staff/approvals", summary="The maker-checker inbox: every pending four-eyes item you may approve")
def list_inbox(staff: AnyStaffOfApprovals, ports: ServicingPortsDep, order: Order = Order.OLDEST,
               mine: Annotated[bool, Query(description="Instead: what you proposed that still waits")] = False,
               ) -> list[InboxItemView]:
    return [_item(item) for item in inbox(ports, staff, order=order, mine=mine)]


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ActionKind
    loan_id: int | None = Field(default=None, ge=1, le=ROW_ID_MAX, strict=True)
    repayment_id: int | None = Field(default=None, ge=1, le=ROW_ID_MAX, strict=True)
    line_id: int | None = Field(default=None, ge=1, le=ROW_ID_MAX, strict=True)
    borrower_id: int | None = Field(default=None, ge=1, le=ROW_ID_MAX, strict=True)
    amount_fen: Fen | None = None
    limit_fen: Fen | None = None


# What each kind is given (the rest of PreviewBody's fields must be absent).
_PARAMS: dict[ActionKind, tuple[tuple[str, bool], ...]] = {  # (name, required)
    ActionKind.REFUND: (("loan_id", True), ("amount_fen", True)),
    ActionKind.REPAYMENT_REVERSAL: (("repayment_id", True),),
    ActionKind.WRITE_OFF: (("loan_id", True),),
    ActionKind.PENALTY_WAIVER: (("loan_id", True), ("amount_fen", False)),
    ActionKind.LINE_FREEZE: (("line_id", True),),
    ActionKind.LINE_UNFREEZE: (("line_id", True),),
    ActionKind.LINE_LIMIT: (("line_id", True), ("limit_fen", True)),
    ActionKind.ACCOUNT_CLOSURE: (("borrower_id", True),),
}


def _params_of(body: PreviewBody) -> dict[str, Any]:
    if body.kind not in _PARAMS:  # a kind with a form of its own (a staff-account change): no preview here
        raise DomainError(BackofficeErrors.APPROVAL_PARAMS_INVALID, params={"fields": "kind", "kind": body.kind.value})
    wanted = dict(_PARAMS[body.kind])
    given = body.model_dump(exclude={"kind"}, exclude_none=True)
    missing = [name for name, required in wanted.items() if required and name not in given]
    extra = [name for name in given if name not in wanted]
    if missing or extra:
        raise DomainError(BackofficeErrors.APPROVAL_PARAMS_INVALID,
                          params={"fields": ", ".join(missing + extra), "kind": body.kind.value})
    return given


class FiguresOut(BaseModel):
    kind: ActionKind
    subject: str
    before: dict[str, Any]
    after: dict[str, Any]
    params: dict[str, Any]


@router.post("/v1/staff/approvals/preview",
             summary="What a servicing action would change, before and after (shown before it is proposed)")
def preview(body: PreviewBody, staff: AnyMaker, ports: ServicingPortsDep) -> FiguresOut:
    figures = approvals.preview(ports, staff, body.kind, _params_of(body))
    return FiguresOut(kind=figures.kind, subject=figures.subject, before=figures.before, after=figures.after,
                      params=figures.params)


@router.get("/v1/staff/approvals/{approval_id}", summary="One maker-checker request with its figures and outcome")
def show(approval_id: RowId, staff: AnyStaffOfApprovals, ports: ServicingPortsDep) -> ApprovalView:
    return approval_view(approvals.get(ports, staff, approval_id))


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


@router.post("/v1/staff/approvals/{approval_id}/approve",
             summary="Approve another staff member's request: the action runs now (checker; never the maker)")
def approve(approval_id: RowId, staff: AnyChecker, ports: ServicingPortsDep, response: Response,
            body: ApproveBody = ApproveBody()) -> ApprovalView:
    request, once = approvals.approve_showing_once(ports, staff, approval_id, reason=body.reason)
    view = approval_view(request)
    if not once:
        return view
    response.headers.update({"Cache-Control": "no-store", "Pragma": "no-cache"})  # a secret, once
    return view.model_copy(update={"shown_once": once})


@router.post("/v1/staff/approvals/{approval_id}/reject", summary="Reject a request, with a reason (checker)")
def reject(approval_id: RowId, body: RejectBody, staff: AnyChecker, ports: ServicingPortsDep) -> ApprovalView:
    return approval_view(approvals.reject(ports, staff, approval_id, reason=body.reason))


class WithdrawBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


@router.post("/v1/staff/approvals/{approval_id}/withdraw",
             summary="Withdraw your own request while it still waits, with a reason (the maker only)")
def withdraw(approval_id: RowId, body: WithdrawBody, staff: AnyMaker, ports: ServicingPortsDep) -> ApprovalView:
    return approval_view(approvals.withdraw(ports, staff, approval_id, reason=body.reason))


# -- proposing -----------------------------------------------------------------------------------------------


def _propose(ports: Any, staff: StaffContext, kind: ActionKind, params: dict[str, Any], reason: str,
             key: str | None = None) -> ApprovalView:
    return approval_view(approvals.propose(ports, staff, kind, params, reason=reason, request_key=key))


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class RefundBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_fen: Fen
    reason: str = Field(min_length=2, max_length=200, description="Why; the borrower is shown it")


Refunder = Annotated[StaffContext, Depends(require_permission("payment.refund"))]
WriteOffMaker = Annotated[StaffContext, Depends(require_permission("loan.write_off"))]
ServicingMaker = Annotated[StaffContext, Depends(require_permission("servicing.propose"))]


@router.post("/v1/staff/loans/{loan_id}/refunds", status_code=202,
             summary="Propose paying back money the loan holds for the borrower (an overpayment) to their default "
                     "method (Idempotency-Key); a second staff member approves it")
def propose_refund(loan_id: RowId, body: RefundBody, staff: Refunder, ports: ServicingPortsDep,
                   idem: IdempotencyDep) -> ApprovalView:
    return idem.run(f"staff:{staff.actor}"[:64], status_code=202, handler=lambda: _propose(  # type: ignore[return-value]
        ports, staff, ActionKind.REFUND, {"loan_id": loan_id, "amount_fen": body.amount_fen}, body.reason, idem.key))


class ReversalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=200)


@router.post("/v1/staff/repayments/{repayment_id}/reverse", status_code=202,
             summary="Propose reversing a repayment by compensating entries (a chargeback, a mistaken posting; "
                     "Idempotency-Key); a second staff member approves it")
def propose_reversal(repayment_id: RowId, body: ReversalBody, staff: Refunder, ports: ServicingPortsDep,
                     idem: IdempotencyDep) -> ApprovalView:
    return idem.run(f"staff:{staff.actor}"[:64], status_code=202, handler=lambda: _propose(  # type: ignore[return-value]
        ports, staff, ActionKind.REPAYMENT_REVERSAL, {"repayment_id": repayment_id}, body.reason, idem.key))


@router.post("/v1/staff/loans/{loan_id}/write-off", status_code=202,
             summary="Propose writing off a loan more than 90 days past due (核销); a second staff member approves it")
def propose_write_off(loan_id: RowId, body: ReversalBody, staff: WriteOffMaker,
                      ports: ServicingPortsDep) -> ApprovalView:
    return _propose(ports, staff, ActionKind.WRITE_OFF, {"loan_id": loan_id}, body.reason)


class WaiverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_fen: Fen | None = Field(default=None, description="At most what is charged and unpaid; absent: all of it")
    reason: Reason


@router.post("/v1/staff/loans/{loan_id}/penalty-waivers", status_code=202,
             summary="Propose waiving penalty interest and late fees charged and unpaid on a loan (减免)")
def propose_waiver(loan_id: RowId, body: WaiverBody, staff: ServicingMaker, ports: ServicingPortsDep) -> ApprovalView:
    params: dict[str, Any] = {"loan_id": loan_id}
    if body.amount_fen is not None:
        params["amount_fen"] = body.amount_fen
    return _propose(ports, staff, ActionKind.PENALTY_WAIVER, params, body.reason)


@router.post("/v1/staff/credit-lines/{line_id}/freeze", status_code=202,
             summary="Propose freezing a credit line: nothing can be drawn on it; loans drawn run on")
def propose_freeze(line_id: RowId, body: ReasonBody, staff: ServicingMaker, ports: ServicingPortsDep) -> ApprovalView:
    return _propose(ports, staff, ActionKind.LINE_FREEZE, {"line_id": line_id}, body.reason)


@router.post("/v1/staff/credit-lines/{line_id}/unfreeze", status_code=202,
             summary="Propose unfreezing a frozen credit line")
def propose_unfreeze(line_id: RowId, body: ReasonBody, staff: ServicingMaker,
                     ports: ServicingPortsDep) -> ApprovalView:
    return _propose(ports, staff, ActionKind.LINE_UNFREEZE, {"line_id": line_id}, body.reason)


class LimitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit_fen: Fen
    reason: Reason


@router.post("/v1/staff/credit-lines/{line_id}/limit", status_code=202,
             summary="Propose a new limit for a line: within the credit policy, never below what is drawn")
def propose_limit(line_id: RowId, body: LimitBody, staff: ServicingMaker, ports: ServicingPortsDep) -> ApprovalView:
    return _propose(ports, staff, ActionKind.LINE_LIMIT, {"line_id": line_id, "limit_fen": body.limit_fen},
                    body.reason)


@router.post("/v1/staff/borrowers/{borrower_id}/closure", status_code=202,
             summary="Propose closing a borrower's account (销户) when nothing is owed either way")
def propose_closure(borrower_id: RowId, body: ReasonBody, staff: ServicingMaker,
                    ports: ServicingPortsDep) -> ApprovalView:
    return _propose(ports, staff, ActionKind.ACCOUNT_CLOSURE, {"borrower_id": borrower_id}, body.reason)
