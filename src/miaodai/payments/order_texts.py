"""What the borrower reads about a payment order, step by step, in zh-CN and English — worded for the
kind of account the order pays into or debits (its method's kind: a bank card, Alipay, WeChat Pay).

A payout to Alipay is not "submitted to the bank" and does not arrive "on your card": each text names
the party that holds the money (the bank, 支付宝, 微信支付) and where it lands. The payout timeline
(``GET /v1/loans/{id}/payouts``, the app's payout page) and the repayment progress
(``GET /v1/loans/{id}/repayments``) both read their texts here.

An event's text follows what the channel said in it (:func:`payout_event_text`, :func:`collection_event_text`):
an answer refusing the order reads as refused, with why and what to do, never "accepted, processing"; an
answer that is no answer yet (``unknown``, or ``failed`` with an indefinite code such as ``SYSTEMERROR``, which
:meth:`ChannelAnswer.is_definite_failure` does not count as a failure) reads as "no result yet".
"""

from __future__ import annotations

from dataclasses import dataclass

from miaodai.payments.channel import ChannelAnswer, ChannelStatus
from miaodai.payments.models import PaymentMethodKind

Text = tuple[str, str]  # (zh-CN, English)


@dataclass(frozen=True)
class _Account:
    party_zh: str  # who moves the money: 银行 / 支付宝 / 微信支付
    party_en: str  # the same, as it reads mid-sentence ("the bank", "Alipay")
    into_zh: str  # where a payout lands
    into_en: str
    another_zh: str  # what to pay a failed payout to instead
    another_en: str


_ACCOUNTS = {
    PaymentMethodKind.BANK_CARD: _Account("银行", "the bank", "银行卡", "your card", "换卡", "choose another card"),
    PaymentMethodKind.ALIPAY: _Account("支付宝", "Alipay", "支付宝账户", "your Alipay account",
                                       "换一张卡或换一个钱包", "choose a card or another wallet"),
    PaymentMethodKind.WECHAT_PAY: _Account("微信支付", "WeChat Pay", "微信零钱", "your WeChat Pay balance",
                                           "换一张卡或换一个钱包", "choose a card or another wallet"),
}


def _account(kind: PaymentMethodKind | str | None) -> _Account:
    return _ACCOUNTS[PaymentMethodKind(kind or PaymentMethodKind.BANK_CARD)]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _channel_events(a: _Account, *, do_not: Text) -> dict[str, Text]:
    """The events every order has, whichever way the money goes."""
    return {
        "sent": (f"已提交{a.party_zh}", f"Submitted to {a.party_en}"),
        "answered": (f"{a.party_zh}已受理，处理中", f"{_capital(a.party_en)} accepted it and is processing"),
        "no_answer": (f"{a.party_zh}暂未答复，我们会继续查询，{do_not[0]}",
                      f"No answer from {a.party_en} yet; we keep asking — {do_not[1]}"),
        "queried": (f"已向{a.party_zh}查询结果", f"We asked {a.party_en} for the result"),
        "callback": (f"收到{a.party_zh}结果通知", f"{_capital(a.party_en)} sent its result"),
    }


def payout_event_texts(kind: PaymentMethodKind | str | None) -> dict[str, Text]:
    a = _account(kind)
    return {"created": ("已生成放款订单", "Payout order created"),
            **_channel_events(a, do_not=("请勿重复申请", "do not apply again"))}


def payout_status_texts(kind: PaymentMethodKind | str | None) -> dict[str, Text]:
    a = _account(kind)
    return {
        "created": (f"等待提交{a.party_zh}", f"Waiting to be sent to {a.party_en}"),
        "processing": (f"{a.party_zh}处理中，通常几分钟内到账",
                       f"{_capital(a.party_en)} is processing it; usually minutes"),
        "succeeded": (f"已转入您的{a.into_zh}", f"Paid to {a.into_en}"),
        "failed": (f"放款失败，可{a.another_zh}重试或取消借款",
                   f"Payout failed: {a.another_en} and retry, or cancel the loan"),
    }


def collection_event_texts(kind: PaymentMethodKind | str | None) -> dict[str, Text]:
    a = _account(kind)
    return {
        "created": ("已生成扣款订单", "Debit order created"),
        **_channel_events(a, do_not=("请勿重复还款", "do not pay again")),
        "posted_as_due": ("已入账，按正常还款冲抵", "Received and applied to what is due"),
        "held_in_suspense": ("已收款，待人工处理", "Received; our staff will apply or return it"),
    }


def collection_status_texts(kind: PaymentMethodKind | str | None) -> dict[str, Text]:
    a = _account(kind)
    return {
        "created": (f"等待提交{a.party_zh}", f"Waiting to be sent to {a.party_en}"),
        "processing": (f"{a.party_zh}处理中，请勿重复还款",
                       f"{_capital(a.party_en)} is processing it; do not pay again"),
        "succeeded": ("还款成功", "Repaid"),
        "failed": ("扣款失败，未扣到钱", "The debit failed; no money was taken"),
        "refunded": (f"已退回到您的{a.into_zh}", f"Returned to {a.into_en}"),
    }


# Why a channel refused an order, in the borrower's words (the codes the channels and wallets use); any other
# code reads as the channel's own message.
_REFUSALS: dict[str, Text] = {
    "CARD_FROZEN": ("卡状态异常（冻结、挂失或已销户）",
                    "the card is not in normal use (frozen, reported lost or closed)"),
    "ACCOUNT_NAME_MISMATCH": ("户名与账户不符", "the name on the account does not match"),
    "INSUFFICIENT_FUNDS": ("余额不足", "there is not enough money in the account"),
    "AGREEMENT_STATUS_NOT_NORMAL": ("代扣协议已解除或状态异常",
                                    "the withholding agreement is cancelled or not in force"),
    "CONTRACT_NOT_EXIST": ("委托代扣协议不存在", "there is no withholding agreement"),
    "PARAM_ERROR": ("订单信息未被接受", "the order's details were not accepted"),
}
_ANSWERS = ("answered", "queried", "callback")  # the events that carry the channel's word on the order


def refusal_reason(code: str | None, message: str | None) -> Text:
    """Why the order was refused: the known code in both languages, else what the channel said."""
    known = _REFUSALS.get(code or "")
    if known is not None:
        return known
    said = message or code or ""
    return (said or "未说明原因", f"{said} ({code})" if said and code and said != code else (said or "no reason given"))


def _answer(status: str, code: str | None) -> ChannelAnswer | None:
    try:
        channel_status = ChannelStatus(status)
    except ValueError:
        return None
    return ChannelAnswer(order_no="", status=channel_status, channel_txn_id=None, code=code or "", message="",
                         amount_fen=None, finished_at=None)


def _event_text(a: _Account, base: dict[str, Text], event: str, status: str, code: str | None,
                detail: str | None, *, what_zh: str, what_en: str, then: Text, do_not: Text) -> Text:
    answer = _answer(status, code) if event in _ANSWERS else None
    if answer is not None and answer.is_definite_failure:
        why_zh, why_en = refusal_reason(code, detail)
        party = _capital(a.party_en)
        said = {
            "answered": (f"{a.party_zh}拒绝了这笔{what_zh}", f"{party} refused the {what_en}"),
            "queried": (f"经查询，{a.party_zh}拒绝了这笔{what_zh}", f"Asked, {a.party_en} says it refused it"),
            "callback": (f"{a.party_zh}通知：这笔{what_zh}被拒绝", f"{party} says the {what_en} was refused"),
        }[event]
        return f"{said[0]}，原因：{why_zh}。{then[0]}", f"{said[1]}: {why_en}. {then[1]}"
    if answer is not None and answer.is_outcome_unknown:
        return (f"{a.party_zh}暂未给出结果，我们会继续查询，{do_not[0]}",
                f"No result from {a.party_en} yet; we keep asking — {do_not[1]}")
    if answer is not None and answer.status is ChannelStatus.NOT_FOUND:
        return (f"{a.party_zh}未收到这笔订单，我们会重新提交",
                f"{_capital(a.party_en)} has no record of it; we send it again")
    return base.get(event, (event, event))


def payout_event_text(kind: PaymentMethodKind | str | None, event: str, status: str, code: str | None = None,
                      detail: str | None = None) -> Text:
    """One step of a payout's timeline as the channel's answer in it says: refused reads as refused."""
    a = _account(kind)
    return _event_text(a, payout_event_texts(kind), event, status, code, detail, what_zh="放款", what_en="payout",
                       then=("款项未转出，可" + a.another_zh + "重试或取消借款",
                             f"No money left: {a.another_en} and try again, or cancel the loan"),
                       do_not=("请勿重复申请", "do not apply again"))


def collection_event_text(kind: PaymentMethodKind | str | None, event: str, status: str, code: str | None = None,
                          detail: str | None = None) -> Text:
    """One step of a debit's timeline as the channel's answer in it says: refused reads as refused."""
    a = _account(kind)
    return _event_text(a, collection_event_texts(kind), event, status, code, detail, what_zh="扣款", what_en="debit",
                       then=("未扣到钱，可换一种方式再还或稍后重试",
                             "No money was taken: pay another way, or try again later"),
                       do_not=("请勿重复还款", "do not pay again"))
