"""Following the payout in the borrower's web app over HTTPS, on both databases: every step with its time
until the money arrives (the sandbox channel's time moved and its callbacks delivered), a payout still at the
bank after minutes explained as delayed, and a failed payout with the bank's reason and both ways on: pay it
to another card (a retry form sent twice orders one payout) or cancel the loan."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from miaodai.demo import DEMO_BORROWERS
from miaodai.payments.models import OrderStatus, PaymentOrder
from miaodai.sandbox.channel import ACCOUNT_CARD_FROZEN, ACCOUNT_NAME_MISMATCH, ACCOUNT_NO_CALLBACK
from tests.integration.test_web_draw import draw_on_web, hidden, sign_on_web
from tests.integration.test_web_login import csrf, log_in
from tests.integration.test_web_login import web as web  # noqa: PLC0414 (the fixture, by its name)
from tests.integration.test_web_methods import bind_card_on_web, code_of, signed_in_demo
from tests.loan_support import demo_borrower
from tests.payment_support import bind_wallet, channel_time_passes
from tests.web_support import form_token

DEMO_CARD = DEMO_BORROWERS[0].card


def signed_to(web: TestClient, container, card: str | None = None) -> int:
    """The demo borrower draws 10,000 yuan on the web and signs, paid out to ``card`` (bound on the web and
    made the default first) or to the seed's card; returns the loan's id."""
    signed_in_demo(web, container)
    if card is not None:
        bind_card_on_web(web, card)
        page = web.get("/app/methods")
        method_id = re.search(r'action="/app/methods/(\d+)/default"', page.text).group(1)
        web.post(f"/app/methods/{method_id}/default", data={"csrf_token": csrf(page)})
    loan_id = draw_on_web(web)
    signed = sign_on_web(web, loan_id)
    assert signed.headers["location"] == f"/app/loans/{loan_id}/payout", signed.text
    return loan_id


def orders_of(container, loan_id: int) -> list[PaymentOrder]:
    with container.db.transaction() as session:
        return list(session.execute(select(PaymentOrder).where(PaymentOrder.loan_id == loan_id)
                                    .order_by(PaymentOrder.id)).scalars())


def stage_of(page) -> str:
    return re.search(r'data-stage="(\w+)"', page.text).group(1)


def test_the_payout_is_followed_step_by_step_until_the_money_arrives(web, container, clock):
    loan_id = signed_to(web, container)
    moving = web.get(f"/app/loans/{loan_id}/payout")
    assert moving.status_code == 200 and stage_of(moving) == "moving" and 'data-poll="3"' in moving.text
    assert "银行放款中" in moving.text and 'data-testid="delayed"' not in moving.text
    steps = re.findall(r"<time[^>]*>([^<]+)</time>\s*<span>([^<]+)</span>", moving.text)
    assert [text for _at, text in steps] == ["已生成放款订单", "已提交银行", "银行已受理，处理中"]
    ordered = orders_of(container, loan_id)[0].created_at + timedelta(hours=8)  # Beijing time, to the second
    assert steps[0][0] == f"{ordered.year}年{ordered.month}月{ordered.day}日 {ordered:%H:%M:%S}"
    assert steps[0][0].startswith("2026年11月22日 10:0")  # the morning the demo signs (after the signing code)
    assert f"{DEMO_CARD[:6]} **** {DEMO_CARD[-4:]}" in moving.text

    assert channel_time_passes(web, container, clock) == 1
    paid = web.get(f"/app/loans/{loan_id}/payout")
    assert stage_of(paid) == "paid" and "data-poll" not in paid.text and "借款已到账" in paid.text
    finished = orders_of(container, loan_id)[0].finished_at + timedelta(hours=8)  # when the bank paid, Beijing time
    assert f"¥10,000.00 已于 {finished.year}年{finished.month}月{finished.day}日 {finished:%H:%M:%S} 发放" in paid.text
    assert "收到银行结果通知 · 已到账" in paid.text
    english = web.get(f"/app/loans/{loan_id}/payout?lang=en")
    assert "The money is in your account" in english.text and "The bank sent its result · paid" in english.text


def test_a_payout_still_at_the_bank_after_minutes_is_explained_as_delayed(web, container, clock):
    loan_id = signed_to(web, container, ACCOUNT_NO_CALLBACK)  # paid at the bank, but no callback ever comes
    channel_time_passes(web, container, clock)
    assert 'data-testid="delayed"' not in web.get(f"/app/loans/{loan_id}/payout").text
    clock.advance(timedelta(minutes=5))
    delayed = web.get(f"/app/loans/{loan_id}/payout")
    assert stage_of(delayed) == "moving" and 'data-poll="3"' in delayed.text
    assert 'data-testid="delayed"' in delayed.text and "请勿重复申请" in delayed.text
    assert 'data-testid="retry"' not in delayed.text and "取消借款" not in delayed.text  # the bank may pay any moment
    refused = web.post(f"/app/loans/{loan_id}/cancel", data={"csrf_token": form_token(web)})
    assert refused.status_code == 409 and code_of(refused) == "LOAN_ILLEGAL_TRANSITION"
    assert [o.status for o in orders_of(container, loan_id)] == [OrderStatus.PROCESSING]


def test_a_failed_payout_is_paid_to_another_card_once_however_often_the_form_is_sent(web, client, container, clock):
    loan_id = signed_to(web, container, ACCOUNT_NAME_MISMATCH)  # fails at the bank: the name does not match
    channel_time_passes(web, container, clock)
    failed = web.get(f"/app/loans/{loan_id}/payout")
    assert stage_of(failed) == "failed" and "放款失败" in failed.text and "data-poll" not in failed.text
    reason = re.search(r'data-testid="failure">(.*?)</p>', failed.text, re.S).group(1)
    assert "户名不符" in reason and "<code>ACCOUNT_NAME_MISMATCH</code>" in reason
    checked = re.search(r'<input type="radio" id="method-(\d+)"[^>]* checked', failed.text).group(1)
    clock.advance(timedelta(seconds=61))
    who = demo_borrower(client, container)
    seed_card = next(m for m in client.get("/v1/payment-methods", headers=who["headers"]).json()
                     if m["last4"] == DEMO_CARD[-4:])
    assert int(checked) == seed_card["id"]  # another card than the one that failed is offered first

    fields = {"method_id": checked, "request_key": hidden(failed, "request_key"), "csrf_token": csrf(failed)}
    first = web.post(f"/app/loans/{loan_id}/payout/retry", data=fields)
    again = web.post(f"/app/loans/{loan_id}/payout/retry", data=fields)
    assert first.status_code == again.status_code == 303
    assert [(o.attempt, o.payment_method_id) for o in orders_of(container, loan_id)][1:] == [(2, seed_card["id"])]
    assert [m["id"] for m in client.get("/v1/payment-methods", headers=who["headers"]).json()
            if m["is_default"]] == [seed_card["id"]]  # payouts go to the default: the chosen card now is
    channel_time_passes(web, container, clock)
    paid = web.get(f"/app/loans/{loan_id}/payout")
    assert stage_of(paid) == "paid" and 'data-testid="attempt-1"' in paid.text
    assert paid.text.index('data-testid="attempt-2"') < paid.text.index('data-testid="attempt-1"')  # newest first
    assert client.get(f"/v1/loans/{loan_id}", headers=who["headers"]).json()["status"] == "active"


def test_a_refused_payout_reads_as_refused_with_why_and_what_to_do(web, client, container, clock):
    """The bank refuses at once (a frozen card) or later by its callback (the name does not match): the timeline
    says refused, why and what to do, on the page and in GET /v1/loans/{id}/payouts — not "accepted, processing"."""
    loan_id = signed_to(web, container, ACCOUNT_CARD_FROZEN)
    refused = web.get(f"/app/loans/{loan_id}/payout")
    steps = [text for _at, text in re.findall(r"<time[^>]*>([^<]+)</time>\s*<span>([^<]+)</span>", refused.text)]
    assert steps[:2] == ["已生成放款订单", "已提交银行"] and "银行已受理，处理中" not in steps
    assert steps[2] == "银行拒绝了这笔放款，原因：卡状态异常（冻结、挂失或已销户）。款项未转出，可换卡重试或取消借款"
    english = web.get(f"/app/loans/{loan_id}/payout?lang=en")
    assert ("The bank refused the payout: the card is not in normal use (frozen, reported lost or closed). No money "
            "left: choose another card and try again, or cancel the loan") in english.text
    clock.advance(timedelta(seconds=61))
    who = demo_borrower(client, container)
    events = client.get(f"/v1/loans/{loan_id}/payouts", headers=who["headers"]).json()[0]["events"]
    answered = next(e for e in events if e["event"] == "answered")
    assert answered["channel_status"] == "failed" and answered["code"] == "CARD_FROZEN"
    assert answered["text_zh"] == steps[2] and answered["text_en"].startswith("The bank refused the payout")


def test_a_payout_refused_by_the_banks_callback_reads_as_refused(web, container, clock):
    later = signed_to(web, container, ACCOUNT_NAME_MISMATCH)  # accepted first, refused by the callback
    channel_time_passes(web, container, clock)
    steps = [text for _at, text in re.findall(r"<time[^>]*>([^<]+)</time>\s*<span>([^<]+)</span>",
                                              web.get(f"/app/loans/{later}/payout").text)]
    assert steps[2] == "银行已受理，处理中"  # it was, then:
    assert steps[3].startswith("银行通知：这笔放款被拒绝，原因：户名与账户不符。"), steps


def test_a_failed_payout_can_be_cancelled_and_the_credit_comes_back(web, client, container, clock):
    loan_id = signed_to(web, container, ACCOUNT_NAME_MISMATCH)
    channel_time_passes(web, container, clock)
    failed = web.get(f"/app/loans/{loan_id}/payout")
    first = web.post(f"/app/loans/{loan_id}/cancel", data={"csrf_token": csrf(failed)})
    again = web.post(f"/app/loans/{loan_id}/cancel", data={"csrf_token": csrf(failed)})  # sent twice: no error
    assert first.status_code == again.status_code == 303
    cancelled = web.get(first.headers["location"])
    assert stage_of(cancelled) == "cancelled" and "额度已退回" in cancelled.text
    assert 'data-testid="retry"' not in cancelled.text
    clock.advance(timedelta(seconds=61))
    who = demo_borrower(client, container)
    assert client.get("/v1/credit-lines", headers=who["headers"]).json()[0]["available_fen"] == 2_000_000
    assert client.get(f"/v1/loans/{loan_id}", headers=who["headers"]).json()["status"] == "cancelled"


def test_retrying_needs_a_fresh_code_and_someone_elses_loan_is_not_there(web, client, container, clock):
    loan_id = signed_to(web, container, ACCOUNT_NAME_MISMATCH)
    channel_time_passes(web, container, clock)
    failed = web.get(f"/app/loans/{loan_id}/payout")
    clock.advance(timedelta(minutes=10))
    fields = {"method_id": "1", "request_key": hidden(failed, "request_key"), "csrf_token": csrf(failed)}
    sent_away = web.post(f"/app/loans/{loan_id}/payout/retry", data=fields,
                         headers={"referer": f"https://testserver/app/loans/{loan_id}/payout"})
    assert sent_away.status_code == 303
    assert sent_away.headers["location"] == f"/app/step-up?next=%2Fapp%2Floans%2F{loan_id}%2Fpayout"
    assert len(orders_of(container, loan_id)) == 1  # nothing was ordered
    assert web.post(f"/app/loans/{loan_id}/cancel", data={}).status_code == 403  # no token: nothing happens

    other = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    log_in(other, DEMO_BORROWERS[1].phone)
    missing = other.get(f"/app/loans/{loan_id}/payout")
    assert missing.status_code == 404 and code_of(missing) == "LOAN_NOT_FOUND"
    assert other.post(f"/app/loans/{loan_id}/cancel", data={"csrf_token": form_token(other)}
                      ).status_code == 404
    assert stage_of(web.get(f"/app/loans/{loan_id}/payout")) == "failed"


def test_a_loan_not_signed_yet_points_to_its_contract(web, container):
    signed_in_demo(web, container)
    loan_id = draw_on_web(web)
    page = web.get(f"/app/loans/{loan_id}/payout")
    assert stage_of(page) == "unsigned" and f'href="/app/loans/{loan_id}/contract"' in page.text


def test_a_payout_to_alipay_says_where_the_money_goes(web, client, container, clock):
    who = demo_borrower(client, container)
    wallet = bind_wallet(client, who, "13800138001")  # the sandbox wallet's approving login
    made_default = client.post(f"/v1/payment-methods/{wallet['id']}/default", headers=who["headers"])
    assert made_default.status_code == 200, made_default.text
    clock.advance(timedelta(seconds=61))  # the code's resend cooldown, before logging in on the web
    log_in(web, DEMO_BORROWERS[0].phone)
    loan_id = draw_on_web(web)
    assert sign_on_web(web, loan_id).headers["location"] == f"/app/loans/{loan_id}/payout"
    moving = web.get(f"/app/loans/{loan_id}/payout")
    assert stage_of(moving) == "moving" and "正在转入您的支付宝账户" in moving.text
    assert "银行" not in re.search(r'<section id="payout".*</section>', moving.text, re.S).group(0)
    steps = re.findall(r"<time[^>]*>([^<]+)</time>\s*<span>([^<]+)</span>", moving.text)
    assert [text for _at, text in steps] == ["已生成放款订单", "已提交支付宝", "支付宝已受理，处理中"]
    assert channel_time_passes(web, container, clock) == 1
    paid = web.get(f"/app/loans/{loan_id}/payout?lang=en")
    assert stage_of(paid) == "paid" and "Paid to your Alipay account" in paid.text
