"""Errors of the loan engine: products, quotes, credit lines, drawdowns, loans, repayments."""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec


class LoanErrors:
    TERMS_INVALID = ErrorSpec(
        "LOAN_TERMS_INVALID", 422, "Loan terms invalid",
        "借款条件有误：{field} {_reason_zh}。", "The loan terms are invalid: {field} {_reason_en}.",
        "请修改该项后重新试算。", "Correct this field and ask for a new quote.",
    )
    APR_ABOVE_CAP = ErrorSpec(
        "LOAN_APR_ABOVE_CAP", 422, "Annualized cost above the cap",
        "该方案的年化综合成本为 {apr_percent}，超过上限 {cap_percent}，不能提供。",
        "These terms cost {apr_percent} a year (annualized, IRR method), above the {cap_percent} cap; they cannot be offered.",
        "请降低利率或服务费率，或选择其他期限后重新试算。",
        "Lower the rate or the service fee, or choose another term, and quote again.",
    )
    PRODUCT_NOT_FOUND = ErrorSpec(
        "LOAN_PRODUCT_NOT_FOUND", 404, "Loan product not found",
        "没有代码为“{product_code}”的在售产品。", "There is no active loan product with code \"{product_code}\".",
        "请通过 GET /v1/products 查看在售产品。", "See the products on offer at GET /v1/products.",
    )
    PRODUCT_EXISTS = ErrorSpec(
        "LOAN_PRODUCT_EXISTS", 409, "Product code taken",
        "产品代码“{product_code}”已被使用。", "The product code \"{product_code}\" is already taken.",
        "请换一个产品代码。", "Choose another product code.",
    )
    PRODUCT_INVALID = ErrorSpec(
        "LOAN_PRODUCT_INVALID", 422, "Product definition invalid",
        "产品设置有误：{field} {_reason_zh}。", "The product definition is invalid: {field} {_reason_en}.",
        "请修改该项后重新提交。", "Correct this field and submit again.",
    )
    PRODUCT_ABOVE_CAP = ErrorSpec(
        "LOAN_PRODUCT_ABOVE_CAP", 422, "Product can exceed the cost cap",
        "按最高利率与服务费，{_method_zh}（{method}）{term} 的年化综合成本为 {apr_percent}，超过上限 {cap_percent}。",
        "At its highest rate and fee, {method} over {term} costs {apr_percent} a year, above the {cap_percent} cap.",
        "请降低最高利率或服务费率，或去掉该期限。",
        "Lower the maximum rate or the service fee, or drop that term.",
    )
    AMOUNT_OUT_OF_RANGE = ErrorSpec(
        "LOAN_AMOUNT_OUT_OF_RANGE", 422, "Amount outside the product's range",
        "借款金额须在 {min_yuan} 元至 {max_yuan} 元之间。", "The amount must be between ¥{min_yuan} and ¥{max_yuan}.",
        "请调整借款金额。", "Choose an amount in that range.",
    )
    TERM_NOT_OFFERED = ErrorSpec(
        "LOAN_TERM_NOT_OFFERED", 422, "Term not offered",
        "该产品不提供此期限。可选：{offered}。", "This product does not offer that term. Offered: {offered}.",
        "请选择可选期限之一。", "Choose one of the offered terms.",
    )
    METHOD_NOT_OFFERED = ErrorSpec(
        "LOAN_METHOD_NOT_OFFERED", 422, "Repayment method not offered",
        "该产品不提供“{_method_zh}”（{method}）还款方式。可选：{offered}。",
        "This product does not offer {method}. Offered: {offered}.",
        "请选择可选的还款方式之一。", "Choose one of the offered repayment methods.",
    )
    RATE_OUT_OF_RANGE = ErrorSpec(
        "LOAN_RATE_OUT_OF_RANGE", 422, "Rate outside the product's range",
        "年利率须在 {min_rate} 至 {max_rate} 之间。", "The annual rate must be between {min_rate} and {max_rate}.",
        "请使用产品范围内的利率。", "Use a rate within the product's range.",
    )
    ILLEGAL_TRANSITION = ErrorSpec(
        "LOAN_ILLEGAL_TRANSITION", 409, "Not possible in the loan's current state",
        "借款当前状态为“{current}”，不能变为“{target}”。",
        "The loan is {current}; it cannot become {target}.",
        "请刷新借款详情查看最新状态。", "Refresh the loan to see its current state.",
    )
