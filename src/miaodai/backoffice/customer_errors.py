"""Errors of the staff's customer view (客户视图): searching for a customer, reading one, revealing personal data.

A catalog of its own (``backoffice/errors.py`` holds the maker-checker's), so these codes read as one section of
docs/errors.md.
"""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec


class CustomerErrors:
    QUERY_INVALID = ErrorSpec(
        "CUSTOMER_QUERY_INVALID", 422, "The search text does not read as that kind",
        "搜索内容与所选的查询方式（{kind}）不符。", "The search text does not read as the chosen kind ({kind}).",
        "请按该方式的格式输入，例如 {example}。", "Type it the way that kind reads, for example {example}.",
    )
    NOT_FOUND = ErrorSpec(
        "CUSTOMER_NOT_FOUND", 404, "Customer not found",
        "没有编号为 {borrower_id} 的客户。", "There is no customer {borrower_id}.",
        "请通过搜索找到客户后再打开。", "Find the customer by searching, then open them.",
    )
    REVEAL_REASON_REQUIRED = ErrorSpec(
        "REVEAL_REASON_REQUIRED", 422, "A reason is required to reveal personal data",
        "查看完整个人信息须说明理由（选择理由类别，并填写至少 {min_chars} 个字的具体说明）。",
        "Revealing personal data needs a reason: a reason kind and at least {min_chars} characters saying why.",
        "请写明具体事由，例如工单号或来电核实的内容。",
        "Say what it is for, e.g. the ticket number or what the caller needs confirmed.",
    )
    REVEAL_VALUE_ABSENT = ErrorSpec(
        "REVEAL_VALUE_ABSENT", 404, "Nothing to reveal",
        "该客户没有可查看的此项信息（{field}）。", "This customer has no such value to reveal ({field}).",
        "客户完成实名认证或绑卡后才有这些信息；银行卡须指明客户名下的卡。",
        "Names and ID numbers exist after real-name verification; a card must be one of this customer's cards.",
    )
    REVEAL_LIMIT = ErrorSpec(
        "REVEAL_LIMIT", 429, "Too many reveals",
        "您在本{_window_zh}查看完整个人信息的次数已达上限（{cap} 次）。",
        "You have reached the limit of {cap} reveals this {_window_en}.",
        "请于 {resets_at} 之后再试；如确有需要请联系合规专员。",
        "Try again after {resets_at}; if you need more, ask a compliance officer.",
    )
