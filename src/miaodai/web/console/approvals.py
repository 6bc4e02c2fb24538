"""The maker-checker desk (待审批): the one inbox of every pending four-eyes item, a request's page with its
before/after figures and the approve/reject forms, and proposing a servicing action after seeing its figures.

The rules are the back office's (:mod:`miaodai.backoffice.approvals`): who may propose and approve each kind,
never the maker approving, never about oneself. The inbox lists what the signed-in staff member may approve (and,
on its second tab, what they proposed that still waits). Items kept in other tables are decided here too, through
their own services (manual credit lines, rulesets, model promotions), except review overrides, which open the
review case.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from miaodai.backoffice import approvals
from miaodai.backoffice.actions import ACTIONS, ActionKind
from miaodai.backoffice.approval_models import ApprovalState
from miaodai.backoffice.inbox import Order, Source, inbox
from miaodai.core.errors import DomainError, Errors
from miaodai.core.fields import RowId
from miaodai.core.money import Money
from miaodai.credit import policy_admin
from miaodai.identity import rbac
from miaodai.identity.staff_errors import StaffErrors
from miaodai.identity.staff_service import StaffContext
from miaodai.loans import line_service
from miaodai.web.console.core import (
    PREFIX,
    SIGNED_IN,
    _,
    container_of,
    csrf_protect,
    gettext,
    locale_of,
    menu_item,
    redirect,
    render,
    require,
)

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

# Whoever proposes or approves anything four-eyes sees the inbox (what each may decide is filtered per item).
FOUR_EYES = tuple(sorted({a.approve_permission.value for a in ACTIONS.values()}
                         | {a.propose_permission.value for a in ACTIONS.values()}
                         | {"credit_line.approve", "credit_line.propose", "review.approve_override",
                            "credit_policy.approve", "credit_policy.propose"}))
menu_item(f"{PREFIX}/approvals", _("Approvals"), FOUR_EYES)

Staff = Annotated[StaffContext, Depends(SIGNED_IN)]
LineChecker = Annotated[StaffContext, Depends(require("credit_line.approve"))]
PolicyChecker = Annotated[StaffContext, Depends(require("credit_policy.approve"))]
Reason = Annotated[str, Form(max_length=500)]
MIN_REASON = 4

SOURCE_LABELS = {
    Source.CREDIT_LINE_PROPOSAL: _("Manual credit line"), Source.REVIEW_OVERRIDE: _("Review override"),
    Source.RULESET: _("Credit ruleset"), Source.MODEL_PROMOTION: _("Model promotion"),
}
STATE_LABELS = {ApprovalState.PENDING: _("Awaiting a second person"), ApprovalState.APPROVED: _("Approved and done"),
                ApprovalState.REJECTED: _("Rejected by the checker"), ApprovalState.FAILED: _("Approved, not possible"),
                ApprovalState.WITHDRAWN: _("Withdrawn by the maker")}
NOTICES = {
    "proposed": _("Proposed: it waits in the inbox for a second person."),
    "rejected": _("Rejected: nothing changed."),
    "approved": _("Approved: it has been carried out."),
    "failed": _("Not carried out: it was no longer possible when approved; nothing changed."),
    "decided": _("Decided."),
    "withdrawn": _("Withdrawn: nothing changed, and it no longer waits for anyone."),
}


def kind_name(request: Request, kind: str) -> str:
    """An action kind's name in the page's language (a back-office kind) or the other tables' label."""
    if kind in ActionKind.__members__.values():
        action = ACTIONS[ActionKind(kind)]
        return action.name_zh if locale_of(request) == "zh_CN" else action.name_en
    if kind in Source.__members__.values() and Source(kind) in SOURCE_LABELS:
        return gettext(request, SOURCE_LABELS[Source(kind)])
    return kind


def _notice(request: Request) -> str | None:
    key = request.query_params.get("done")
    return gettext(request, NOTICES[key]) if key in NOTICES else None


def _reason_ok(reason: str) -> str:
    if len(reason.strip()) < MIN_REASON:
        raise DomainError(StaffErrors.REASON_REQUIRED, params={"min_length": MIN_REASON})
    return reason.strip()


@router.get("/approvals", response_class=HTMLResponse)
def inbox_page(request: Request, staff: Staff, mine: str | None = None) -> HTMLResponse:
    items = inbox(container_of(request), staff, order=Order.OLDEST, mine=bool(mine))
    return render(request, "console/approvals.html", staff=staff, items=items, mine=bool(mine),
                  name=lambda kind: kind_name(request, kind), notice=_notice(request), Source=Source)


@router.get("/approvals/{approval_id}", response_class=HTMLResponse)
def request_page(request: Request, approval_id: RowId, staff: Staff, error: DomainError | None = None,
                 shown_once: dict[str, str] | None = None) -> HTMLResponse:
    item = approvals.get(container_of(request), staff, approval_id)
    action = ACTIONS[ActionKind(item.kind)]
    may_decide = (item.state is ApprovalState.PENDING and item.maker_id != staff.staff_id
                  and rbac.is_allowed(staff.roles, action.approve_permission) and item.subject != staff.actor)
    may_withdraw = (item.state is ApprovalState.PENDING and item.maker_id == staff.staff_id
                    and rbac.is_allowed(staff.roles, action.propose_permission))
    figures = item.figures_dict
    keys = sorted(set(figures.get("before", {})) | set(figures.get("after", {})))
    return render(request, "console/approval.html", staff=staff, error=error, item=item,
                  name=kind_name(request, item.kind), keys=keys, before=figures.get("before", {}),
                  after=figures.get("after", {}), may_decide=may_decide, may_withdraw=may_withdraw,
                  notice=_notice(request),
                  state_label=gettext(request, STATE_LABELS[item.state]), shown_once=shown_once)


@router.post("/approvals/{approval_id}/approve", response_class=HTMLResponse)
def approve(request: Request, approval_id: RowId, staff: Staff, reason: Reason = "") -> Response:
    try:
        item, once = approvals.approve_showing_once(container_of(request), staff, approval_id, reason=reason.strip())
    except DomainError as error:
        return request_page(request, approval_id, staff, error=error)
    if once:  # shown on this answer only: never in a URL, never again
        response = request_page(request, approval_id, staff, shown_once=once)
        response.headers["Pragma"] = "no-cache"
        return response
    done = "approved" if item.state is ApprovalState.APPROVED else "failed"
    return redirect(request, f"{PREFIX}/approvals/{approval_id}?done={done}")


@router.post("/approvals/{approval_id}/reject", response_class=HTMLResponse)
def reject(request: Request, approval_id: RowId, staff: Staff, reason: Reason = "") -> Response:
    try:
        approvals.reject(container_of(request), staff, approval_id, reason=_reason_ok(reason))
    except DomainError as error:
        return request_page(request, approval_id, staff, error=error)
    return redirect(request, f"{PREFIX}/approvals/{approval_id}?done=rejected")


@router.post("/approvals/{approval_id}/withdraw", response_class=HTMLResponse)
def withdraw(request: Request, approval_id: RowId, staff: Staff, reason: Reason = "") -> Response:
    """The maker takes their own pending request back (the service refuses anyone else)."""
    try:
        approvals.withdraw(container_of(request), staff, approval_id, reason=_reason_ok(reason))
    except DomainError as error:
        return request_page(request, approval_id, staff, error=error)
    return redirect(request, f"{PREFIX}/approvals/{approval_id}?done=withdrawn")


# -- proposing a servicing action: its figures first ------------------------------------------------------

PARAMS = ("loan_id", "repayment_id", "line_id", "borrower_id")


def _params(values: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in PARAMS:
        value = values.get(name)
        if value not in (None, ""):
            if not str(value).isdigit() or len(str(value)) > 18:
                raise DomainError(StaffErrors.UNKNOWN_CHANGE, params={"change": name})
            params[name] = int(str(value))
    for name in ("amount_yuan", "limit_yuan"):
        value = str(values.get(name) or "").strip()
        if value:
            params[name.replace("_yuan", "_fen")] = Money.from_yuan(value).fen
    return params


# What each servicing action needs before its figures can be shown (the rest of the form asks for it).
REQUIRED = {
    ActionKind.REFUND: ("loan_id", "amount_fen"), ActionKind.REPAYMENT_REVERSAL: ("repayment_id",),
    ActionKind.WRITE_OFF: ("loan_id",), ActionKind.PENALTY_WAIVER: ("loan_id",), ActionKind.LINE_FREEZE: ("line_id",),
    ActionKind.LINE_UNFREEZE: ("line_id",), ActionKind.LINE_LIMIT: ("line_id", "limit_fen"),
    ActionKind.ACCOUNT_CLOSURE: ("borrower_id",),
}


def _complete(kind: ActionKind, params: dict[str, Any]) -> bool:
    return all(name in params for name in REQUIRED[kind])


def _kind(value: str) -> ActionKind:
    if value not in ActionKind.__members__.values() or ActionKind(value) not in REQUIRED:
        raise DomainError(StaffErrors.UNKNOWN_CHANGE, params={"change": value[:32]})
    return ActionKind(value)


@router.get("/servicing", response_class=HTMLResponse)
def servicing_form(request: Request, staff: Staff, kind: str = "") -> HTMLResponse:
    """The figures an action would change, and the form to propose it (reached from the customer page)."""
    values = dict(request.query_params)
    figures = None
    error = None
    try:
        action_kind = _kind(kind)
        params = _params(values)
        if _complete(action_kind, params):
            figures = approvals.preview(container_of(request), staff, action_kind, params)
    except DomainError as refused:
        error = refused
    return render(request, "console/servicing.html", staff=staff, error=error, kind=kind, values=values,
                  figures=figures, name=kind_name(request, kind) if figures else kind,
                  keys=sorted(set(figures.before) | set(figures.after)) if figures else [])


@router.post("/servicing", response_class=HTMLResponse)
def propose(request: Request, staff: Staff, kind: Annotated[str, Form(max_length=40)] = "",
            loan_id: Annotated[str, Form(max_length=20)] = "", repayment_id: Annotated[str, Form(max_length=20)] = "",
            line_id: Annotated[str, Form(max_length=20)] = "", borrower_id: Annotated[str, Form(max_length=20)] = "",
            amount_yuan: Annotated[str, Form(max_length=20)] = "", limit_yuan: Annotated[str, Form(max_length=20)] = "",
            reason: Reason = "") -> Response:
    values = {"loan_id": loan_id, "repayment_id": repayment_id, "line_id": line_id, "borrower_id": borrower_id,
              "amount_yuan": amount_yuan, "limit_yuan": limit_yuan}
    try:
        action_kind, params = _kind(kind), _params(values)
        if not _complete(action_kind, params):
            raise DomainError(Errors.VALIDATION_FAILED, params={"fields": ", ".join(REQUIRED[action_kind])})
        made = approvals.propose(container_of(request), staff, action_kind, params, reason=_reason_ok(reason))
    except DomainError as error:
        return render(request, "console/servicing.html", staff=staff, error=error, kind=kind,
                      values={**values, "kind": kind, "reason": reason}, figures=None, name=kind, keys=[])
    return redirect(request, f"{PREFIX}/approvals/{made.id}?done=proposed")


# -- the items other tables keep -------------------------------------------------------------------------


Decision = Literal["approve", "reject"]


@router.post("/approvals/line-proposals/{proposal_id}/{decision}")
def decide_line(request: Request, proposal_id: RowId, decision: Decision, staff: LineChecker,
                reason: Reason = "") -> Response:
    line_service.decide(container_of(request), staff, proposal_id, approve=decision == "approve",
                        note=reason.strip())
    return redirect(request, f"{PREFIX}/approvals?done=decided")


@router.post("/approvals/rulesets/{version}/{decision}")
def decide_ruleset(request: Request, version: str, decision: Decision, staff: PolicyChecker) -> Response:
    policy_admin.decide_ruleset(container_of(request), staff, version[:32], approve=decision == "approve")
    return redirect(request, f"{PREFIX}/approvals?done=decided")


@router.post("/approvals/models/{model_id}/approve")
def approve_model(request: Request, model_id: str, staff: PolicyChecker) -> Response:
    policy_admin.approve_promotion(container_of(request), staff, model_id[:64])
    return redirect(request, f"{PREFIX}/approvals?done=decided")
