"""What the borrower reads about a payment order, step by step, in zh-CN and English — worded for the
kind of account the order pays into or debits (its method's kind: a bank card, Alipay, WeChat Pay).

A payout to Alipay is not "submitted to the bank" and does not arrive "on your card": each text names
the party that holds the money (the bank, 支付宝, 微信支付) and where it lands. The payout timeline
(``GET /v1/loans/{id}/payouts``, the app's payout page) and the repayment progress
(``GET /v1/loans/{id}/repayments``) both read their texts here.
"""

from __future__ import annotations

from dataclasses import dataclass

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
