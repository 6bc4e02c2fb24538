"""Errors of the payments layer: binding cards and wallets, payment methods."""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec

_BIND_ANOTHER_ZH = "请绑定以下银行的储蓄卡：{banks}；或绑定支付宝/微信支付账户。"
_BIND_ANOTHER_EN = "Bind a debit card of one of these banks: {banks}; or bind an Alipay or WeChat Pay account."


class PaymentErrors:
    IDENTITY_REQUIRED = ErrorSpec(
        "PAYMENT_IDENTITY_REQUIRED", 403, "Real-name verification required",
        "绑定银行卡或电子钱包前需要完成实名认证。",
        "Real-name verification must be complete before you bind a card or an e-wallet.",
        "请先完成身份证、运营商校验和人脸识别。", "Finish the ID, carrier and face checks first.",
    )
    CARD_NUMBER_INVALID = ErrorSpec(
        "PAYMENT_CARD_NUMBER_INVALID", 422, "Card number invalid",
        "银行卡号有误，请核对后重新输入。", "This is not a valid card number; check it and type it again.",
        "卡号为 13–19 位数字，可参照卡面或银行 App。", "A card number has 13 to 19 digits; copy it from the card or your bank's app.",
    )
    CARD_BANK_UNKNOWN = ErrorSpec(
        "PAYMENT_CARD_BANK_UNKNOWN", 422, "Card's bank not recognised",
        "无法识别该卡的发卡银行。", "We cannot tell which bank issued this card.",
        _BIND_ANOTHER_ZH, _BIND_ANOTHER_EN,
    )
    CARD_BANK_UNSUPPORTED = ErrorSpec(
        "PAYMENT_CARD_BANK_UNSUPPORTED", 422, "Bank not supported",
        "暂不支持{bank_name_zh}（{bank_name_en}）的银行卡。", "Cards of {bank_name_en} ({bank_name_zh}) are not supported yet.",
        _BIND_ANOTHER_ZH, _BIND_ANOTHER_EN,
    )
    CARD_CREDIT_NOT_ALLOWED = ErrorSpec(
        "PAYMENT_CARD_CREDIT_NOT_ALLOWED", 422, "Credit cards cannot be bound",
        "这是一张{bank_name_zh}（{bank_name_en}）信用卡；借款只能发放到储蓄卡（借记卡）。",
        "This is a {bank_name_en} ({bank_name_zh}) credit card; loans are paid out only to debit cards.",
        _BIND_ANOTHER_ZH, _BIND_ANOTHER_EN,
    )
    CARD_ALREADY_BOUND = ErrorSpec(
        "PAYMENT_CARD_ALREADY_BOUND", 409, "Card already bound",
        "这张卡（尾号 {last4}）已经绑定。", "This card (ending {last4}) is already bound.",
        "可在“我的银行卡”中查看或设为默认。", "See it under your payment methods, or make it the default.",
    )
    TOO_MANY_METHODS = ErrorSpec(
        "PAYMENT_TOO_MANY_METHODS", 409, "Too many payment methods",
        "最多可绑定 {max} 个收付款方式。", "You can bind at most {max} payment methods.",
        "请先解绑不用的卡或账户。", "Unbind one you no longer use first.",
    )
    CARD_ELEMENTS_MISMATCH = ErrorSpec(
        "PAYMENT_CARD_ELEMENTS_MISMATCH", 422, "Card details do not match the bank's records",
        "银行核验未通过：姓名、身份证号与该卡的开户信息不一致。",
        "The bank says the name and ID number do not match this card's account holder.",
        "只能绑定本人名下的银行卡；请核对卡号或换一张卡。", "Only cards in your own name can be bound; check the number or use another card.",
    )
    CARD_PHONE_MISMATCH = ErrorSpec(
        "PAYMENT_CARD_PHONE_MISMATCH", 422, "Reserved phone does not match",
        "银行预留手机号与填写的号码不一致。", "The phone number you entered is not the one this card has on file at the bank.",
        "请填写办卡时在银行预留的手机号；如已更换，请联系银行更新。",
        "Enter the phone number you gave the bank for this card; if it changed, ask your bank to update it.",
    )
    CARD_FROZEN = ErrorSpec(
        "PAYMENT_CARD_FROZEN", 422, "Card frozen or reported lost",
        "银行返回：该卡状态异常（冻结、挂失或已销户）。", "The bank says this card is frozen, reported lost or closed.",
        "请联系发卡银行，或换一张卡。", "Contact your bank, or use another card.",
    )
    CARD_VERIFICATION_TIMEOUT = ErrorSpec(
        "PAYMENT_CARD_VERIFICATION_TIMEOUT", 504, "The bank did not answer",
        "银行验证超时，未完成绑卡。", "The bank did not answer in time; the card was not bound.",
        "请稍后重试。", "Try again in a moment.",
    )
    BINDING_CODES_DAILY_LIMIT = ErrorSpec(
        "PAYMENT_BINDING_CODES_DAILY_LIMIT", 429, "Too many card bindings today",
        "您今天已发起 {limit} 次绑卡验证，已达上限。", "You have started {limit} card verifications today, the most we allow.",
        "请于 {retry_at_local}（北京时间）后重试。", "Try again after {retry_at_local} (Beijing time).",
    )
    BINDING_PHONE_DAILY_LIMIT = ErrorSpec(
        "PAYMENT_BINDING_PHONE_DAILY_LIMIT", 429, "Too many bank codes to this phone today",
        "该预留手机号今天已收到 {limit} 条绑卡验证码，已达上限。",
        "This reserved phone number has been sent {limit} card-binding codes today, the most we allow.",
        "请于 {retry_at_local}（北京时间）后重试；如非本人操作请联系客服。",
        "Try again after {retry_at_local} (Beijing time); if this was not you, contact support.",
    )
    BINDING_NOT_FOUND = ErrorSpec(
        "PAYMENT_BINDING_NOT_FOUND", 404, "Card binding not found",
        "没有找到该绑卡请求。", "There is no such card binding.",
        "请重新发起绑卡。", "Start the binding again.",
    )
    BINDING_CODE_INVALID = ErrorSpec(
        "PAYMENT_BINDING_CODE_INVALID", 422, "Wrong bank code",
        "银行验证码不正确，还可尝试 {attempts_left} 次。", "The bank's code is wrong; {attempts_left} attempts left.",
        "请输入银行发送到预留手机号的 6 位验证码。", "Enter the 6-digit code the bank sent to the card's phone number.",
    )
    BINDING_LOCKED = ErrorSpec(
        "PAYMENT_BINDING_LOCKED", 409, "Too many wrong codes",
        "验证码错误次数过多，本次绑卡已失效。", "Too many wrong codes: this binding was cancelled.",
        "请重新发起绑卡，获取新的验证码。", "Start the binding again to get a new code.",
    )
    BINDING_EXPIRED = ErrorSpec(
        "PAYMENT_BINDING_EXPIRED", 410, "Card binding expired",
        "绑卡验证已过期。", "This card binding has expired.",
        "请重新发起绑卡，获取新的验证码。", "Start the binding again to get a new code.",
    )
    BINDING_DONE = ErrorSpec(
        "PAYMENT_BINDING_DONE", 409, "Card binding already finished",
        "该绑卡请求已完成（{status}）。", "This card binding is already {status}.",
    )
    METHOD_NOT_FOUND = ErrorSpec(
        "PAYMENT_METHOD_NOT_FOUND", 404, "Payment method not found",
        "没有找到该收付款方式。", "There is no such payment method.",
        "请通过 GET /v1/payment-methods 查看已绑定的卡和账户。", "See your cards and accounts at GET /v1/payment-methods.",
    )
    PAYOUT_METHOD_REQUIRED = ErrorSpec(
        "PAYMENT_PAYOUT_METHOD_REQUIRED", 409, "No card to pay out to",
        "请先绑定一张本人的储蓄卡，借款将发放到该卡。", "Bind a debit card in your name first: the loan is paid out to it.",
        "绑卡：POST /v1/payment-methods/cards。", "Bind one with POST /v1/payment-methods/cards.",
    )
    METHOD_IN_USE = ErrorSpec(
        "PAYMENT_METHOD_IN_USE", 409, "Needed for repayments",
        "这是您借款（{loan_ids}）唯一的还款方式，暂不能解绑。",
        "This is the only repayment method of your loan(s) {loan_ids}; it cannot be unbound yet.",
        "请先绑定另一张卡或支付宝/微信支付账户，再解绑这一张。",
        "Bind another card or an Alipay/WeChat Pay account first, then unbind this one.",
    )
    REPAYMENT_IN_PROGRESS = ErrorSpec(
        "PAYMENT_REPAYMENT_IN_PROGRESS", 409, "A repayment is already being collected",
        "这笔借款有一笔扣款（订单 {order_no}）正在处理，请等待结果后再还款。",
        "A debit for this loan (order {order_no}) is still being processed; wait for its result before paying again.",
        "在 GET /v1/loans/{{loan_id}}/repayments 查看进度，通常几秒内完成。",
        "Follow it at GET /v1/loans/{{loan_id}}/repayments; it usually takes seconds.",
    )
    REPAYMENT_AMOUNT_REQUIRED = ErrorSpec(
        "PAYMENT_REPAYMENT_AMOUNT_REQUIRED", 422, "Amount required",
        "请填写还款金额（单位：分）。", "Say how much to repay (amount_fen).",
        "结清全部借款时可不填金额，用 purpose=payoff。", "To repay the whole loan leave the amount out and use purpose=payoff.",
    )
    REPAYMENT_MORE_THAN_OWED = ErrorSpec(
        "PAYMENT_REPAYMENT_MORE_THAN_OWED", 422, "More than the loan owes",
        "还款金额 {amount_yuan} 元超过了今天结清全部借款所需的 {payoff_yuan} 元。",
        "{amount_yuan} yuan is more than the {payoff_yuan} yuan that settles the whole loan today.",
        "请按结清金额还款（purpose=payoff），我们不会多扣。",
        "Repay the payoff amount (purpose=payoff) instead; we never take more than is owed.",
    )
    PAYOFF_AMOUNT_CHANGED = ErrorSpec(
        "PAYMENT_PAYOFF_AMOUNT_CHANGED", 409, "The payoff amount has changed",
        "今天结清需要 {payoff_yuan} 元，与您确认的 {amount_yuan} 元不同（利息按日计算）。",
        "Settling today takes {payoff_yuan} yuan, not the {amount_yuan} yuan you confirmed (interest accrues daily).",
        "请重新获取结清金额（GET /v1/loans/{{loan_id}}/payoff-quote）后再确认。",
        "Get the payoff quote again (GET /v1/loans/{{loan_id}}/payoff-quote) and confirm that amount.",
    )
    METHOD_CANNOT_COLLECT = ErrorSpec(
        "PAYMENT_METHOD_CANNOT_COLLECT", 422, "This card cannot be debited",
        "尾号 {last4} 的卡所属银行不支持代扣还款。", "The bank of the card ending {last4} does not allow debits for repayments.",
        "请选择其他银行卡或支付宝/微信支付账户还款（GET /v1/banks 列出支持代扣的银行）。",
        "Choose another card or an Alipay/WeChat Pay account (GET /v1/banks lists banks that allow debits).",
    )
    REFUND_MORE_THAN_HELD = ErrorSpec(
        "PAYMENT_REFUND_MORE_THAN_HELD", 422, "More than the loan holds",
        "退款 {amount_yuan} 元超过了这笔借款为借款人暂存的 {held_yuan} 元。",
        "A refund of {amount_yuan} yuan is more than the {held_yuan} yuan this loan holds for the borrower.",
        "请核对多还金额后按不超过暂存金额退款。", "Check the overpayment and refund at most what is held.",
    )
    # E-wallets (支付宝 / 微信支付): {_wallet_zh} / {_wallet_en} are the wallet's name, {kind} its code.
    WALLET_ALREADY_BOUND = ErrorSpec(
        "PAYMENT_WALLET_ALREADY_BOUND", 409, "Wallet already bound",
        "这个{_wallet_zh}账户（尾号 {last4}）已经绑定，无需重复绑定。",
        "This {_wallet_en} account (ending {last4}) is already bound; nothing new was added.",
        "可在收付款方式中查看或设为默认。", "See it under your payment methods, or make it the default.",
    )
    WALLET_DECLINED = ErrorSpec(
        "PAYMENT_WALLET_DECLINED", 422, "Agreement declined in the wallet",
        "您在{_wallet_zh}中取消了代扣协议签约，账户未绑定。",
        "You declined the withholding agreement in {_wallet_en}; the account was not bound.",
        "如需绑定，请重新发起并在{_wallet_zh}中确认签约；也可以绑定银行卡。",
        "To bind it, start again and approve the agreement in {_wallet_en}; or bind a bank card.",
    )
    WALLET_ACCOUNT_FROZEN = ErrorSpec(
        "PAYMENT_WALLET_ACCOUNT_FROZEN", 422, "Wallet account frozen or restricted",
        "{_wallet_zh}返回：该账户状态异常（冻结或受风控限制），无法签约。",
        "{_wallet_en} says this account is frozen or restricted by its risk control and cannot sign.",
        "请联系{_wallet_zh}客服处理，或换一个账户、绑定银行卡。",
        "Contact {_wallet_en} support, or use another account or a bank card.",
    )
    WALLET_AGREEMENT_EXISTS = ErrorSpec(
        "PAYMENT_WALLET_AGREEMENT_EXISTS", 409, "Wallet signed with another Miaodai account",
        "该{_wallet_zh}账户已与秒贷的另一个账号签订代扣协议，不能再次签约。",
        "This {_wallet_en} account already has a withholding agreement with Miaodai under another Miaodai account.",
        "请登录原账号解绑，或在{_wallet_zh}中解除与秒贷的协议后重试；也可以换一个账户或绑定银行卡。",
        "Unbind it from the other account, or end the agreement with Miaodai in {_wallet_en} and retry; "
        "or use another account or a bank card.",
    )
    WALLET_TIMEOUT = ErrorSpec(
        "PAYMENT_WALLET_TIMEOUT", 504, "The wallet did not answer",
        "{_wallet_zh}未及时答复，账户尚未绑定。", "{_wallet_en} did not answer in time; the account is not bound yet.",
        "请稍后用同一授权码再次确认（不计入尝试次数）。",
        "Confirm again with the same authorization code in a moment (this does not count as an attempt).",
    )
    WALLET_AUTH_CODE_INVALID = ErrorSpec(
        "PAYMENT_WALLET_AUTH_CODE_INVALID", 422, "Authorization code not valid",
        "授权码无效，还可尝试 {attempts_left} 次。",
        "The authorization code is not valid for this binding; {attempts_left} attempts left.",
        "请使用{_wallet_zh}签约完成后返回给 App 的授权码。",
        "Use the authorization code {_wallet_en} handed back to the app after signing.",
    )
    WALLET_BINDING_NOT_FOUND = ErrorSpec(
        "PAYMENT_WALLET_BINDING_NOT_FOUND", 404, "Wallet binding not found",
        "没有找到该电子钱包绑定请求。", "There is no such e-wallet binding.",
        "请重新发起绑定。", "Start the binding again.",
    )
    WALLET_BINDING_LOCKED = ErrorSpec(
        "PAYMENT_WALLET_BINDING_LOCKED", 409, "Too many invalid authorization codes",
        "授权码错误次数过多，本次绑定已失效。", "Too many invalid authorization codes: this binding was cancelled.",
        "请重新发起绑定，并在钱包中重新签约。", "Start the binding again and sign in the wallet again.",
    )
    WALLET_BINDING_EXPIRED = ErrorSpec(
        "PAYMENT_WALLET_BINDING_EXPIRED", 410, "Wallet binding expired",
        "电子钱包绑定请求已过期。", "This e-wallet binding has expired.",
        "请重新发起绑定，并在钱包中重新签约。", "Start the binding again and sign in the wallet again.",
    )
    WALLET_BINDING_DONE = ErrorSpec(
        "PAYMENT_WALLET_BINDING_DONE", 409, "Wallet binding already finished",
        "该电子钱包绑定请求已完成（{status}）。", "This e-wallet binding is already {status}.",
        "请通过 GET /v1/payment-methods 查看已绑定的卡和账户。", "See your cards and accounts at GET /v1/payment-methods.",
    )
