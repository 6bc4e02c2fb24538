"""The registry of servicing actions that go through maker-checker (:mod:`miaodai.backoffice.approvals`).

Each kind has a permission to propose it and one to approve it (``identity/data/roles.toml``), a *preview* —
what it would change, before and after, computed from the books as they are (and refused there and then if it
is not possible) — and an *execute* function that runs it through the owning domain's service in the approving
transaction. Nothing here writes another domain's tables: money moves through the loans engine and the ledger,
orders through payments, the account's status through identity.

Parameters are plain JSON values (validated by the routers): ``loan_id``, ``repayment_id``, ``line_id``,
``borrower_id``, ``amount_fen``, ``limit_fen``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Protocol

from fastapi import Depends
from sqlalchemy.orm import Session

from miaodai.backoffice import staff_actions
from miaodai.backoffice.approval_models import ApprovalRequest
from miaodai.backoffice.errors import BackofficeErrors
from miaodai.core.errors import DomainError
from miaodai.core.http import app_platform
from miaodai.core.money import Money
from miaodai.credit.pending_approvals import line_limit_policy
from miaodai.credit.ports import CreditPorts
from miaodai.credit.registry import PolicyCache
from miaodai.identity.account_closure import borrower_status, close_account_in
from miaodai.identity.models import BorrowerStatus
from miaodai.identity.rbac import Permission
from miaodai.ledger.service import loan_subledger
from miaodai.loans import repayment_service, servicing, write_off
from miaodai.loans.errors import LoanErrors
from miaodai.loans.models import Loan
from miaodai.loans.states import LineStatus, LoanStatus, check_transition
from miaodai.payments import collections, orders
from miaodai.payments.errors import PaymentErrors
from miaodai.payments.in_flight import order_in_flight
from miaodai.payments.ports import PaymentPorts


class ServicingPorts(CreditPorts, PaymentPorts, Protocol):
    """What the back office's services are given: credit's port (the policy a line's limit must keep) and
    payments' (a refund is a payout order). ``miaodai.container.Container`` satisfies it."""

    @property
    def credit_policy(self) -> PolicyCache: ...


ServicingPortsDep = Annotated[ServicingPorts, Depends(app_platform)]


class ActionKind(StrEnum):
    REFUND = "refund"
    REPAYMENT_REVERSAL = "repayment_reversal"
    WRITE_OFF = "write_off"
    PENALTY_WAIVER = "penalty_waiver"
    LINE_FREEZE = "line_freeze"
    LINE_UNFREEZE = "line_unfreeze"
    LINE_LIMIT = "line_limit"
    ACCOUNT_CLOSURE = "account_closure"
    # Staff accounts (identity.staff_admin; backoffice.staff_actions).
    STAFF_CREATE = "staff_create"
    STAFF_DISABLE = "staff_disable"
    STAFF_ENABLE = "staff_enable"
    STAFF_RESET_PASSWORD = "staff_reset_password"  # noqa: S105 - an action's name, not a secret
    STAFF_RESET_TOTP = "staff_reset_totp"
    STAFF_GRANT_ROLE = "staff_grant_role"
    STAFF_REVOKE_ROLE = "staff_revoke_role"


@dataclass(frozen=True)
class Preview:
    """What an action would do: its subject, the figures before and after, and its parameters as they will be
    executed (a waiver of "all" gets its amount here)."""

    subject: str
    before: dict[str, Any]
    after: dict[str, Any]
    params: dict[str, Any]


@dataclass(frozen=True)
class Executed:
    """What executing an action did (kept on the request), and what to do once the transaction has committed
    (a refund's payout order is sent to the channel only then)."""

    result: dict[str, Any]
    after_commit: Callable[[], Any] | None = field(default=None, compare=False)
    # Shown to the checker once and never stored (a new staff account's one-time password).
    once: dict[str, str] = field(default_factory=dict, compare=False)


PreviewFn = Callable[[Session, ServicingPorts, dict[str, Any]], Preview]
ExecuteFn = Callable[[Session, ServicingPorts, ApprovalRequest, str], Executed]


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    propose_permission: Permission
    approve_permission: Permission
    name_zh: str
    name_en: str
    preview: PreviewFn
    execute: ExecuteFn


# -- refund -------------------------------------------------------------------------------------------------


def _loan(session: Session, loan_id: int) -> Loan:
    loan = session.get(Loan, loan_id)
    if loan is None:
        raise DomainError(LoanErrors.LOAN_NOT_FOUND, params={"loan_id": loan_id})
    return loan


def _refund_preview(session: Session, ports: ServicingPorts, params: dict[str, Any]) -> Preview:
    loan = _loan(session, params["loan_id"])
    amount = params["amount_fen"]
    if amount > loan.overpayment_fen:
        raise DomainError(PaymentErrors.REFUND_MORE_THAN_HELD, params={
            "amount_yuan": Money(amount).to_yuan(), "held_yuan": Money(loan.overpayment_fen).to_yuan()})
    orders.payout_method(session, loan.borrower_id)  # PAYMENT_PAYOUT_METHOD_REQUIRED when there is none
    return Preview(f"loan:{loan.id}", {"overpayment_fen": loan.overpayment_fen},
                   {"overpayment_fen": loan.overpayment_fen - amount, "refund_fen": amount}, dict(params))


def _refund(session: Session, ports: ServicingPorts, request: ApprovalRequest, actor: str) -> Executed:
    params = request.params_dict
    order = collections.order_refund_in(session, ports, params["loan_id"], params["amount_fen"],
                                        key=f"approval:{request.id}", reason=request.maker_reason, actor=actor)
    order_id = order.id
    return Executed({"order_no": order.order_no, "amount_fen": order.amount_fen},
                    after_commit=lambda: orders.send(ports, order_id))


# -- repayment reversal -----------------------------------------------------------------------------------


def _reversal_preview(session: Session, ports: ServicingPorts, params: dict[str, Any]) -> Preview:
    loan_id, before, after = repayment_service.reversal_preview(session, params["repayment_id"])
    return Preview(f"repayment:{params['repayment_id']}", before, after, {**params, "loan_id": loan_id})


def _reversal(session: Session, ports: ServicingPorts, request: ApprovalRequest, actor: str) -> Executed:
    reversal = repayment_service.reverse_repayment_in(
        session, ports, request.params_dict["repayment_id"], idempotency_key=f"approval:{request.id}", actor=actor,
        reason=request.maker_reason)
    return Executed({"reversal_id": reversal.id, "loan_id": reversal.loan_id, "amount_fen": reversal.amount_fen,
                     "journal_entry_id": reversal.journal_entry_id})


# -- write-off --------------------------------------------------------------------------------------------


def _write_off_preview(session: Session, ports: ServicingPorts, params: dict[str, Any]) -> Preview:
    loan = _loan(session, params["loan_id"])
    check_transition(loan.status, LoanStatus.WRITTEN_OFF)
    if loan.days_past_due <= write_off.MINIMUM_DAYS_PAST_DUE:
        raise DomainError(LoanErrors.WRITE_OFF_TOO_EARLY, params={
            "days_past_due": loan.days_past_due, "minimum_days": write_off.MINIMUM_DAYS_PAST_DUE})
    owed = loan_subledger(session, loan.id)
    before = {"status": loan.status.value, "days_past_due": loan.days_past_due,
              "principal_fen": owed.principal_fen, "interest_fen": owed.interest_fen, "fee_fen": owed.fee_fen,
              "penalty_fen": owed.penalty_fen, "overpayment_fen": owed.overpayment_fen}
    lost = owed.principal_fen + owed.interest_fen + owed.fee_fen + owed.penalty_fen - owed.overpayment_fen
    after = {**before, "status": LoanStatus.WRITTEN_OFF.value, "principal_fen": 0, "interest_fen": 0, "fee_fen": 0,
             "penalty_fen": 0, "overpayment_fen": 0, "written_off_fen": lost}
    return Preview(f"loan:{loan.id}", before, after, dict(params))


def _write_off(session: Session, ports: ServicingPorts, request: ApprovalRequest, actor: str) -> Executed:
    loan = write_off.write_off_in(session, ports, request.params_dict["loan_id"], actor=actor,
                                  reason=request.maker_reason)
    return Executed({"loan_id": loan.id, "status": loan.status.value, "days_past_due": loan.days_past_due})


# -- penalty waiver ----------------------------------------------------------------------------------------


def _waiver_preview(session: Session, ports: ServicingPorts, params: dict[str, Any]) -> Preview:
    figures = servicing.waiver_preview(session, params["loan_id"], params.get("amount_fen"))
    return Preview(f"loan:{figures.loan_id}", figures.before, figures.after,
                   {**params, "amount_fen": figures.amount_fen})


def _waiver(session: Session, ports: ServicingPorts, request: ApprovalRequest, actor: str) -> Executed:
    params = request.params_dict
    figures = servicing.waive_penalty_in(session, ports, params["loan_id"], params["amount_fen"],
                                         key=f"approval:{request.id}", actor=actor, reason=request.maker_reason)
    return Executed({"loan_id": figures.loan_id, "waived_fen": figures.amount_fen, **figures.after})


# -- credit lines ------------------------------------------------------------------------------------------


def _status_preview(target: LineStatus) -> PreviewFn:
    def preview(session: Session, ports: ServicingPorts, params: dict[str, Any]) -> Preview:
        line, before, after = servicing.status_preview(session, params["line_id"], target)
        return Preview(f"credit_line:{line.id}", before, after, dict(params))

    return preview


def _status_change(target: LineStatus) -> ExecuteFn:
    def execute(session: Session, ports: ServicingPorts, request: ApprovalRequest, actor: str) -> Executed:
        line = servicing.set_line_status_in(session, ports, request.params_dict["line_id"], target, actor=actor,
                                            reason=request.maker_reason)
        return Executed({"line_id": line.id, "status": line.status.value})

    return execute


def _limit_preview(session: Session, ports: ServicingPorts, params: dict[str, Any]) -> Preview:
    line = servicing.line_of(session, params["line_id"])
    policy_max, step = line_limit_policy(session, ports.credit_policy, line)
    line, before, after = servicing.limit_preview(session, line.id, params["limit_fen"], policy_max_fen=policy_max,
                                                  step_fen=step)
    return Preview(f"credit_line:{line.id}", before, after, dict(params))


def _limit(session: Session, ports: ServicingPorts, request: ApprovalRequest, actor: str) -> Executed:
    params = request.params_dict
    line = servicing.line_of(session, params["line_id"], lock=True)
    policy_max, step = line_limit_policy(session, ports.credit_policy, line)
    line = servicing.adjust_limit_in(session, ports, line.id, params["limit_fen"], policy_max_fen=policy_max,
                                     step_fen=step, actor=actor, reason=request.maker_reason)
    return Executed({"line_id": line.id, "limit_fen": line.limit_fen, "available_fen": line.available_fen})


# -- account closure ---------------------------------------------------------------------------------------


def _closable(session: Session, borrower_id: int, *, lock: bool) -> None:
    status = borrower_status(session, borrower_id, lock=lock)
    if status is None:
        raise DomainError(LoanErrors.BORROWER_NOT_FOUND, params={"borrower_id": borrower_id})
    if status is BorrowerStatus.CLOSED:
        raise DomainError(BackofficeErrors.ACCOUNT_ALREADY_CLOSED)
    open_loans = servicing.loans_keeping_account_open(session, borrower_id)
    if open_loans:
        raise DomainError(BackofficeErrors.ACCOUNT_HAS_OPEN_LOANS,
                          params={"loan_ids": ", ".join(str(i) for i in open_loans)})
    in_flight = order_in_flight(session, borrower_id)
    if in_flight is not None:
        raise DomainError(BackofficeErrors.ACCOUNT_HAS_ORDERS_IN_FLIGHT, params={"order_no": in_flight})


def _closure_preview(session: Session, ports: ServicingPorts, params: dict[str, Any]) -> Preview:
    borrower_id = params["borrower_id"]
    _closable(session, borrower_id, lock=False)
    lines = [line for line in servicing.borrower_lines(session, borrower_id) if line.status is not LineStatus.CLOSED]
    return Preview(f"borrower:{borrower_id}", {"status": BorrowerStatus.ACTIVE.value, "open_lines": len(lines)},
                   {"status": BorrowerStatus.CLOSED.value, "open_lines": 0}, dict(params))


def _closure(session: Session, ports: ServicingPorts, request: ApprovalRequest, actor: str) -> Executed:
    borrower_id = request.params_dict["borrower_id"]
    _closable(session, borrower_id, lock=True)  # the borrower's row lock: no login or drawdown slips in
    lines = servicing.close_lines_in(session, ports, borrower_id, actor=actor, reason=request.maker_reason)
    revoked = close_account_in(session, ports, borrower_id, actor=actor, reason=request.maker_reason)
    return Executed({"borrower_id": borrower_id, "lines_closed": lines, "sessions_revoked": revoked})


# -- staff accounts ----------------------------------------------------------------------------------------


def _staff_preview(preview: staff_actions.PreviewOf) -> PreviewFn:
    def adapted(session: Session, ports: ServicingPorts, params: dict[str, Any]) -> Preview:
        subject, before, after, clean = preview(session, params)
        return Preview(subject, before, after, clean)

    return adapted


def _staff_execute(execute: staff_actions.ExecuteOf) -> ExecuteFn:
    def adapted(session: Session, ports: ServicingPorts, request: ApprovalRequest, actor: str) -> Executed:
        result, once = execute(session, ports, request, actor)
        return Executed(result, once=once)

    return adapted


def _staff_change(kind: ActionKind, change: str, name_zh: str, name_en: str) -> Action:
    return Action(kind, Permission.STAFF_MANAGE, Permission.STAFF_APPROVE, name_zh, name_en,
                  _staff_preview(staff_actions.change_preview(change)),
                  _staff_execute(staff_actions.change_execute(change)))


P = Permission
ACTIONS: dict[ActionKind, Action] = {action.kind: action for action in (
    Action(ActionKind.REFUND, P.PAYMENT_REFUND, P.PAYMENT_REFUND, "退还溢缴款", "Refund of held money",
           _refund_preview, _refund),
    Action(ActionKind.REPAYMENT_REVERSAL, P.PAYMENT_REFUND, P.PAYMENT_REFUND, "还款冲正", "Repayment reversal",
           _reversal_preview, _reversal),
    Action(ActionKind.WRITE_OFF, P.LOAN_WRITE_OFF, P.LOAN_WRITE_OFF, "核销", "Write-off",
           _write_off_preview, _write_off),
    Action(ActionKind.PENALTY_WAIVER, P.SERVICING_PROPOSE, P.SERVICING_APPROVE, "减免罚息及滞纳金",
           "Waiver of penalty interest and late fees", _waiver_preview, _waiver),
    Action(ActionKind.LINE_FREEZE, P.SERVICING_PROPOSE, P.SERVICING_APPROVE, "冻结额度", "Freeze a credit line",
           _status_preview(LineStatus.FROZEN), _status_change(LineStatus.FROZEN)),
    Action(ActionKind.LINE_UNFREEZE, P.SERVICING_PROPOSE, P.SERVICING_APPROVE, "解冻额度", "Unfreeze a credit line",
           _status_preview(LineStatus.ACTIVE), _status_change(LineStatus.ACTIVE)),
    Action(ActionKind.LINE_LIMIT, P.SERVICING_PROPOSE, P.SERVICING_APPROVE, "调整额度", "Adjust a line's limit",
           _limit_preview, _limit),
    Action(ActionKind.ACCOUNT_CLOSURE, P.SERVICING_PROPOSE, P.SERVICING_APPROVE, "销户", "Close the account",
           _closure_preview, _closure),
    Action(ActionKind.STAFF_CREATE, P.STAFF_MANAGE, P.STAFF_APPROVE, "新建员工账户", "Create a staff account",
           _staff_preview(staff_actions.create_preview), _staff_execute(staff_actions.create_execute)),
    _staff_change(ActionKind.STAFF_DISABLE, "disable", "停用员工账户", "Disable a staff account"),
    _staff_change(ActionKind.STAFF_ENABLE, "enable", "启用员工账户", "Re-enable a staff account"),
    _staff_change(ActionKind.STAFF_RESET_PASSWORD, "reset_password", "重置员工密码", "Reset a staff password"),
    _staff_change(ActionKind.STAFF_RESET_TOTP, "reset_totp", "重置身份验证器", "Reset a staff authenticator"),
    _staff_change(ActionKind.STAFF_GRANT_ROLE, "grant_role", "授予角色", "Grant a role"),
    _staff_change(ActionKind.STAFF_REVOKE_ROLE, "revoke_role", "撤销角色", "Revoke a role"),
)}
