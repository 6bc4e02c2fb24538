"""My loans in the borrower's web app (/app/loans…) over HTTP, on both databases: the list and the plan with
paid, due, overdue and penalty states; repaying what is due, a payoff and a partial prepayment through the
payment channel (the recomputed plan shown before confirming), a failed debit with its reason, every
refusal shown with its code, a confirm sent twice making one debit, and the statement — each figure the
one the API gives for the same loan."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest
from sqlalchemy import func, select

from miaodai.core.formatting import percent
from miaodai.loans.models import Loan, LoanInstallment, Repayment
from miaodai.payments.bins import sandbox_number
from miaodai.payments.models import PaymentOrder
from miaodai.sandbox.channel import ACCOUNT_INSUFFICIENT_FUNDS
from miaodai.web.i18n import day, yuan
from tests.helpers import staff_headers, step_up
from tests.integration.test_web_login import csrf, log_in
from tests.integration.test_web_login import web as web  # noqa: F401  (the fixture)
from tests.loan_support import PHONE, active_loan, assert_book_sound, close_through, demo_borrower
from tests.payment_support import bind_card, channel_time_passes
from tests.web_support import form_token


@pytest.fixture
def borrower(client, container):
    return demo_borrower(client, container)


@pytest.fixture
def loan(client, clock, borrower):
    return active_loan(client, clock, borrower)


def web_login(web, clock) -> None:
    clock.advance(timedelta(seconds=61))  # past the code's resend cooldown (the API logged in just now)
    log_in(web, PHONE)


def code_of(page) -> str | None:
    found = re.search(r'role="alert" data-code="([A-Z_]+)"', page.text)
    return found.group(1) if found else None


def text(page) -> str:
    """The page's words without tags (figures are checked as a person reads them)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page.text)))


def debits(container) -> list[PaymentOrder]:
    with container.db.transaction() as session:
        return list(session.execute(select(PaymentOrder).where(PaymentOrder.kind == "collection")
                                    .order_by(PaymentOrder.id)).scalars())


def review(web, loan_id: int, **params):
    page = web.get(f"/app/loans/{loan_id}/repay/review", params=params)
    assert page.status_code == 200 and code_of(page) is None, (code_of(page), text(page)[:400])
    return page


def confirm_form(page) -> dict[str, str]:
    """The hidden fields of the review page's confirm form, as the browser would send them."""
    form = page.text[page.text.index('method="post"'):]
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', form))


def confirm(web, loan_id: int, page):
    return web.post(f"/app/loans/{loan_id}/repay", data=confirm_form(page))


def method_id(web, loan_id: int) -> str:
    """The card the repay page chooses first (the borrower's default)."""
    page = web.get(f"/app/loans/{loan_id}/repay?what=due")
    return re.search(r'name="method" value="(\d+)" checked', page.text).group(1)


def api_loan(client, borrower, loan_id) -> dict:
    return client.get(f"/v1/loans/{loan_id}", headers=borrower["headers"]).json()


def rows(page) -> list[str]:
    return re.findall(r'<tr class="row-([a-z]+)" data-period="\d+">', page.text)


def test_the_pages_need_a_login(web):
    assert web.get("/app/loans").headers["location"] == "/app/login?next=%2Fapp%2Floans"
    assert web.get("/app/loans/1/repay").headers["location"].startswith("/app/login?next=")


def test_the_list_and_the_plan_say_what_the_api_says(web, client, clock, borrower, loan):
    web_login(web, clock)
    listed = web.get("/app/loans")
    assert listed.status_code == 200
    words = text(listed)
    # By the day it was paid out and its amount (issue 20), not by its number.
    paid_out = day(date.fromisoformat(loan["start_date"]), "zh_CN")
    assert loan["loan_no"] not in words and "还款中" in words and f"{paid_out} 借款 ¥10,000.00" in words
    first = loan["installments"][0]
    assert yuan(first["total_fen"]) in words and f"{first['due_date'][:4]}年" in words  # next due date and amount
    assert f"/app/loans/{loan['id']}" in listed.text
    assert "Repaying" in text(web.get("/app/loans?lang=en"))

    plan = web.get(f"/app/loans/{loan['id']}?lang=zh")
    assert plan.status_code == 200
    assert rows(plan) == ["pending"] * 12
    assert re.search(r'data-testid="apr">([^<]+)<', plan.text).group(1) == percent(Decimal(loan["apr"]))
    for line in loan["installments"]:
        assert yuan(line["total_fen"]) in plan.text
    words = text(plan)
    assert "立即还" not in words and "现在还下一期" in words and "提前全部结清" in words and "提前还部分" in words
    for what in ("due", "payoff", "prepayment"):
        assert f"/app/loans/{loan['id']}/repay?what={what}" in plan.text

    # Another drawdown, not signed yet: it goes on at its contract, and there is nothing to repay.
    line_id = client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["id"]
    drawn = client.post("/v1/loans", json={"line_id": line_id, "principal_fen": 200_000, "term_months": 6},
                        headers={**borrower["headers"], "Idempotency-Key": "loan-2"}).json()
    listed = web.get("/app/loans")
    assert f'href="/app/loans/{drawn["id"]}/contract"' in listed.text and "待签约" in text(listed)
    refused = web.get(f"/app/loans/{drawn['id']}/repay")
    assert code_of(refused) == "LOAN_NOT_REPAYABLE" and refused.status_code == 409
    assert "这笔借款目前无需还款" in refused.text and "requested" not in text(refused)


def test_an_overdue_installment_shows_its_days_and_penalty_and_repaying_it_through_the_channel_clears_it(
        web, client, container, clock, borrower, loan):
    first = loan["installments"][0]
    with container.db.transaction() as session:
        due_date = session.execute(select(LoanInstallment.due_date).where(
            LoanInstallment.loan_id == loan["id"], LoanInstallment.period == 1)).scalar_one()
    # No auto-debit ran: the installment is late past its 3 days of grace, so penalty is charged.
    close_through(container, clock, due_date + timedelta(days=5))
    with container.db.transaction() as session:
        late = session.get(Loan, loan["id"]).days_past_due
    assert late > 3
    web_login(web, clock)
    listed = text(web.get("/app/loans"))
    assert "已逾期" in listed and f"逾期天数 {late} 天" in listed and "罚息及滞纳金 ¥" in listed

    plan = web.get(f"/app/loans/{loan['id']}")
    assert rows(plan)[:2] == ["overdue", "pending"]
    with container.db.transaction() as session:
        line = session.execute(select(LoanInstallment).where(LoanInstallment.loan_id == loan["id"],
                                                             LoanInstallment.period == 1)).scalar_one()
        owed = (line.principal_fen + line.interest_fen + line.fee_fen + line.penalty_fen)
        penalty = line.penalty_fen
    assert penalty > 0 and first["total_fen"] + penalty == owed
    assert f"含罚息 {yuan(penalty)}" in text(plan)
    assert re.search(r'data-testid="headline">([^<]+)<', plan.text).group(1) == yuan(owed)

    form = web.get(f"/app/loans/{loan['id']}/repay?what=due")
    assert f'name="amount" inputmode="decimal" value="{owed / 100:.2f}"' in form.text  # prefilled with what is due
    page = review(web, loan["id"], what="due", amount=f"{owed / 100:.2f}", method=method_id(web, loan["id"]))
    assert re.search(r'data-testid="amount">([^<]+)<', page.text).group(1) == yuan(owed)
    sent = confirm(web, loan["id"], page)
    assert sent.status_code == 303
    progress_url = sent.headers["location"]
    assert progress_url.startswith(f"/app/loans/{loan['id']}/repayments/")
    progress = web.get(progress_url)
    assert 'data-status="processing"' in progress.text and 'data-poll="3"' in progress.text
    assert "银行处理中" in progress.text and "已提交银行" in progress.text

    assert channel_time_passes(client, container, clock) == 1
    done = web.get(progress_url)
    assert 'data-status="succeeded"' in done.text and "data-poll" not in done.text and "还款成功" in done.text
    assert "收到银行结果通知" in done.text  # the callback's step, with its time
    plan = web.get(f"/app/loans/{loan['id']}")
    assert rows(plan)[:2] == ["paid", "pending"] and "还款中" in text(plan)
    with container.db.transaction() as session:
        assert (session.get(Loan, loan["id"]).status, session.get(Loan, loan["id"]).days_past_due) == ("active", 0)
    assert_book_sound(container)


def test_a_payoff_takes_todays_quote_and_settles_the_loan(web, client, container, clock, borrower, loan):
    clock.advance(timedelta(days=10))
    web_login(web, clock)
    quote = client.get(f"/v1/loans/{loan['id']}/payoff-quote", headers=borrower["headers"]).json()
    form = web.get(f"/app/loans/{loan['id']}/repay?what=payoff")
    assert 'id="what-payoff" name="what" value="payoff" checked' in form.text and yuan(quote["total_fen"]) in form.text
    page = review(web, loan["id"], what="payoff", method=method_id(web, loan["id"]))
    assert re.search(r'data-testid="amount">([^<]+)<', page.text).group(1) == yuan(quote["total_fen"])
    assert yuan(quote["accrued_interest_fen"]) in page.text
    progress = confirm(web, loan["id"], page).headers["location"]
    channel_time_passes(client, container, clock)
    assert "您的借款已全部结清" in web.get(progress).text
    plan = web.get(f"/app/loans/{loan['id']}")
    assert "这笔借款已结清" in plan.text and "/repay?what=" not in plan.text
    assert api_loan(client, borrower, loan["id"])["status"] == "paid_off"
    assert_book_sound(container)


@pytest.mark.parametrize("mode", ["shorter_term", "smaller_installment"])
def test_a_partial_prepayment_shows_the_recomputed_plan_before_anything_is_taken(
        web, client, container, clock, borrower, loan, mode):
    clock.advance(timedelta(days=10))
    web_login(web, clock)
    quoted = client.post(f"/v1/loans/{loan['id']}/prepayment-quote", json={"amount_fen": 300_000, "mode": mode},
                         headers=borrower["headers"]).json()
    page = review(web, loan["id"], what="prepayment", amount="3,000", mode=mode, method=method_id(web, loan["id"]))
    new_plan = page.text[page.text.index('data-testid="new-plan"'):page.text.index("</table>")]
    shown = re.findall(r'<td class="num">(¥[\d,.]+)', new_plan)
    assert shown == [yuan(i["total_fen"]) for i in quoted["installments"]]
    if mode == "shorter_term":  # the same installments, fewer of them
        assert len(shown) < 12
    else:  # as many, each smaller
        assert len(shown) == 12 and quoted["installments"][5]["total_fen"] < loan["installments"][5]["total_fen"]
    assert yuan(quoted["principal_fen"]) in page.text
    assert page.text.index('data-testid="new-plan"') < page.text.index('type="submit"')  # before the button
    assert debits(container) == []  # nothing taken yet

    progress = confirm(web, loan["id"], page).headers["location"]
    channel_time_passes(client, container, clock)
    assert "还款成功" in web.get(progress).text
    after = api_loan(client, borrower, loan["id"])
    future = [i for i in after["installments"] if i["status"] == "pending" and i["total_fen"] > 0]
    assert [i["total_fen"] for i in future][1:] == [i["total_fen"] for i in quoted["installments"]][1:]
    plan = web.get(f"/app/loans/{loan['id']}")
    for line in quoted["installments"][1:]:
        assert yuan(line["total_fen"]) in plan.text
    assert_book_sound(container)


def test_every_refusal_is_shown_with_its_code_and_takes_nothing(web, client, container, clock, borrower, loan):
    clock.advance(timedelta(days=5))
    web_login(web, clock)
    card = method_id(web, loan["id"])
    url = f"/app/loans/{loan['id']}/repay/review"

    bad = web.get(url, params={"what": "due", "amount": "ten", "method": card})
    assert (bad.status_code, code_of(bad)) == (422, "LOAN_TERMS_INVALID") and "以元为单位" in bad.text
    assert 'value="ten"' in bad.text  # what was typed is shown again
    empty = web.get(url, params={"what": "due", "amount": "", "method": card})
    assert code_of(empty) == "PAYMENT_REPAYMENT_AMOUNT_REQUIRED" and "amount_fen" not in empty.text
    small = web.get(url, params={"what": "prepayment", "amount": "1", "method": card})
    assert (small.status_code, code_of(small)) == (422, "LOAN_PREPAYMENT_TOO_SMALL")
    nobody = web.get(url, params={"what": "due", "amount": "100", "method": "999999"})
    assert (nobody.status_code, code_of(nobody)) == (404, "PAYMENT_METHOD_NOT_FOUND")
    missing = web.get("/app/loans/999999")
    assert (missing.status_code, code_of(missing)) == (404, "LOAN_NOT_FOUND")

    too_much = confirm(web, loan["id"], review(web, loan["id"], what="due", amount="20000", method=card))
    assert (too_much.status_code, code_of(too_much)) == (422, "PAYMENT_REPAYMENT_MORE_THAN_OWED")
    assert "/v1/" not in too_much.text and "今天全部结清" in too_much.text  # what to do, in the app's words

    payoff = review(web, loan["id"], what="payoff", method=card)
    clock.advance(timedelta(days=1))  # a day's interest later the quote is another amount
    changed = confirm(web, loan["id"], payoff)
    assert (changed.status_code, code_of(changed)) == (409, "PAYMENT_PAYOFF_AMOUNT_CHANGED")

    step_up(client, clock, borrower, PHONE)
    zheshang = bind_card(client, borrower, PHONE, sandbox_number("621019", 19, "5"))  # no debits at this bank
    cannot = confirm(web, loan["id"], review(web, loan["id"], what="due", amount="100", method=str(zheshang["id"])))
    assert (cannot.status_code, code_of(cannot)) == (422, "PAYMENT_METHOD_CANNOT_COLLECT")
    offered = web.get(f"/app/loans/{loan['id']}/repay?lang=en").text  # said beforehand, and not offered
    assert re.search(rf'value="{zheshang["id"]}"\s+disabled>', offered) and "does not let us take repayments" in offered
    assert debits(container) == []

    first = confirm(web, loan["id"], review(web, loan["id"], what="due", amount="100", method=card))
    assert first.status_code == 303
    busy = confirm(web, loan["id"], review(web, loan["id"], what="due", amount="100", method=card))
    assert (busy.status_code, code_of(busy)) == (409, "PAYMENT_REPAYMENT_IN_PROGRESS")
    assert f'href="{first.headers["location"]}"' in busy.text  # the debit in flight, one tap away
    assert len(debits(container)) == 1


def test_a_confirm_sent_twice_makes_one_debit(web, client, container, clock, borrower, loan):
    web_login(web, clock)
    page = review(web, loan["id"], what="due", amount="500", method=method_id(web, loan["id"]))
    first, second = confirm(web, loan["id"], page), confirm(web, loan["id"], page)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(debits(container)) == 1
    channel_time_passes(client, container, clock)
    confirm(web, loan["id"], page)  # once more after it succeeded: still that debit
    assert len(debits(container)) == 1
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Repayment)) == 1
    # A fresh review is a new repayment (a new key).
    assert confirm(web, loan["id"], review(web, loan["id"], what="due", amount="500",
                                           method=method_id(web, loan["id"]))).status_code == 303
    assert len(debits(container)) == 2


def test_a_failed_debit_says_why_and_what_to_do(web, client, container, clock, borrower, loan):
    step_up(client, clock, borrower, PHONE)
    empty = bind_card(client, borrower, PHONE, ACCOUNT_INSUFFICIENT_FUNDS)
    web_login(web, clock)
    progress = confirm(web, loan["id"], review(web, loan["id"], what="due", amount="100", method=str(empty["id"])))
    channel_time_passes(client, container, clock)
    failed = web.get(progress.headers["location"])
    assert 'data-status="failed"' in failed.text and code_of(failed) == "INSUFFICIENT_FUNDS"
    assert "扣款失败：余额不足。未扣到钱。" in text(failed) and "请为该卡充值" in failed.text
    assert f"/app/loans/{loan['id']}/repay?what=due" in failed.text
    english = text(web.get(progress.headers["location"] + "?lang=en"))
    assert "The debit failed: not enough money on the card. No money was taken." in english
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Repayment)) == 0


def test_the_statement_lists_every_transaction_with_running_balances(web, client, container, clock, borrower,
                                                                      loan):
    web_login(web, clock)
    progress = confirm(web, loan["id"], review(web, loan["id"], what="due", amount="500",
                                               method=method_id(web, loan["id"])))
    channel_time_passes(client, container, clock)
    assert "还款成功" in web.get(progress.headers["location"]).text
    lines = client.get(f"/v1/loans/{loan['id']}/statement", headers=borrower["headers"]).json()
    page = web.get(f"/app/loans/{loan['id']}/statement")
    assert page.status_code == 200
    kinds = re.findall(r'data-testid="line" data-kind="([a-z_]+)"', page.text)
    assert kinds == [line["kind"] for line in lines] and "repayment" in kinds
    words = text(page)
    for line in lines:
        assert line["name_zh"] in words
    assert "收到您的还款 ¥500.00" in words and "为您暂存 ¥500.00" in words
    last = lines[-1]["balance"]
    owed = last["principal_fen"] + last["interest_fen"] + last["fee_fen"] + last["penalty_fen"]
    assert re.search(r'data-testid="owed">([^<]+)<', page.text).group(1) == yuan(owed)
    english = text(web.get(f"/app/loans/{loan['id']}/statement?lang=en"))
    assert lines[0]["name_en"].capitalize() in english and "Received from you: ¥500.00" in english


def test_someone_elses_loan_is_not_found_and_a_form_without_its_token_is_refused(web, client, container, clock,
                                                                                  borrower, loan):
    web_login(web, clock)
    page = review(web, loan["id"], what="due", amount="100", method=method_id(web, loan["id"]))
    forged = {**confirm_form(page), "csrf_token": "forged"}
    assert web.post(f"/app/loans/{loan['id']}/repay", data=forged).status_code == 403
    keyless = {k: v for k, v in confirm_form(page).items() if k != "key"}
    start_over = web.post(f"/app/loans/{loan['id']}/repay", data=keyless)
    assert start_over.headers["location"] == f"/app/loans/{loan['id']}/repay"
    assert debits(container) == []

    web.post("/app/logout", data={"csrf_token": csrf(page)})
    clock.advance(timedelta(seconds=61))
    log_in(web, "13800000002")  # another borrower
    assert code_of(web.get(f"/app/loans/{loan['id']}")) == "LOAN_NOT_FOUND"
    assert code_of(web.get(f"/app/loans/{loan['id']}/statement")) == "LOAN_NOT_FOUND"
    # The first borrower's page and its token belong to their session: the form is refused as it stands ...
    assert web.post(f"/app/loans/{loan['id']}/repay", data=confirm_form(page)).status_code == 403
    # ... and with this session's own token the loan is someone else's.
    stolen = web.post(f"/app/loans/{loan['id']}/repay", data={**confirm_form(page), "csrf_token": form_token(web)})
    assert code_of(stolen) == "LOAN_NOT_FOUND"
    assert debits(container) == []
    assert "您还没有借款" in web.get("/app/loans").text


def test_held_money_paid_back_by_staff_shows_as_a_refund(web, client, container, clock, borrower, loan,
                                                         fast_staff_hasher):
    web_login(web, clock)
    confirm(web, loan["id"], review(web, loan["id"], what="due", amount="50", method=method_id(web, loan["id"])))
    channel_time_passes(client, container, clock)
    assert "已收到。¥50.00 先为您暂存" in text(web.get(f"/app/loans/{loan['id']}/repayments/"
                                                    f"{debits(container)[0].order_no}"))
    finance = staff_headers(client, container, clock, "finance", ("finance",))
    proposed = client.post(f"/v1/staff/loans/{loan['id']}/refunds", json={"amount_fen": 5_000, "reason": "overpaid"},
                           headers={**finance, "Idempotency-Key": "rf-1"})
    assert proposed.status_code == 202, proposed.text
    checker = staff_headers(client, container, clock, "finance-2", ("finance",))  # maker-checker
    refunded = client.post(f"/v1/staff/approvals/{proposed.json()['id']}/approve", json={}, headers=checker)
    assert refunded.status_code == 200, refunded.text
    channel_time_passes(client, container, clock)
    plan = web.get(f"/app/loans/{loan['id']}")
    assert "退款给您" in plan.text and 'data-testid="held"' not in plan.text
    page = web.get(f"/app/loans/{loan['id']}/repayments/{refunded.json()['result']['order_no']}")
    assert "已退回到您的银行卡" in page.text and "退至：" in page.text and "重新还款" not in page.text
