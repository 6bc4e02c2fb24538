"""Errors of loan contracts (generation, signing, download, verification): codes, zh-CN + English, what to do."""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec


class ContractErrors:
    NOT_FOUND = ErrorSpec(
        "CONTRACT_NOT_FOUND", 404, "Contract not found",
        "没有编号为 {contract_no} 的合同。", "There is no contract numbered {contract_no}.",
        "请在“我的借款”中查看您的合同。", "See your contracts under \"My loans\".",
    )
    ALREADY_SIGNED = ErrorSpec(
        "CONTRACT_ALREADY_SIGNED", 409, "Contract already signed",
        "合同 {contract_no} 已于 {signed_at} 签署，无需再次签署。",
        "Contract {contract_no} was already signed at {signed_at}.",
        "可在“我的借款”中查看或下载已签署的合同。", "View or download the signed contract under \"My loans\".",
    )
    CHANGED = ErrorSpec(
        "CONTRACT_CHANGED", 409, "Contract changed since you read it",
        "您签署的合同 {contract_no} 与当前版本不一致（例如日期已变更）。",
        "The contract {contract_no} you are signing is not the current version (for example, its dates moved).",
        "请重新打开并阅读合同，然后再签署。", "Open and read the contract again, then sign it.",
    )
    NOT_SIGNED = ErrorSpec(
        "CONTRACT_NOT_SIGNED", 409, "Contract not signed yet",
        "合同 {contract_no} 尚未签署。", "Contract {contract_no} has not been signed yet.",
        "请阅读合同后，用短信验证码确认签署。", "Read the contract, then sign it with an SMS code.",
    )
    SIGN_CODE_REQUIRED = ErrorSpec(
        "CONTRACT_SIGN_CODE_REQUIRED", 403, "A code for this contract is needed to sign",
        "签署合同 {contract_no} 需要一个专为本合同发送的验证码；登录或其他操作的验证码不能用于签署。",
        "Signing contract {contract_no} needs a code sent for this contract; a code from logging in or from "
        "another step does not count.",
        "请获取签署验证码（POST /v1/loans/{loan_id}/sign-code，带上所读合同的 SHA-256），并随签署请求一并提交。",
        "Ask for a signing code (POST /v1/loans/{loan_id}/sign-code with the SHA-256 of the text you read) and send "
        "it with the signature.",
    )
    HASH_MISMATCH = ErrorSpec(
        "CONTRACT_HASH_MISMATCH", 500, "Contract document altered",
        "合同 {contract_no} 的文本与签署时的摘要不一致，文本可能已被改动。",
        "The text of contract {contract_no} does not match the digest it was signed with; it may have been altered.",
        "该合同暂不可用，我们已记录此问题；请联系客服并提供合同编号。",
        "The contract is withheld and the problem recorded; contact support with the contract number.",
    )
    SIGNATURE_INVALID = ErrorSpec(
        "CONTRACT_SIGNATURE_INVALID", 500, "Contract signature invalid",
        "合同 {contract_no} 的平台签名校验失败。", "The platform signature of contract {contract_no} does not verify.",
        "该合同暂不可用，我们已记录此问题；请联系客服并提供合同编号。",
        "The contract is withheld and the problem recorded; contact support with the contract number.",
    )
    KEY_UNKNOWN = ErrorSpec(
        "CONTRACT_KEY_UNKNOWN", 500, "Signing key unknown",
        "合同 {contract_no} 的签名密钥 {key_id} 不在平台公钥列表中，无法校验。",
        "Contract {contract_no} was signed with key {key_id}, which is not among the platform's public keys.",
        "该合同暂不可用，我们已记录此问题；请联系客服并提供合同编号。",
        "The contract is withheld and the problem recorded; contact support with the contract number.",
    )
    AUDIT_MISMATCH = ErrorSpec(
        "CONTRACT_AUDIT_MISMATCH", 500, "Signing record missing from the audit chain",
        "合同 {contract_no} 的签署记录在审计日志中缺失或与合同不一致。",
        "The signing record of contract {contract_no} is missing from the audit chain or does not match the contract.",
        "该合同暂不可用，我们已记录此问题；请联系客服并提供合同编号。",
        "The contract is withheld and the problem recorded; contact support with the contract number.",
    )
    KEY_MISSING = ErrorSpec(
        "CONTRACT_KEY_MISSING", 503, "Contract signing unavailable",
        "合同签署服务暂不可用。", "Contract signing is not available right now.",
        "请稍后重试；如持续出现请联系客服。", "Retry later; if it persists, contact support.",
    )
