"""Money in the borrower's app in a real Chromium at 390×844: bind a card with its bank named as the number
is typed (an unsupported bank first, explained with the alternatives), draw money with the live quote, read
the contract and sign it after a fresh code, watch the payout arrive (the sandbox channel's time moved and its
callbacks delivered; the page updates by itself), then a payout that fails at the bank and is paid to another
card. Every step is screenshotted (see tests/browser/test_web_login.py's ``snap``), one in English."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from playwright.sync_api import Browser, Page, expect

from miaodai.demo import DEMO_BORROWERS, seed_demo
from miaodai.sandbox.channel import ACCOUNT_NAME_MISMATCH
from tests.browser.conftest import PHONE_VIEWPORT
from tests.browser.journey_support import sign_with_fresh_code, type_card
from tests.browser.test_web_login import snap
from tests.helpers import latest_code
from tests.payment_support import channel_time_passes

PHONE = DEMO_BORROWERS[0].phone  # a 20,000-yuan line and an ICBC card
UNSUPPORTED_BANK = "6210 6677 7000 0000 001"  # 北京农村商业银行
SEED_CARD = DEMO_BORROWERS[0].card
PAYOUT_WAIT = 15_000  # ms: the page asks the server again every 3 s


def log_in(page: Page, live_server: str, client, phone: str) -> None:
    page.goto(f"{live_server}/app/login?next=/app/methods")
    page.get_by_label("手机号").fill(phone.removeprefix("+86"))
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_label("验证码").fill(latest_code(client, phone))
    page.get_by_role("button", name="登录").click()
    expect(page.locator("h1")).to_have_text("银行卡与钱包")


def test_bind_draw_sign_and_follow_the_payout_on_a_phone(browser: Browser, live_server, container, client, clock,
                                                       backend):
    seed_demo(container)
    context = browser.new_context(viewport=PHONE_VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    expect.set_options(timeout=PAYOUT_WAIT)
    try:
        log_in(page, live_server, client, PHONE)
        expect(page.locator(".method")).to_have_count(1)
        snap(page, f"money-01-methods-{backend}")

        # A card of a bank we do not pay out to: named as it is typed, then explained with the alternatives.
        page.get_by_role("link", name="绑定储蓄卡").click()
        type_card(page, UNSUPPORTED_BANK.replace(" ", ""))  # typed without spaces, grouped in fours as typed
        expect(page.get_by_label("银行卡号")).to_have_value(UNSUPPORTED_BANK)
        expect(page.get_by_test_id("bank")).to_contain_text("北京农村商业银行 储蓄卡")
        expect(page.get_by_test_id("bank")).to_have_attribute("data-state", "bad")
        page.get_by_role("button", name="获取银行验证码").click()
        expect(page.get_by_role("alert")).to_have_attribute("data-code", "PAYMENT_CARD_BANK_UNSUPPORTED")
        expect(page.get_by_test_id("banks")).to_contain_text("中国工商银行")
        expect(page.get_by_test_id("alternatives").get_by_role("link")).to_have_text("绑定支付宝或微信支付")
        snap(page, f"money-02-unsupported-bank-{backend}")

        # An ICBC card: the bank's code, bound.
        type_card(page, " ".join(re.findall(".{1,4}", ACCOUNT_NAME_MISMATCH)))
        expect(page.get_by_test_id("bank")).to_have_text("中国工商银行 储蓄卡")
        snap(page, f"money-03-bank-detected-{backend}")
        page.get_by_role("button", name="获取银行验证码").click()
        expect(page.locator("h1")).to_have_text("输入银行验证码")
        snap(page, f"money-04-bank-code-{backend}")
        page.get_by_label("银行验证码").fill(latest_code(client, PHONE))
        page.get_by_role("button", name="确认绑卡").click()
        expect(page.get_by_test_id("done")).to_have_text("银行卡绑定成功。")
        expect(page.locator(".method")).to_have_count(2)
        snap(page, f"money-05-card-bound-{backend}")

        # Draw 5,000 yuan over 6 months: the quote follows the typing.
        page.goto(f"{live_server}/app/loans/new")
        first_interest = page.get_by_test_id("total-interest").inner_text()
        page.get_by_label("借款金额（元）").fill("5000")
        expect(page.get_by_test_id("total-interest")).not_to_have_text(first_interest)
        page.get_by_label("借款期限").select_option("m6")
        expect(page.locator(".installment")).to_have_count(6)
        apr = page.get_by_test_id("apr")
        assert apr.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") > max(
            page.locator(".figures dd").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"),
            page.locator(".line-amount").evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
        snap(page, f"money-06-draw-{backend}")
        page.get_by_role("button", name="下一步：阅读合同").click()

        # The contract in the page, key terms first; downloaded, its hash the one the signing link carries.
        expect(page.locator("h1")).to_have_text("阅读借款合同")
        expect(page.get_by_test_id("contract").locator("h2").first).to_contain_text("借款合同")
        snap(page, f"money-07-contract-{backend}")
        with page.expect_download() as downloading:
            page.get_by_role("link", name="下载合同").click()
        document = downloading.value.path().read_bytes()
        digest = hashlib.sha256(document).hexdigest()
        assert page.get_by_role("link", name="已阅读，验证后签署").get_attribute("href").endswith(f"sha256={digest}")
        assert digest not in page.locator("main").inner_text()  # hashes belong to the verification page

        sign_with_fresh_code(page, client, PHONE, clock)  # minutes after logging in: a code for this contract
        expect(page.get_by_test_id("payout-to")).to_contain_text(SEED_CARD[-4:])
        snap(page, f"money-08-sign-{backend}")
        page.get_by_role("button", name="同意并签署").click()
        expect(page.get_by_test_id("payout-status")).to_contain_text("银行放款中")
        snap(page, f"money-09-payout-moving-{backend}")
        assert channel_time_passes(client, container, clock) == 1
        expect(page.get_by_test_id("payout-status")).to_contain_text("借款已到账")  # the page updated itself
        snap(page, f"money-10-payout-paid-{backend}")

        # The mismatched card as the default: the next payout fails at the bank, and goes to the other card.
        page.goto(f"{live_server}/app/methods")
        page.get_by_role("button", name="设为默认").click()
        expect(page.get_by_test_id("done")).to_be_visible()
        page.goto(f"{live_server}/app/loans/new")
        page.get_by_label("借款金额（元）").fill("3000")
        expect(page.get_by_test_id("total-interest")).not_to_have_text(first_interest)
        page.get_by_role("button", name="下一步：阅读合同").click()
        sign_with_fresh_code(page, client, PHONE, clock)
        expect(page.get_by_test_id("payout-to")).to_contain_text(ACCOUNT_NAME_MISMATCH[-4:])
        page.get_by_role("button", name="同意并签署").click()
        expect(page.get_by_test_id("payout-status")).to_contain_text("银行放款中")
        channel_time_passes(client, container, clock)
        expect(page.get_by_test_id("payout-status")).to_contain_text("放款失败")
        expect(page.get_by_test_id("failure")).to_contain_text("户名不符")
        expect(page.get_by_role("radio", checked=True)).to_have_count(1)
        assert SEED_CARD[-4:] in page.locator(".choice", has=page.get_by_role("radio", checked=True)).inner_text()
        snap(page, f"money-11-payout-failed-{backend}")
        page.get_by_role("button", name="重新放款").click()
        expect(page.get_by_test_id("attempt-2")).to_be_visible()
        channel_time_passes(client, container, clock)
        expect(page.get_by_test_id("payout-status")).to_contain_text("借款已到账")
        snap(page, f"money-12-retried-paid-{backend}")

        page.get_by_test_id("lang-switch").click()
        expect(page.locator("h1")).to_have_text("Your payout")
        expect(page.get_by_test_id("attempt-1")).to_contain_text("This attempt failed")
        snap(page, f"money-13-payout-en-{backend}")
    finally:
        expect.set_options(timeout=5_000)
        context.close()


def test_bind_alipay_through_the_wallets_page_and_unbind_it(browser: Browser, live_server, container, client, clock,
                                                          backend):
    seed_demo(container)
    context = browser.new_context(viewport=PHONE_VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    page = context.new_page()
    try:
        log_in(page, live_server, client, PHONE)
        page.get_by_role("link", name="绑定支付宝或微信支付").click()
        expect(page.locator("h1")).to_have_text("绑定支付宝或微信支付")
        snap(page, f"money-20-wallet-choose-{backend}")
        page.get_by_role("button", name="支付宝").click()
        expect(page.get_by_test_id("agreement")).to_have_text("秒贷借款放款及自动还款代扣协议")
        page.get_by_label("钱包登录账号（手机号）").fill("13800138001")
        snap(page, f"money-21-wallet-sign-{backend}")
        page.get_by_role("button", name="同意并签署").click()
        expect(page.get_by_test_id("done")).to_have_text("钱包绑定成功。")
        wallet = page.locator(".method", has_text="支付宝")
        expect(wallet).to_contain_text("****8001")
        snap(page, f"money-22-wallet-bound-{backend}")

        clock.advance(timedelta(minutes=6))  # unbinding asks for a fresh code
        wallet.get_by_role("link", name="解绑").click()
        expect(page.locator("h1")).to_have_text("验证身份")
        page.get_by_role("button", name="获取验证码").click()
        page.get_by_label("验证码").fill(latest_code(client, PHONE))
        page.get_by_role("button", name="确认", exact=True).click()
        expect(page.locator("h1")).to_have_text("确定解绑吗？")
        snap(page, f"money-23-unbind-{backend}")
        page.get_by_role("button", name="解绑").click()
        expect(page.get_by_test_id("done")).to_have_text("已解绑。")
        expect(page.locator(".method")).to_have_count(1)
    finally:
        context.close()
