"""My loans in a real Chromium on a phone-sized screen: the demo borrower with an active loan sees the plan,
repays the next installment through the payment channel and watches the debit succeed, lets the second one
go overdue and sees its days and penalty, repays it, then pays the whole loan off early — with the
recomputed plan of a partial early repayment looked at on the way — and reads the statement in English.
Every step is screenshotted (``snap``: no sideways scrolling, CJK drawn)."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from miaodai.loans.models import LoanInstallment
from tests.browser.conftest import PHONE_VIEWPORT
from tests.browser.test_web_login import snap
from tests.helpers import latest_code
from tests.loan_support import PHONE, active_loan, close_through, demo_borrower
from tests.payment_support import channel_time_passes


def log_in(page: Page, client, live_server: str, next_path: str) -> None:
    """Through the login page, the code read from the sandbox SMS inbox."""
    page.goto(f"{live_server}{next_path}")
    expect(page.locator("h1")).to_have_text("登录")
    page.get_by_label("手机号").fill(PHONE)
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_label("验证码").fill(latest_code(client, PHONE))
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{live_server}{next_path}")


def due_date(container, loan_id: int, period: int):
    with container.db.transaction() as session:
        return session.execute(select(LoanInstallment.due_date).where(
            LoanInstallment.loan_id == loan_id, LoanInstallment.period == period)).scalar_one()


def test_plan_repay_overdue_and_pay_off_on_a_phone(browser: Browser, live_server, container, client, clock, backend):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    clock.advance(timedelta(seconds=61))
    context = browser.new_context(viewport=PHONE_VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    page = context.new_page()
    try:
        log_in(page, client, live_server, "/app/loans")
        card = page.get_by_test_id(f"loan-{loan['id']}")
        expect(card).to_contain_text("还款中")
        expect(card.get_by_test_id("next-due")).to_contain_text("¥")
        snap(page, f"loans-01-list-{backend}")

        card.get_by_role("link", name="还款计划与还款").click()
        expect(page.locator("h1")).to_have_text("还款计划")
        expect(page.locator("table.plan tbody tr")).to_have_count(12)
        expect(page.get_by_test_id("apr")).to_contain_text("%")
        snap(page, f"loans-02-plan-{backend}")

        # The next installment, paid before it is due: held, then applied on the due date.
        page.get_by_role("link", name="现在还下一期").click()
        expect(page.get_by_label("还款金额（元）")).to_have_value(f"{loan['installments'][0]['total_fen'] / 100:.2f}")
        expect(page.get_by_label("缩短期限：月供不变，期数减少")).to_be_hidden()  # only for a partial repayment
        snap(page, f"loans-03-repay-{backend}")
        page.get_by_role("button", name="下一步：确认").click()
        expect(page.locator("h1")).to_have_text("确认还款")
        snap(page, f"loans-04-review-{backend}")
        page.get_by_role("button", name="确认还款").click()
        expect(page.get_by_test_id("debit-status")).to_have_text("银行处理中，请勿重复还款")
        snap(page, f"loans-05-processing-{backend}")
        assert channel_time_passes(client, container, clock) == 1
        expect(page.get_by_test_id("debit-status")).to_have_text("还款成功", timeout=10_000)  # the page polls
        snap(page, f"loans-06-repaid-{backend}")

        # A month on, the first installment took the held money; the second is not paid and goes overdue.
        close_through(container, clock, due_date(container, loan["id"], 2) + timedelta(days=5))
        log_in(page, client, live_server, f"/app/loans/{loan['id']}")  # the session ran out meanwhile
        expect(page.locator("table.plan tbody tr").nth(0)).to_contain_text("已还清")
        overdue = page.locator("table.plan tbody tr").nth(1)
        expect(overdue).to_contain_text("已逾期")
        expect(overdue).to_contain_text("含罚息 ¥")
        expect(page.get_by_test_id("overdue-line")).to_contain_text("天")
        snap(page, f"loans-07-overdue-{backend}")
        page.goto(f"{live_server}/app/loans")
        expect(page.get_by_test_id("penalty")).to_contain_text("¥")
        expect(page.get_by_test_id("days-overdue")).to_be_visible()
        snap(page, f"loans-08-list-overdue-{backend}")

        page.get_by_role("link", name="还款计划与还款").click()
        page.get_by_role("link", name="立即还当前应还").click()
        page.get_by_role("button", name="下一步：确认").click()
        page.get_by_role("button", name="确认还款").click()
        expect(page.get_by_test_id("debit-status")).to_have_text("银行处理中，请勿重复还款")
        channel_time_passes(client, container, clock)
        expect(page.get_by_test_id("debit-status")).to_have_text("还款成功", timeout=10_000)
        page.get_by_role("link", name="还款计划", exact=True).last.click()
        expect(page.locator("table.plan tbody tr").nth(1)).to_contain_text("已还清")
        expect(page.get_by_test_id("overdue-line")).to_have_count(0)
        snap(page, f"loans-09-caught-up-{backend}")

        # A partial early repayment shows the new plan before anything is taken; then the whole loan instead.
        page.get_by_role("link", name="提前还部分").click()
        page.get_by_label("还款金额（元）").fill("3000")
        page.get_by_label("减少月供：期数不变，月供降低").check()
        page.get_by_role("button", name="下一步：确认").click()
        expect(page.get_by_test_id("new-plan").locator("tbody tr")).to_have_count(10)
        snap(page, f"loans-10-prepayment-review-{backend}")
        page.get_by_role("link", name="返回修改").click()
        page.get_by_label("今天全部结清").check()
        expect(page.get_by_label("还款金额（元）")).to_be_hidden()
        page.get_by_role("button", name="下一步：确认").click()
        expect(page.get_by_test_id("payoff")).to_be_visible()
        snap(page, f"loans-11-payoff-review-{backend}")
        page.get_by_role("button", name="确认还款").click()
        channel_time_passes(client, container, clock)
        expect(page.get_by_test_id("done")).to_have_text("您的借款已全部结清。", timeout=10_000)
        snap(page, f"loans-12-paid-off-{backend}")

        page.get_by_role("link", name="借款流水：每一笔交易").click()
        page.get_by_test_id("lang-switch").click()
        expect(page.locator("h1")).to_have_text("Statement")
        expect(page.get_by_test_id("owed")).to_have_text("¥0.00")
        expect(page.get_by_test_id("line").last).to_contain_text("Repayment")
        snap(page, f"loans-13-statement-en-{backend}")
    finally:
        context.close()
