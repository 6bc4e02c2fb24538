"""Maker-checker (四眼原则) for every servicing action: one staff member proposes, a different one approves or
rejects, and approving executes the action in the same transaction.

* **Propose** (:func:`propose`): the maker needs the kind's propose permission; the action's preview runs first
  (so an impossible proposal is refused at once, with the owning domain's error) and its before/after figures
  are stored with the request. One pending request per kind and subject (a second is refused with the first's
  id); under the maker's ``Idempotency-Key`` a retried proposal finds the request it made.
* **Approve** (:func:`approve`): the checker needs the kind's approve permission and must not be the maker —
  refused here, and by the table's CHECK constraint whatever code writes it. The request's row is locked
  (``SELECT … FOR UPDATE``; SQLite runs one writer at a time) and must still be pending, so two checkers
  approving at once execute the action exactly once: the second finds it decided. The action runs under a
  savepoint: if the domain refuses it now (the loan was repaid meanwhile, the line drawn on…), nothing it did
  remains and the request is ``failed`` with the refusal's code. A checker retrying their own approval gets
  the request as it was decided.
* **Reject** (:func:`reject`): a checker, with a reason.
* **Withdraw** (:func:`withdraw`): the maker takes their own request back while it is still pending, with a
  reason; nobody else may (``APPROVAL_NOT_MAKER``). It locks the row as approving does, so a withdrawal and an
  approval at the same moment end in exactly one of the two: the later finds it decided
  (``APPROVAL_NOT_PENDING``). ``withdrawn`` is final, has no checker, and nothing of the action ran.

Each step writes an audit entry in its transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.backoffice.actions import ACTIONS, ActionKind, Executed, ServicingPorts
from miaodai.backoffice.approval_models import ApprovalRequest, ApprovalState
from miaodai.backoffice.errors import BackofficeErrors
from miaodai.core.errors import DomainError
from miaodai.identity import rbac
from miaodai.identity.staff_errors import StaffErrors
from miaodai.identity.staff_service import StaffContext


@dataclass(frozen=True)
class Figures:
    """What an action would change, shown before it is proposed."""

    kind: ActionKind
    subject: str
    before: dict[str, Any]
    after: dict[str, Any]
    params: dict[str, Any]


def _require(staff: StaffContext, permission: str) -> None:
    if not rbac.is_allowed(staff.roles, permission):
        raise DomainError(BackofficeErrors.APPROVAL_NOT_ALLOWED, params={"permission": permission})


def preview(ports: ServicingPorts, staff: StaffContext, kind: ActionKind, params: dict[str, Any]) -> Figures:
    """The before/after figures of an action, as it would be proposed now (refused as proposing it would be)."""
    action = ACTIONS[kind]
    _require(staff, action.propose_permission)
    with ports.db.transaction() as session:
        shown = action.preview(session, ports, params)
    return Figures(kind, shown.subject, shown.before, shown.after, shown.params)


def _canonical(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def propose(ports: ServicingPorts, staff: StaffContext, kind: ActionKind, params: dict[str, Any], *, reason: str,
            request_key: str | None = None) -> ApprovalRequest:
    action = ACTIONS[kind]
    _require(staff, action.propose_permission)
    now = ports.clock.now()
    with ports.db.transaction() as session:
        if request_key is not None:
            made = session.execute(select(ApprovalRequest).where(
                ApprovalRequest.maker_id == staff.staff_id, ApprovalRequest.request_key == request_key)
            ).scalar_one_or_none()
            if made is not None:
                if made.kind != kind.value or not _same_params(made.params_dict, params):
                    raise DomainError(BackofficeErrors.APPROVAL_KEY_REUSED)
                return made
        shown = action.preview(session, ports, params)
        if shown.subject == staff.actor:
            raise DomainError(StaffErrors.NOT_ON_ONESELF)
        waiting = session.execute(select(ApprovalRequest.id).where(
            ApprovalRequest.kind == kind.value, ApprovalRequest.subject == shown.subject,
            ApprovalRequest.state == ApprovalState.PENDING).limit(1)).scalar_one_or_none()
        if waiting is not None:
            raise DomainError(BackofficeErrors.APPROVAL_ALREADY_PENDING,
                              params={"approval_id": waiting, "subject": shown.subject})
        request = ApprovalRequest(
            kind=kind.value, subject=shown.subject, params=_canonical(shown.params),
            figures=_canonical({"before": shown.before, "after": shown.after}), state=ApprovalState.PENDING,
            maker_id=staff.staff_id, maker_reason=reason, request_key=request_key, created_at=now)
        session.add(request)
        session.flush()
        ports.audit.record(session, actor=staff.actor, action="approval.proposed", subject=f"approval:{request.id}",
                           details={"kind": kind.value, "subject": shown.subject, "params": shown.params,
                                    "before": shown.before, "after": shown.after, "reason": reason})
    return request


def _same_params(stored: dict[str, Any], asked: dict[str, Any]) -> bool:
    """A retried proposal asks what the stored one was asked (the stored one may have filled defaults in)."""
    return all(stored.get(name) == value for name, value in asked.items() if value is not None)


def _locked(session: Session, approval_id: int) -> ApprovalRequest:
    request = session.execute(select(ApprovalRequest).where(ApprovalRequest.id == approval_id).with_for_update()
                              ).scalar_one_or_none()
    if request is None:
        raise DomainError(BackofficeErrors.APPROVAL_NOT_FOUND, params={"approval_id": approval_id})
    return request


def approve(ports: ServicingPorts, staff: StaffContext, approval_id: int, *, reason: str = "") -> ApprovalRequest:
    return approve_showing_once(ports, staff, approval_id, reason=reason)[0]


def approve_showing_once(ports: ServicingPorts, staff: StaffContext, approval_id: int, *, reason: str = ""
                         ) -> tuple[ApprovalRequest, dict[str, str]]:
    """:func:`approve`, and what the action hands the checker once (a new staff account's one-time password:
    never stored, so a retried approval does not show it again)."""
    executed: Executed | None = None
    with ports.db.transaction() as session:
        request = _locked(session, approval_id)
        action = ACTIONS[ActionKind(request.kind)]
        _require(staff, action.approve_permission)
        if request.maker_id == staff.staff_id:
            raise DomainError(BackofficeErrors.APPROVAL_OWN_REQUEST)
        if request.subject == staff.actor:
            raise DomainError(StaffErrors.NOT_ON_ONESELF)
        if request.state is not ApprovalState.PENDING:
            if request.state in (ApprovalState.APPROVED, ApprovalState.FAILED) and request.checker_id == staff.staff_id:
                return request, {}  # this checker's approval again (a retry): as it was decided
            raise DomainError(BackofficeErrors.APPROVAL_NOT_PENDING, params={"state": request.state.value})
        try:
            with session.begin_nested():  # a refusal now leaves nothing of the action behind
                executed = action.execute(session, ports, request, staff.actor)
        except DomainError as refused:
            request.state, request.error_code = ApprovalState.FAILED, refused.code
        else:
            request.state, request.result = ApprovalState.APPROVED, _canonical(executed.result)
        _decide(request, staff, reason, ports.clock.now())
        ports.audit.record(session, actor=staff.actor, action=f"approval.{request.state.value}",
                           subject=f"approval:{request.id}",
                           details={"kind": request.kind, "subject": request.subject, "maker_id": request.maker_id,
                                    "reason": reason, "error_code": request.error_code,
                                    "result": executed.result if executed else None})
    if executed is not None and executed.after_commit is not None:
        executed.after_commit()
    return request, dict(executed.once) if executed is not None and request.state is ApprovalState.APPROVED else {}


def reject(ports: ServicingPorts, staff: StaffContext, approval_id: int, *, reason: str) -> ApprovalRequest:
    with ports.db.transaction() as session:
        request = _locked(session, approval_id)
        _require(staff, ACTIONS[ActionKind(request.kind)].approve_permission)
        if request.maker_id == staff.staff_id:
            raise DomainError(BackofficeErrors.APPROVAL_OWN_REQUEST)
        if request.state is not ApprovalState.PENDING:
            raise DomainError(BackofficeErrors.APPROVAL_NOT_PENDING, params={"state": request.state.value})
        request.state = ApprovalState.REJECTED
        _decide(request, staff, reason, ports.clock.now())
        ports.audit.record(session, actor=staff.actor, action="approval.rejected", subject=f"approval:{request.id}",
                           details={"kind": request.kind, "subject": request.subject, "maker_id": request.maker_id,
                                    "reason": reason})
    return request


def withdraw(ports: ServicingPorts, staff: StaffContext, approval_id: int, *, reason: str) -> ApprovalRequest:
    """The maker takes their pending request back (nothing of it runs). Their retry gets it as withdrawn."""
    with ports.db.transaction() as session:
        request = _locked(session, approval_id)
        _require(staff, ACTIONS[ActionKind(request.kind)].propose_permission)
        if request.maker_id != staff.staff_id:
            raise DomainError(BackofficeErrors.APPROVAL_NOT_MAKER)
        if request.state is not ApprovalState.PENDING:
            if request.state is ApprovalState.WITHDRAWN:
                return request  # the maker's withdrawal again (a retry): as it was
            raise DomainError(BackofficeErrors.APPROVAL_NOT_PENDING, params={"state": request.state.value})
        request.state = ApprovalState.WITHDRAWN
        request.decision_reason, request.decided_at = reason, ports.clock.now()  # no checker: the maker's own act
        ports.audit.record(session, actor=staff.actor, action="approval.withdrawn", subject=f"approval:{request.id}",
                           details={"kind": request.kind, "subject": request.subject, "reason": reason})
    return request


def _decide(request: ApprovalRequest, staff: StaffContext, reason: str, now: datetime) -> None:
    request.checker_id, request.decision_reason, request.decided_at = staff.staff_id, reason, now


def get(ports: ServicingPorts, staff: StaffContext, approval_id: int) -> ApprovalRequest:
    """One request, for whoever may propose or approve its kind."""
    with ports.db.transaction() as session:
        request = session.get(ApprovalRequest, approval_id)
        if request is None:
            raise DomainError(BackofficeErrors.APPROVAL_NOT_FOUND, params={"approval_id": approval_id})
    action = ACTIONS[ActionKind(request.kind)]
    if not (rbac.is_allowed(staff.roles, action.approve_permission)
            or rbac.is_allowed(staff.roles, action.propose_permission)):
        raise DomainError(BackofficeErrors.APPROVAL_NOT_ALLOWED, params={"permission": action.approve_permission})
    return request
