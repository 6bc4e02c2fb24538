"""The whole journey in one go, in a real Chromium at 390×844: a brand-new borrower goes from the login page to a
paid-off loan — SMS login, verifying (consents in place, name + ID, carrier, face through the sandbox's camera
stand-in), the credit-bureau consent, an approved application; then, in English, a debit card bound (its bank
named as the number is typed, the bank's code from the sandbox inbox) and money drawn with the live quote (the APR
the largest figure) and the contract read; back in Chinese, signing with a fresh code, the payout arriving, a month
on the first installment repaid, the rest paid off, and the paid-off loan with its statement. After the first
page every step is reached by the links a borrower sees, never by typing an address. Every step is screenshotted
(``journey-{backend}-NN-what``; ``snap``: no sideways scrolling, CJK drawn). Also: the login lockout after too many
wrong codes, its end time shown and the form refused until then."""

from __future__ import annotations

import math
from datetime import timedelta

from playwright.sync_api import Browser, Page, expect

from miaodai.core.clock import BUSINESS_TZ
from miaodai.credit import bureau
from miaodai.demo import seed_demo
from tests.browser.journey_support import (
    assert_above_the_fold,
    biggest_text,
    fill_application,
    onboard,
    phone_context,
    sign_with_fresh_code,
    type_card,
)
from tests.browser.test_web_loans import due_date
from tests.browser.test_web_login import snap
from tests.credit_support import install_test_model, quick_parties
from tests.helpers import latest_code
from tests.loan_support import close_through
from tests.payment_support import channel_time_passes

PHONE = "13700137601"  # a number the app has never seen
CARD = "6222 0210 0000 0001 007"  # docs/sandbox.md: an ICBC debit card, bound with the bank's code
PAYOUT_WAIT = 15_000  # ms: the payout and repayment pages ask the server again every 3 s


def tab(page: Page, name: str) -> None:
    """One of the tabs at the bottom of every signed-in page."""
    page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()


def log_in_again(page: Page, client, phone: str) -> None:
    page.get_by_label("手机号").fill(phone)
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_label("验证码").fill(latest_code(client, phone))
    page.get_by_role("button", name="登录").click()


def test_a_new_borrower_from_the_login_page_to_a_paid_off_loan(browser: Browser, live_server, container, client,
                                                                clock, backend):
    seed_demo(container)
    install_test_model(container)
    quick_parties(container)
    shots = f"journey-{backend}"
    context = phone_context(browser)
    page = context.new_page()
    expect.set_options(timeout=PAYOUT_WAIT)
    try:
        # Sign up, verify, agree, apply: approved, the line's all-in APR the biggest figure, on the first screen.
        onboard(page, client, live_server, PHONE, bureau.CLEAN_FILE_ID, shots=shots)
        fill_application(page)
        snap(page, f"{shots}-08-apply")
        page.get_by_role("button", name="提交申请，立即出结果").click()
        expect(page.get_by_test_id("decision")).to_have_attribute("data-status", "approved")
        assert biggest_text(page) == page.get_by_test_id("line-apr").inner_text()
        assert_above_the_fold(page, page.get_by_test_id("line-apr"))
        snap(page, f"{shots}-09-approved")

        # In English from here to the contract. The start page says a card must come first, and links to it.
        page.get_by_test_id("lang-switch").click()
        expect(page.locator("h1")).to_have_text("Approved")
        tab(page, "Home")
        line_card = page.get_by_test_id("line-card")  # the setup done: home is the line, no checklist
        expect(page.get_by_test_id("journey")).to_have_count(0)
        expect(line_card.get_by_test_id("no-payout-method")).to_contain_text("bind one first")
        snap(page, f"{shots}-10-home-en")
        line_card.get_by_role("link", name="Cards and wallets").click()
        expect(page.locator("h1")).to_have_text("Cards and wallets")
        page.get_by_role("link", name="Bind a debit card").click()
        type_card(page, CARD, label="Card number")
        expect(page.get_by_test_id("bank")).to_have_text("Industrial and Commercial Bank of China debit card")
        snap(page, f"{shots}-11-card-en")
        page.get_by_role("button", name="Get the bank's code").click()
        expect(page.locator("h1")).to_have_text("Enter the bank's code")
        page.get_by_label("The bank's code").fill(latest_code(client, PHONE))
        snap(page, f"{shots}-12-bank-code-en")
        page.get_by_role("button", name="Bind this card").click()
        expect(page.get_by_test_id("done")).to_have_text("Your card is bound.")
        expect(page.locator(".method")).to_contain_text(CARD[-4:])
        snap(page, f"{shots}-13-card-bound-en")

        tab(page, "Home")
        expect(page.get_by_test_id("no-payout-method")).to_have_count(0)
        page.get_by_test_id("line-card").get_by_role("link", name="Borrow", exact=True).click()
        expect(page.get_by_test_id("payout-to")).to_contain_text(CARD[-4:])
        first_interest = page.get_by_test_id("total-interest").inner_text()
        page.get_by_label("Amount (yuan)").fill("5000")
        expect(page.get_by_test_id("total-interest")).not_to_have_text(first_interest)  # the live quote
        page.get_by_label("Term").select_option("m6")
        expect(page.locator(".installment")).to_have_count(6)
        apr = page.get_by_test_id("apr").inner_text()
        assert apr.endswith("%") and biggest_text(page) == apr  # the APR first and largest
        snap(page, f"{shots}-14-draw-en")
        page.get_by_role("button", name="Next: read the contract").click()
        expect(page.locator("h1")).to_have_text("Read the contract")
        expect(page.get_by_test_id("contract").locator("h2").first).to_contain_text("借款合同")
        snap(page, f"{shots}-15-contract-en")

        # Back in Chinese: sign with a code sent for this contract, watch the payout arrive.
        page.get_by_test_id("lang-switch").click()
        expect(page.locator("h1")).to_have_text("阅读借款合同")
        sign_with_fresh_code(page, client, PHONE, clock)
        expect(page.get_by_test_id("payout-to")).to_contain_text(CARD[-4:])
        snap(page, f"{shots}-16-sign")
        page.get_by_role("button", name="同意并签署").click()
        expect(page.get_by_test_id("payout-status")).to_contain_text("银行放款中")
        snap(page, f"{shots}-17-payout-moving")
        assert channel_time_passes(client, container, clock) == 1
        expect(page.get_by_test_id("payout-status")).to_contain_text("借款已到账")  # the page updated itself
        snap(page, f"{shots}-18-payout-paid")

        tab(page, "借款")
        loan_card = page.locator(".loan-card")
        expect(loan_card).to_have_count(1)
        expect(loan_card).to_contain_text("还款中")
        loan_id = int(loan_card.get_attribute("data-testid").removeprefix("loan-"))
        snap(page, f"{shots}-19-my-loans")
        tab(page, "首页")  # the loan's first installment is this period's bill, a tap from repaying it
        expect(page.get_by_test_id("due-this-period").get_by_test_id(f"due-loan-{loan_id}")).to_contain_text("还款")
        snap(page, f"{shots}-19b-home-due")
        tab(page, "借款")

        # A month on, the first installment falls due; the 30-day session has run out meanwhile.
        close_through(container, clock, due_date(container, loan_id, 1) - timedelta(days=1))
        page.reload()
        expect(page.locator("h1")).to_have_text("登录")
        log_in_again(page, client, PHONE)
        expect(page.locator("h1")).to_have_text("我的借款")
        snap(page, f"{shots}-20-due-today")
        page.get_by_role("link", name="还款计划与还款").click()
        expect(page.locator("table.plan tbody tr")).to_have_count(6)
        snap(page, f"{shots}-21-plan")
        page.get_by_role("link", name="立即还当前应还").click()
        page.get_by_role("button", name="下一步：确认").click()
        expect(page.locator("h1")).to_have_text("确认还款")
        snap(page, f"{shots}-22-repay-first")
        page.get_by_role("button", name="确认还款").click()
        expect(page.get_by_test_id("debit-status")).to_have_text("银行处理中，请勿重复还款")
        channel_time_passes(client, container, clock)
        expect(page.get_by_test_id("debit-status")).to_have_text("还款成功")
        snap(page, f"{shots}-23-first-repaid")

        # The rest paid off today.
        page.get_by_role("link", name="还款计划", exact=True).last.click()
        expect(page.locator("table.plan tbody tr").nth(0)).to_contain_text("已还清")
        page.get_by_role("link", name="提前全部结清").click()
        expect(page.get_by_label("今天全部结清")).to_be_checked()
        page.get_by_role("button", name="下一步：确认").click()
        expect(page.get_by_test_id("payoff")).to_be_visible()
        snap(page, f"{shots}-24-payoff-review")
        page.get_by_role("button", name="确认还款").click()
        channel_time_passes(client, container, clock)
        expect(page.get_by_test_id("done")).to_have_text("您的借款已全部结清。")
        snap(page, f"{shots}-25-paid-off")

        page.get_by_role("link", name="借款流水：每一笔交易").click()
        expect(page.get_by_test_id("owed")).to_have_text("¥0.00")
        expect(page.get_by_test_id("line").last).to_contain_text("还款")
        snap(page, f"{shots}-26-statement")
        tab(page, "借款")
        expect(page.locator(".loan-card")).to_contain_text("已结清")
        snap(page, f"{shots}-27-my-loans-paid-off")
    finally:
        expect.set_options(timeout=5_000)
        context.close()


LOCKED_PHONE = "13700137602"


def test_too_many_wrong_codes_burn_the_code_and_stop_that_network_until_the_time_shown(
        browser: Browser, live_server, container, client, clock, backend):
    limits = container.settings  # 5 wrong guesses burn a code; 5 from one network at one number stop it
    hour_ends = clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    retry_at = hour_ends.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M:%S")  # Beijing time
    context = phone_context(browser)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/app")
        page.get_by_role("link", name="登录 / 注册").click()
        page.get_by_label("手机号").fill(LOCKED_PHONE)
        page.get_by_role("button", name="获取验证码").click()
        right = latest_code(client, LOCKED_PHONE)
        wrong = "111111" if right != "111111" else "222222"
        alert = page.get_by_role("alert")
        for left in range(limits.otp_max_wrong_guesses - 1, 0, -1):
            page.get_by_label("验证码").fill(wrong)
            page.get_by_role("button", name="登录").click()
            expect(alert).to_have_attribute("data-code", "OTP_WRONG_CODE")
            expect(alert).to_contain_text(f"还可尝试 {left} 次")
        page.get_by_label("验证码").fill(wrong)
        page.get_by_role("button", name="登录").click()
        expect(alert).to_have_attribute("data-code", "OTP_TOO_MANY_WRONG_GUESSES")
        expect(alert).to_contain_text("该验证码已失效")
        snap(page, f"lockout-{backend}-01-code-burned")
        expect(page.get_by_label("验证码")).to_have_count(0)  # nothing to type the burned code into

        # A new code comes, but this network has had its wrong codes at this number for the hour: even the
        # right code is refused, unjudged, until the time shown. The number itself is not locked.
        clock.advance(timedelta(seconds=61))
        page.get_by_role("link", name="返回登录").click()
        page.get_by_label("手机号").fill(LOCKED_PHONE)
        page.get_by_role("button", name="获取验证码").click()
        fresh = latest_code(client, LOCKED_PHONE)
        assert fresh != right
        page.get_by_label("验证码").fill(fresh)
        page.get_by_role("button", name="登录").click()
        expect(alert).to_have_attribute("data-code", "OTP_WRONG_CODES_FROM_NETWORK")
        left = math.ceil((hour_ends - clock.now()).total_seconds())  # said as a phone says it, not a timestamp
        expect(alert).to_contain_text(f"请{left}秒后再试" if left < 60 else f"请{-(-left // 60)}分钟后再试")
        expect(alert).not_to_contain_text(retry_at)
        snap(page, f"lockout-{backend}-02-network-stopped")

        # Once the hour has passed, the same network asks for a code again and logs in (in English).
        clock.advance(hour_ends - clock.now())
        page.goto(f"{live_server}/app/login")
        page.get_by_test_id("lang-switch").click()
        page.get_by_label("Mobile number").fill(LOCKED_PHONE)
        page.get_by_role("button", name="Send code").click()
        expect(page.get_by_label("Code")).to_be_visible()
        page.get_by_label("Code").fill(latest_code(client, LOCKED_PHONE))
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("h1")).to_have_text("Home")
        snap(page, f"lockout-{backend}-03-logged-in-en")
    finally:
        context.close()
