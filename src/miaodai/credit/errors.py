"""Errors of credit decisioning: applications, human review, the review queue, rulesets and models."""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec


class CreditErrors:
    IDENTITY_REQUIRED = ErrorSpec(
        "CREDIT_IDENTITY_REQUIRED", 403, "Real-name verification required",
        "申请额度前需要完成实名认证。", "Real-name verification must be complete before you apply for credit.",
        "请先完成身份证、运营商校验和人脸识别。", "Finish the ID, carrier and face checks first.",
    )
    INCOME_INVALID = ErrorSpec(
        "CREDIT_INCOME_INVALID", 422, "Monthly income invalid",
        "月收入需在 1 元至 {max_yuan} 元之间（以分为单位填写 monthly_income_fen）。",
        "Monthly income must be between 1 and {max_yuan} yuan (monthly_income_fen is in fen).",
        "请填写税后月收入。", "Enter your monthly income after tax.",
    )
    # Refused before any outside party is asked (a bureau query costs money and shows on the borrower's
    # credit record): what the applicant's own standing already decides, and the cap on applications.
    TOO_MANY_LINES = ErrorSpec(
        "CREDIT_TOO_MANY_LINES", 409, "A credit line is already open",
        "您在本平台已有可用额度，无需再次申请。", "You already have a credit line with us; there is no need to apply again.",
        "在“我的额度”中查看并使用您的额度。", "See and use it under My credit line (GET /v1/credit-lines).",
    )
    COOLING_OFF = ErrorSpec(
        "CREDIT_COOLING_OFF", 409, "Too soon after a declined application",
        "距上次申请未通过不足冷静期，{reapply_on} 起可再次申请。",
        "Your last application was declined recently; you may apply again from {reapply_on}.",
        "如对上次结果有异议，可申请人工复核。", "If you disagree with the last decision, ask for a human review.",
    )
    REVIEW_PENDING = ErrorSpec(
        "CREDIT_REVIEW_PENDING", 409, "An application is being reviewed",
        "您的申请 {application_id} 正在审核中，请等待结果后再申请。",
        "Your application {application_id} is being reviewed; wait for its outcome before applying again.",
        "审核结果会通过短信通知您。", "We will tell you the outcome by SMS.",
    )
    APPLICATION_LIMIT = ErrorSpec(
        "CREDIT_APPLICATION_LIMIT", 429, "Too many credit applications",
        "您在 {days} 天内已申请 {count} 次，达到上限，{reapply_on} 起可再次申请。",
        "You have applied {count} times within {days} days, the most we accept; you may apply again from {reapply_on}.",
        "频繁申请不会提高通过率。", "Applying more often does not improve your chances.",
    )
    APPLICATION_NOT_FOUND = ErrorSpec(
        "CREDIT_APPLICATION_NOT_FOUND", 404, "Credit application not found",
        "没有编号为 {application_id} 的额度申请。", "There is no credit application {application_id}.",
        "请通过 GET /v1/credit/applications 查看您的申请。", "See your applications at GET /v1/credit/applications.",
    )
    REVIEW_NOT_APPLICABLE = ErrorSpec(
        "CREDIT_REVIEW_NOT_APPLICABLE", 409, "Nothing to review",
        "只有系统自动拒绝的申请才能申请人工复核（该申请状态为 {status}）。",
        "Only an application declined by the automated decision can be reviewed by a person (this one is {status}).",
    )
    REVIEW_ALREADY_REQUESTED = ErrorSpec(
        "CREDIT_REVIEW_ALREADY_REQUESTED", 409, "Human review already requested",
        "该申请已经申请过人工复核（复核单 {case_id}）。", "A human review of this application was already asked for (case {case_id}).",
        "复核结果会通过短信通知您。", "We will tell you the outcome by SMS.",
    )
    CASE_NOT_FOUND = ErrorSpec(
        "CREDIT_CASE_NOT_FOUND", 404, "Review case not found",
        "没有编号为 {case_id} 的审核单。", "There is no review case {case_id}.",
    )
    CASE_CLOSED = ErrorSpec(
        "CREDIT_CASE_CLOSED", 409, "Review case already decided",
        "审核单 {case_id} 已处理完毕（{status}）。", "Review case {case_id} is already {status}.",
    )
    CASE_NOT_AWAITING_SECOND = ErrorSpec(
        "CREDIT_CASE_NOT_AWAITING_SECOND", 409, "No override to approve",
        "审核单 {case_id} 没有等待第二人审批的推翻决定（状态 {status}）。",
        "Review case {case_id} has no override waiting for a second approver (it is {status}).",
    )
    FOUR_EYES = ErrorSpec(
        "CREDIT_FOUR_EYES", 403, "Maker-checker: another staff member must approve",
        "不能由同一人提出并批准。", "The same person cannot both propose and approve this.",
        "请由另一位有审批权限的同事处理。", "Ask another staff member with approval rights.",
    )
    REVIEW_LIMIT_INVALID = ErrorSpec(
        "CREDIT_REVIEW_LIMIT_INVALID", 422, "Approved limit invalid",
        "批准额度需在 {min_yuan} 元至 {max_yuan} 元之间。", "The approved limit must be between {min_yuan} and {max_yuan} yuan.",
    )
    REVIEW_REASON_MISSING = ErrorSpec(
        "CREDIT_REVIEW_REASON_MISSING", 422, "A decision needs a written reason",
        "请写明理由（{min_chars} 至 {max_chars} 个字）。", "Write the reason ({min_chars} to {max_chars} characters).",
        "理由会与审核单一起保存并记入审计链。", "It is kept with the case and in the audit chain.",
    )
    RULESET_INVALID = ErrorSpec(
        "CREDIT_RULESET_INVALID", 422, "Ruleset invalid",
        "规则集格式有误：{problem}。", "The ruleset is invalid: {problem}.",
        "请修改后重新提交；格式见 docs/credit.md。", "Fix it and submit again; the format is in docs/credit.md.",
    )
    RULESET_EXISTS = ErrorSpec(
        "CREDIT_RULESET_EXISTS", 409, "Ruleset version taken",
        "规则集版本 {version} 已存在。", "Ruleset version {version} already exists.",
        "请使用新的版本号。", "Use a new version number.",
    )
    RULESET_NOT_FOUND = ErrorSpec(
        "CREDIT_RULESET_NOT_FOUND", 404, "Ruleset not found",
        "没有版本为 {version} 的规则集。", "There is no ruleset version {version}.",
    )
    RULESET_NOT_PROPOSED = ErrorSpec(
        "CREDIT_RULESET_NOT_PROPOSED", 409, "Ruleset not awaiting approval",
        "规则集 {version} 当前状态为 {status}，不能审批。", "Ruleset {version} is {status}; it cannot be decided.",
    )
    MODEL_INVALID = ErrorSpec(
        "CREDIT_MODEL_INVALID", 422, "Model artifact invalid",
        "模型文件有误：{problem}。", "The model artifact is invalid: {problem}.",
    )
    MODEL_EXISTS = ErrorSpec(
        "CREDIT_MODEL_EXISTS", 409, "Model id taken",
        "模型 {model_id} 已登记。", "Model {model_id} is already registered.",
    )
    MODEL_NOT_FOUND = ErrorSpec(
        "CREDIT_MODEL_NOT_FOUND", 404, "Model not found",
        "没有编号为 {model_id} 的模型。", "There is no model {model_id}.",
    )
    MODEL_TRANSITION = ErrorSpec(
        "CREDIT_MODEL_TRANSITION", 409, "Model state change not allowed",
        "模型 {model_id} 不能从 {state} 变为 {target}。", "Model {model_id} cannot go from {state} to {target}.",
        "顺序为 candidate → challenger → champion → retired。", "The order is candidate → challenger → champion → retired.",
    )
