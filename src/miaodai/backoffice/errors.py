"""Errors of the back office: the maker-checker requests and the servicing actions that cross domains."""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec


class BackofficeErrors:
    APPROVAL_NOT_FOUND = ErrorSpec(
        "APPROVAL_NOT_FOUND", 404, "Approval request not found",
        "没有编号为 {approval_id} 的待审批事项。", "There is no approval request {approval_id}.",
        "请刷新审批收件箱。", "Refresh the approvals inbox.",
    )
    APPROVAL_OWN_REQUEST = ErrorSpec(
        "APPROVAL_OWN_REQUEST", 403, "Maker-checker: another staff member must approve",
        "您不能审批自己提出的事项（四眼原则）。", "You cannot approve a request you proposed yourself (four eyes).",
        "请由另一位有审批权限的同事审批；如需撤回，请在该事项页面撤回。",
        "Ask another colleague who may approve it; to take it back, withdraw it on its page.",
    )
    APPROVAL_NOT_PENDING = ErrorSpec(
        "APPROVAL_NOT_PENDING", 409, "Approval request already decided",
        "该事项已处理（状态：{state}）。", "This request has already been decided (state: {state}).",
        "请刷新页面查看处理结果。", "Refresh to see how it was decided.",
    )
    APPROVAL_NOT_MAKER = ErrorSpec(
        "APPROVAL_NOT_MAKER", 403, "Only the maker may withdraw a request",
        "只有提出该事项的人可以撤回它。", "Only the staff member who proposed this request may withdraw it.",
        "如认为不应执行，请以审批人身份驳回并说明原因。", "If it should not be carried out, reject it as a checker, with a reason.",
    )
    APPROVAL_NOT_ALLOWED = ErrorSpec(
        "APPROVAL_NOT_ALLOWED", 403, "Not allowed for this kind of request",
        "您的角色不能处理此类事项（需要权限 {permission}）。",
        "Your roles may not do this for this kind of request (it needs {permission}).",
        "请交由有相应权限的同事处理。", "Pass it to a colleague who holds that permission.",
    )
    APPROVAL_KEY_REUSED = ErrorSpec(
        "APPROVAL_KEY_REUSED", 422, "Idempotency-Key already used for another proposal",
        "此 Idempotency-Key 已用于另一个不同的提议。", "This Idempotency-Key was already used for a different proposal.",
        "新的提议请使用新的 Idempotency-Key。", "Use a new Idempotency-Key for a new proposal.",
    )
    APPROVAL_ALREADY_PENDING = ErrorSpec(
        "APPROVAL_ALREADY_PENDING", 409, "The same action already awaits a checker",
        "{subject} 已有一个同类事项（编号 {approval_id}）等待审批。",
        "The same kind of action on {subject} already awaits a checker (request {approval_id}).",
        "请先审批或驳回该事项。", "Have that request approved or rejected first.",
    )
    APPROVAL_PARAMS_INVALID = ErrorSpec(
        "APPROVAL_PARAMS_INVALID", 422, "Parameters do not fit this kind of action",
        "“{kind}”类事项的参数有误：{fields}。", "The parameters of a {kind} action are wrong: {fields}.",
        "请只提供该类事项需要的参数。", "Give exactly the parameters this kind of action takes.",
    )
    ACCOUNT_HAS_OPEN_LOANS = ErrorSpec(
        "ACCOUNT_HAS_OPEN_LOANS", 409, "The borrower still owes or is owed money",
        "该借款人尚有未结清的借款或待退款项（借款 {loan_ids}），不能销户。",
        "The borrower still has open loans or money held for them (loans {loan_ids}); the account cannot be closed.",
        "请待借款结清、溢缴款退还后再提出销户。", "Close the account once the loans are settled and held money refunded.",
    )
    ACCOUNT_HAS_ORDERS_IN_FLIGHT = ErrorSpec(
        "ACCOUNT_HAS_ORDERS_IN_FLIGHT", 409, "A payment of the borrower is still in flight",
        "该借款人尚有处理中的支付订单（{order_no}），不能销户。",
        "A payment order of the borrower is still being processed ({order_no}); the account cannot be closed.",
        "请待订单有最终结果后再提出销户。", "Propose the closure again once the order has a final result.",
    )
    ACCOUNT_ALREADY_CLOSED = ErrorSpec(
        "ACCOUNT_ALREADY_CLOSED", 409, "Account already closed",
        "该账户已注销。", "This account is already closed.",
    )
