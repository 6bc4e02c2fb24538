"""The borrower's payment timeline names the account the order actually has: a payout to Alipay is
"submitted to Alipay" and "paid to your Alipay account", never to a bank or a card — in both languages."""

from __future__ import annotations

import pytest

from miaodai.payments import order_texts
from miaodai.payments.models import OrderStatus, PaymentMethodKind

ALL_TEXTS = (order_texts.payout_event_texts, order_texts.payout_status_texts, order_texts.collection_event_texts,
             order_texts.collection_status_texts)
EVENTS = ("created", "sent", "answered", "no_answer", "queried", "callback")


@pytest.mark.parametrize(("kind", "zh", "en"), [
    (PaymentMethodKind.ALIPAY, "支付宝", "Alipay"), (PaymentMethodKind.WECHAT_PAY, "微信支付", "WeChat Pay")])
def test_a_wallet_order_never_speaks_of_a_bank_or_a_card(kind, zh, en):
    for texts in ALL_TEXTS:
        for text_zh, text_en in texts(kind).values():
            assert "银行" not in text_zh and "卡" not in text_zh.replace("换一张卡", ""), text_zh
            assert "bank" not in text_en.lower() and "card" not in text_en.replace("choose a card", ""), text_en
    payout = order_texts.payout_event_texts(kind)
    assert payout["sent"] == (f"已提交{zh}", f"Submitted to {en}")
    assert payout["answered"][1] == f"{en} accepted it and is processing"
    assert en in order_texts.payout_status_texts(kind)["succeeded"][1]
    assert zh in order_texts.collection_status_texts(kind)["processing"][0]


def test_a_card_order_reads_as_before():
    payout = order_texts.payout_event_texts(PaymentMethodKind.BANK_CARD)
    assert payout["sent"] == ("已提交银行", "Submitted to the bank")
    assert payout["no_answer"][1] == "No answer from the bank yet; we keep asking — do not apply again"
    statuses = order_texts.payout_status_texts("bank_card")
    assert statuses["succeeded"] == ("已转入您的银行卡", "Paid to your card")
    assert statuses["processing"][1].startswith("The bank is processing")
    assert order_texts.collection_event_texts(None)["callback"] == ("收到银行结果通知", "The bank sent its result")


@pytest.mark.parametrize("kind", list(PaymentMethodKind))
def test_every_status_and_event_has_both_languages(kind):
    for status in OrderStatus:
        for texts in (order_texts.payout_status_texts, order_texts.collection_status_texts):
            zh, en = texts(kind)[status.value]
            assert zh and en and zh != en
    for texts in (order_texts.payout_event_texts, order_texts.collection_event_texts):
        assert set(EVENTS) <= set(texts(kind))


def test_a_refusal_reads_as_refused_with_why_and_what_to_do():
    zh, en = order_texts.payout_event_text(PaymentMethodKind.BANK_CARD, "answered", "failed", "CARD_FROZEN")
    assert zh.startswith("银行拒绝了这笔放款") and "卡状态异常" in zh and "换卡" in zh and "受理" not in zh
    assert en.startswith("The bank refused the payout") and "frozen" in en and "choose another card" in en
    assert "processing" not in en
    callback = order_texts.payout_event_text("alipay", "callback", "failed", "SOME_WALLET_CODE", "账户异常")
    assert callback[0] == "支付宝通知：这笔放款被拒绝，原因：账户异常。款项未转出，可换一张卡或换一个钱包重试或取消借款"
    assert "(SOME_WALLET_CODE)" in callback[1]
    debit = order_texts.collection_event_text(None, "queried", "failed", "INSUFFICIENT_FUNDS")
    assert "拒绝" in debit[0] and "余额不足" in debit[0] and "No money was taken" in debit[1]


def test_an_indefinite_answer_is_no_result_and_an_acceptance_still_reads_as_accepted():
    for status, code in (("failed", "SYSTEMERROR"), ("unknown", "SYSTEMERROR")):
        zh, en = order_texts.payout_event_text("bank_card", "answered", status, code)
        assert "暂未给出结果" in zh and "拒绝" not in zh and "do not apply again" in en
    assert order_texts.payout_event_text("bank_card", "answered", "processing", "ACCEPTED") == (
        "银行已受理，处理中", "The bank accepted it and is processing")
    assert order_texts.payout_event_text("bank_card", "sent", "failed", "CARD_FROZEN") == (
        "已提交银行", "Submitted to the bank")  # only the channel's answers carry its word
