"""Disbursement through the sandbox payment channel over HTTP, on both databases: one order per payout
attempt, sent after the signing commits, settled exactly once from whichever answer is final — the
submit, a signed callback or a query — through timeouts, SYSTEMERROR answers for orders later paid,
duplicate and out-of-order callbacks, a callback that never comes and forged ones."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from miaodai.core.clock import business_date
from miaodai.ledger.models import JournalEntry
from miaodai.payments import orders
from miaodai.payments.models import ChannelCallback, PaymentOrder
from miaodai.sandbox.channel import (
    ACCOUNT_DUPLICATE_CALLBACK,
    ACCOUNT_NO_CALLBACK,
    ACCOUNT_OUT_OF_ORDER_CALLBACKS,
    ACCOUNT_SYSTEM_ERROR_FAILED,
    ACCOUNT_SYSTEM_ERROR_UNKNOWN,
    ACCOUNT_TIMEOUT_LOST,
    ACCOUNT_TIMEOUT_RECORDED,
)
from tests.helpers import assert_problem, sign_body
from tests.loan_support import PHONE, demo_borrower
from tests.payment_support import bind_card, channel_time_passes, poster

TIMEOUTS: list[float] = []


def _drawn(client, borrower) -> int:
    line_id = client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["id"]
    body = {"line_id": line_id, "principal_fen": 1_000_000, "method": "equal_installment", "term_months": 12}
    drawn = client.post("/v1/loans", json=body, headers={**borrower["headers"], "Idempotency-Key": "d-1"})
    assert drawn.status_code == 201, drawn.text
    return drawn.json()["id"]


def _signed(client, container, clock, card: str | None = None):
    """The demo borrower signs a 10,000-yuan loan paid out to ``card`` (the seed's card if None)."""
    borrower = demo_borrower(client, container)
    container.channel._sleep = TIMEOUTS.append  # a sandbox timeout is recorded, not waited out
    if card is not None:
        method = bind_card(client, borrower, PHONE, card)
        client.post(f"/v1/payment-methods/{method['id']}/default", headers=borrower["headers"])
    loan_id = _drawn(client, borrower)
    document = client.get(f"/v1/loans/{loan_id}/contract", headers=borrower["headers"])
    body = sign_body(client, clock, borrower, PHONE, loan_id, document.headers["X-Content-SHA256"])
    signed = client.post(f"/v1/loans/{loan_id}/sign", json=body,
                         headers={**borrower["headers"], "Idempotency-Key": f"sign-{loan_id}"})
    assert signed.status_code == 200, signed.text
    return borrower, loan_id, signed.json()


def _status(client, borrower, loan_id) -> str:
    return client.get(f"/v1/loans/{loan_id}", headers=borrower["headers"]).json()["status"]


def _payouts(client, borrower, loan_id):
    return client.get(f"/v1/loans/{loan_id}/payouts", headers=borrower["headers"]).json()


def _paid_entries(container, loan_id) -> int:
    with container.db.transaction() as session:
        return session.execute(select(func.count()).where(JournalEntry.loan_id == loan_id,
                                                          JournalEntry.kind == "payout_paid")).scalar_one()


def _times_at_channel(container, clock, order_no: str) -> int:
    statement = container.channel.reconciliation_file(business_date(clock.now()))
    return sum(1 for row in csv.DictReader(io.StringIO(statement)) if row["order_no"] == order_no)


def _callbacks(container) -> list[str]:
    with container.db.transaction() as session:
        return session.execute(select(ChannelCallback.outcome).order_by(ChannelCallback.id)).scalars().all()


def test_a_payout_is_sent_after_signing_and_the_callback_activates_the_loan(client, container, clock):
    borrower, loan_id, signed = _signed(client, container, clock)
    assert signed["status"] == "disbursing"
    [payout] = _payouts(client, borrower, loan_id)
    assert payout["status"] == "processing" and payout["card"]["bank"]["code"] == "ICBC"
    assert [e["event"] for e in payout["events"]] == ["created", "sent", "answered"]
    assert payout["events"][1]["text_zh"] == "已提交银行" and payout["status_en"].startswith("The bank is processing")
    assert channel_time_passes(client, container, clock) == 1
    assert _status(client, borrower, loan_id) == "active"
    [payout] = _payouts(client, borrower, loan_id)
    assert payout["status"] == "succeeded" and payout["events"][-1]["event"] == "callback"
    assert _paid_entries(container, loan_id) == 1 and _times_at_channel(container, clock, payout["order_no"]) == 1
    assert _callbacks(container) == ["applied"]


@pytest.mark.parametrize(("card", "second"), [(ACCOUNT_DUPLICATE_CALLBACK, "duplicate"),
                                             (ACCOUNT_OUT_OF_ORDER_CALLBACKS, "stale")])
def test_duplicate_and_out_of_order_callbacks_change_nothing(client, container, clock, card, second):
    borrower, loan_id, _ = _signed(client, container, clock, card)
    for _ in range(3):
        channel_time_passes(client, container, clock, seconds=20)
    assert _status(client, borrower, loan_id) == "active" and _paid_entries(container, loan_id) == 1
    assert _callbacks(container) == ["applied", second]


def test_a_timeout_is_unknown_not_failed_and_a_query_settles_it(client, container, clock):
    borrower, loan_id, signed = _signed(client, container, clock, ACCOUNT_TIMEOUT_RECORDED)
    assert signed["status"] == "disbursing" and TIMEOUTS  # the channel did not answer in time
    [payout] = _payouts(client, borrower, loan_id)
    assert payout["events"][-1]["event"] == "no_answer" and "do not apply again" in payout["events"][-1]["text_en"]
    clock.advance(timedelta(seconds=11))
    assert orders.recover(container) == {"sent": 0, "checked": 1}
    assert _status(client, borrower, loan_id) == "active"
    assert _times_at_channel(container, clock, payout["order_no"]) == 1


def test_an_order_the_channel_never_got_is_sent_again_under_the_same_number(client, container, clock):
    borrower, loan_id, _ = _signed(client, container, clock, ACCOUNT_TIMEOUT_LOST)
    [before] = _payouts(client, borrower, loan_id)
    clock.advance(timedelta(seconds=11))
    orders.recover(container)  # query: not found, so the same order is sent again
    channel_time_passes(client, container, clock)
    assert _status(client, borrower, loan_id) == "active"
    [after] = _payouts(client, borrower, loan_id)
    assert after["order_no"] == before["order_no"] and after["status"] == "succeeded"
    assert [e["event"] for e in after["events"]][:5] == ["created", "sent", "no_answer", "queried", "sent"]
    assert _paid_entries(container, loan_id) == 1 and _times_at_channel(container, clock, after["order_no"]) == 1


@pytest.mark.parametrize("card", [ACCOUNT_SYSTEM_ERROR_FAILED, ACCOUNT_SYSTEM_ERROR_UNKNOWN])
def test_systemerror_answers_never_fail_a_payout_that_is_later_paid(client, container, clock, card):
    borrower, loan_id, signed = _signed(client, container, clock, card)
    assert signed["status"] == "disbursing" and signed["payout_attempts"] == 1  # not voided, not retried
    channel_time_passes(client, container, clock)
    assert _status(client, borrower, loan_id) == "active" and _paid_entries(container, loan_id) == 1


def test_when_no_callback_comes_the_query_finds_the_payment(client, container, clock):
    borrower, loan_id, _ = _signed(client, container, clock, ACCOUNT_NO_CALLBACK)
    with container.db.transaction() as session:  # the first query is due 10 s after the bank's "processing"
        order = session.execute(select(PaymentOrder).where(PaymentOrder.loan_id == loan_id)).scalar_one()
        assert (order.checks, order.next_check_at - order.sent_at) == (0, timedelta(seconds=10))
    assert channel_time_passes(client, container, clock, seconds=60) == 0
    assert _status(client, borrower, loan_id) == "disbursing"
    orders.recover(container)
    assert _status(client, borrower, loan_id) == "active" and _paid_entries(container, loan_id) == 1


def test_forged_and_contradicting_callbacks_are_never_posted(client, container, clock):
    borrower, loan_id, _ = _signed(client, container, clock)
    channel_time_passes(client, container, clock)
    [payout] = _payouts(client, borrower, loan_id)
    body = json.dumps({"order_no": payout["order_no"], "status": "failed", "code": "CARD_FROZEN",
                       "message": "卡状态异常", "amount_fen": 1_000_000, "channel_txn_id": "SBX-FORGED",
                       "finished_at": clock.now().strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                       "notify_id": "forged-1"}).encode()
    forged = client.post("/v1/payments/callbacks/sandbox", content=body,
                         headers={"X-Sandbox-Signature": "t=1,v1=" + "0" * 64})
    assert forged.status_code == 400 and forged.content != container.channel.ack_body
    # Properly signed (the channel's own mistake): recorded as a discrepancy, nothing voided.
    status, reply = poster(client)("http://x/v1/payments/callbacks/sandbox", body,
                                   container.channel.sign(body, clock.now()))
    assert (status, reply) == (200, container.channel.ack_body)
    assert _status(client, borrower, loan_id) == "active" and _paid_entries(container, loan_id) == 1
    with container.db.transaction() as session:
        order = session.execute(select(PaymentOrder).where(PaymentOrder.order_no == payout["order_no"])).scalar_one()
        assert order.status.value == "succeeded"
    assert _callbacks(container)[-2:] == ["rejected", "discrepancy"]


def test_a_drawdown_without_a_card_is_refused_before_anything_is_held(client, container):
    borrower = demo_borrower(client, container)
    [card] = client.get("/v1/payment-methods", headers=borrower["headers"]).json()
    assert client.delete(f"/v1/payment-methods/{card['id']}", headers=borrower["headers"]).status_code == 200
    [line] = client.get("/v1/credit-lines", headers=borrower["headers"]).json()
    body = {"line_id": line["id"], "principal_fen": 1_000_000, "method": "equal_installment", "term_months": 12}
    drawn = client.post("/v1/loans", json=body, headers={**borrower["headers"], "Idempotency-Key": "d-1"})
    assert_problem(drawn, 409, "PAYMENT_PAYOUT_METHOD_REQUIRED")
    assert client.get("/v1/loans", headers=borrower["headers"]).json() == []  # no contract drafted
    [after] = client.get("/v1/credit-lines", headers=borrower["headers"]).json()
    assert after["available_fen"] == line["available_fen"]  # none of the line held
    bind_card(client, borrower, PHONE)  # with a card, the same request draws
    assert client.post("/v1/loans", json=body, headers={**borrower["headers"], "Idempotency-Key": "d-1"}
                       ).status_code == 201


def test_signing_needs_a_card_to_pay_out_to(client, container, clock):
    """The card was there at the drawdown and is gone at the signing: still no payout, nothing kept."""
    borrower = demo_borrower(client, container)
    loan_id = _drawn(client, borrower)
    [card] = client.get("/v1/payment-methods", headers=borrower["headers"]).json()
    assert client.delete(f"/v1/payment-methods/{card['id']}", headers=borrower["headers"]).status_code == 200
    document = client.get(f"/v1/loans/{loan_id}/contract", headers=borrower["headers"])
    body = sign_body(client, clock, borrower, PHONE, loan_id, document.headers["X-Content-SHA256"])
    signed = client.post(f"/v1/loans/{loan_id}/sign", json=body,
                         headers={**borrower["headers"], "Idempotency-Key": f"sign-{loan_id}"})
    assert_problem(signed, 409, "PAYMENT_PAYOUT_METHOD_REQUIRED")
    assert _status(client, borrower, loan_id) == "requested"  # nothing of the signing was kept
