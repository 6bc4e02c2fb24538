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
    BORROWER_NOT_FOUND = ErrorSpec(
        "LOAN_BORROWER_NOT_FOUND", 404, "Borrower not found",
        "借款人 {borrower_id} 不存在。", "There is no borrower {borrower_id}.",
        "请核对借款人编号。", "Check the borrower id.",
    )
    BORROWER_NOT_VERIFIED = ErrorSpec(
        "LOAN_BORROWER_NOT_VERIFIED", 409, "Real-name verification not complete",
        "借款人尚未完成实名认证，不能授信或借款。", "The borrower has not completed real-name verification.",
        "请先完成实名认证（身份证、运营商核验与人脸识别）。",
        "Complete real-name verification first (ID, carrier check and face).",
    )
    LINE_EXISTS = ErrorSpec(
        "LOAN_LINE_EXISTS", 409, "The borrower already has a line for this product",
        "该借款人在此产品下已有有效额度（额度 {line_id}）。",
        "The borrower already has an active line for this product (line {line_id}).",
        "如需调整，请冻结或关闭现有额度后再提议。", "Freeze or close the existing line before proposing a new one.",
    )
    LINE_LIMIT_INVALID = ErrorSpec(
        "LOAN_LINE_LIMIT_INVALID", 422, "Line limit or expiry invalid",
        "额度须不低于产品最低借款金额 {min_yuan} 元，且到期日须晚于今天。",
        "The limit must be at least the product's minimum of ¥{min_yuan} and the expiry after today.",
        "请修改额度或到期日。", "Change the limit or the expiry date.",
    )
    PROPOSAL_NOT_FOUND = ErrorSpec(
        "LOAN_PROPOSAL_NOT_FOUND", 404, "Proposal not found",
        "额度提议 {proposal_id} 不存在。", "There is no credit-line proposal {proposal_id}.",
    )
    PROPOSAL_DECIDED = ErrorSpec(
        "LOAN_PROPOSAL_DECIDED", 409, "Proposal already decided",
        "额度提议 {proposal_id} 已处理（{status}）。", "Credit-line proposal {proposal_id} is already {status}.",
        "请刷新待审列表。", "Refresh the list of pending proposals.",
    )
    FOUR_EYES = ErrorSpec(
        "LOAN_FOUR_EYES", 403, "Maker-checker: another staff member must decide",
        "不能审批自己提出的额度提议。", "You cannot decide a proposal you made yourself.",
        "请由另一位有审批权限的同事处理。", "Ask another staff member with approval rights to decide it.",
    )
    LINE_NOT_FOUND = ErrorSpec(
        "LOAN_LINE_NOT_FOUND", 404, "Credit line not found",
        "没有找到该授信额度。", "That credit line does not exist.",
        "请通过 GET /v1/credit-lines 查看您的额度。", "See your lines at GET /v1/credit-lines.",
    )
    LINE_NOT_USABLE = ErrorSpec(
        "LOAN_LINE_NOT_USABLE", 409, "Credit line not usable",
        "该额度当前不可用（{status}）。", "This credit line cannot be drawn on ({status}).",
        "如有疑问请联系客服。", "Contact support if you think this is wrong.",
    )
    LINE_INSUFFICIENT = ErrorSpec(
        "LOAN_LINE_INSUFFICIENT", 409, "Not enough available credit",
        "可用额度为 {available_yuan} 元，不足以借款 {amount_yuan} 元。",
        "Your available credit is ¥{available_yuan}, less than the ¥{amount_yuan} asked for.",
        "请减少借款金额，或还款后再借。", "Borrow less, or repay first and borrow again.",
    )
    BORROWER_OVERDUE = ErrorSpec(
        "LOAN_BORROWER_OVERDUE", 409, "Overdue: the credit line is frozen",
        "您有借款已逾期 {days_past_due} 天，目前应还 {owed_yuan} 元；逾期期间额度冻结，不能借款。",
        "A loan of yours is {days_past_due} days overdue, with ¥{owed_yuan} owed now; while it is overdue your "
        "credit line is frozen and nothing can be drawn.",
        "请先还清逾期金额（POST /v1/loans/{loan_id}/repayments，purpose 为 due），还清后额度自动恢复，即可再借。",
        "Repay the overdue amount first (POST /v1/loans/{loan_id}/repayments, purpose due); once you are "
        "current the line comes back and you can draw again.",
    )
    LOAN_NOT_FOUND = ErrorSpec(
        "LOAN_NOT_FOUND", 404, "Loan not found",
        "没有找到该借款。", "That loan does not exist.",
        "请通过 GET /v1/loans 查看您的借款。", "See your loans at GET /v1/loans.",
    )
    REQUEST_KEY_REUSED = ErrorSpec(
        "LOAN_REQUEST_KEY_REUSED", 422, "Idempotency key reused with different terms",
        "此幂等键已用于另一笔不同条件的借款申请。", "This Idempotency-Key was already used for a different drawdown.",
        "新的申请请使用新的 Idempotency-Key。", "Use a new Idempotency-Key for a new request.",
    )
    CONCURRENT_UPDATE = ErrorSpec(
        "LOAN_CONCURRENT_UPDATE", 409, "Changed by another request",
        "该记录刚被另一请求修改。", "This record was just changed by another request.",
        "请刷新后重试。", "Refresh and try again.",
    )
    PAYOUT_RESULT_UNEXPECTED = ErrorSpec(
        "LOAN_PAYOUT_RESULT_UNEXPECTED", 409, "Payout result does not match the loan",
        "借款 {loan_id} 当前为“{status}”，不接受第 {attempt} 次放款的结果。",
        "Loan {loan_id} is {status}; a result for payout attempt {attempt} cannot be applied.",
        "请由运营人员按渠道对账结果处理（可能为渠道差错）。",
        "Operations should resolve it against the channel's reconciliation file (a possible channel discrepancy).",
    )
    NOT_REPAYABLE = ErrorSpec(
        "LOAN_NOT_REPAYABLE", 409, "Nothing to repay on this loan",
        "借款当前为“{status}”，无需还款。", "The loan is {status}; there is nothing to repay.",
        "请在“我的借款”中查看借款状态。", "Check the loan's status under \"My loans\".",
    )
    REPAYMENT_KEY_REUSED = ErrorSpec(
        "LOAN_REPAYMENT_KEY_REUSED", 422, "Idempotency key reused for another repayment",
        "此幂等键已用于另一笔不同的还款。", "This idempotency key was already used for a different repayment.",
        "新的还款请使用新的幂等键；重试同一笔还款时使用原来的键。",
        "Use a new key for a new repayment, and the same key to retry one.",
    )
    PAYOFF_AMOUNT_SHORT = ErrorSpec(
        "LOAN_PAYOFF_AMOUNT_SHORT", 422, "Amount does not cover the early payoff",
        "提前结清需还 {payoff_yuan} 元，本次金额 {amount_yuan} 元不足。",
        "Paying the loan off today takes ¥{payoff_yuan}; ¥{amount_yuan} is not enough.",
        "请按结清金额还款，或改为部分提前还款。", "Pay the payoff amount, or make a partial prepayment instead.",
    )
    PREPAYMENT_TOO_SMALL = ErrorSpec(
        "LOAN_PREPAYMENT_TOO_SMALL", 422, "Amount leaves no principal to prepay",
        "须先还清到期应还 {due_yuan} 元及截至今日的利息 {accrued_yuan} 元，本次金额 {amount_yuan} 元不足以提前还本。",
        "¥{amount_yuan} does not cover what is due (¥{due_yuan}) and interest to today (¥{accrued_yuan}) "
        "with principal left over to prepay.",
        "请增加金额，或先按期还款。", "Pay more, or repay what is due first.",
    )
    REPAYMENT_NOT_FOUND = ErrorSpec(
        "LOAN_REPAYMENT_NOT_FOUND", 404, "Repayment not found",
        "没有找到还款记录 {repayment_id}。", "There is no repayment {repayment_id}.",
        "请在借款流水中查看还款记录。", "See the loan's statement for its repayments.",
    )
    REPAYMENT_NOT_REVERSIBLE = ErrorSpec(
        "LOAN_REPAYMENT_NOT_REVERSIBLE", 409, "This repayment cannot be reversed",
        "还款 {repayment_id} 无法冲正：{_reason_zh}。", "Repayment {repayment_id} cannot be reversed: {_reason_en}.",
        "请先冲正其后的还款，或联系运营人员人工处理。",
        "Reverse the later repayments first, or ask operations to handle it by hand.",
    )
    WRITE_OFF_TOO_EARLY = ErrorSpec(
        "LOAN_WRITE_OFF_TOO_EARLY", 409, "Too early to write this loan off",
        "借款逾期 {days_past_due} 天，须逾期超过 {minimum_days} 天（M3+）方可核销。",
        "The loan is {days_past_due} days past due; only loans more than {minimum_days} days past due (M3+) "
        "can be written off.",
        "请继续催收，逾期超过 {minimum_days} 天后再核销。", "Keep collecting; write it off after {minimum_days} days.",
    )
    NOTHING_TO_WAIVE = ErrorSpec(
        "LOAN_NOTHING_TO_WAIVE", 409, "No penalty interest or late fee to waive",
        "该借款没有未还的罚息或滞纳金，无需减免。", "The loan has no unpaid penalty interest or late fee to waive.",
        "请在借款流水中核对罚息。", "Check the penalties on the loan's statement.",
    )
    WAIVER_TOO_LARGE = ErrorSpec(
        "LOAN_WAIVER_TOO_LARGE", 422, "Waiver larger than what is charged and unpaid",
        "减免金额 {amount_yuan} 元超过已收取且未还的罚息及滞纳金 {unpaid_yuan} 元。",
        "¥{amount_yuan} is more than the penalty interest and late fees charged and unpaid (¥{unpaid_yuan}).",
        "请将减免金额改为不超过 {unpaid_yuan} 元。", "Waive at most ¥{unpaid_yuan}.",
    )
    LINE_STATUS_WRONG = ErrorSpec(
        "LOAN_LINE_STATUS_WRONG", 409, "The credit line is not in the state this needs",
        "该额度当前为“{status}”，此操作要求其为“{expected}”。",
        "The credit line is {status}; this needs it to be {expected}.",
        "请刷新额度状态后再操作。", "Refresh the line's status and try again.",
    )
    LINE_LIMIT_OUT_OF_POLICY = ErrorSpec(
        "LOAN_LINE_LIMIT_OUT_OF_POLICY", 422, "New limit outside what policy allows",
        "新额度须为 {step_yuan} 元的整数倍，且在 {min_yuan} 元（已用额度或产品下限）至 {max_yuan} 元（授信政策对该额度的上限）之间。",
        "The new limit must be a multiple of ¥{step_yuan} between ¥{min_yuan} (what is drawn, or the product's "
        "minimum) and ¥{max_yuan} (what the credit policy allows for this line).",
        "请在该范围内调整额度。", "Choose a limit within that range.",
    )
    EOD_OUT_OF_ORDER = ErrorSpec(
        "LOAN_EOD_OUT_OF_ORDER", 409, "End-of-day dates cannot be skipped",
        "日终批处理须按日期顺序运行：下一个应运行的日期是 {expected}，而不是 {requested}。",
        "End-of-day runs go date by date: the next date to run is {expected}, not {requested}.",
        "请先运行 {expected}。", "Run {expected} first.",
    )
    EOD_DAY_NOT_OVER = ErrorSpec(
        "LOAN_EOD_DAY_NOT_OVER", 409, "That business day is not over yet",
        "{requested} 的营业日尚未结束（今天是 {today}），不能运行其日终批处理。",
        "Business day {requested} is not over yet (today is {today}); its end-of-day run cannot start.",
        "请在该日结束后再运行，日期请核对。", "Run it after that day has ended; check the date.",
    )
    EOD_UNFINISHED = ErrorSpec(
        "LOAN_EOD_UNFINISHED", 409, "An earlier end-of-day run did not finish",
        "{pending_date} 的日终批处理尚未完成。", "The end-of-day run of {pending_date} has not finished.",
        "请重新运行 {pending_date}，它会从中断处继续。", "Run {pending_date} again; it resumes where it stopped.",
    )
