"""The borrower's app in a real Chromium on a phone-sized screen: the calculator before signing up,
logging in with the SMS code, the language switch, devices, logging out. Every step is screenshotted
(``MIAODAI_SCREENSHOTS``, default var/screenshots/web) and checked: the Chinese glyphs are drawn with a
CJK font, and nothing is wider than the 390 px screen."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from miaodai.demo import seed_demo
from tests.browser.conftest import PHONE_VIEWPORT
from tests.helpers import latest_code

SCREENSHOTS = Path(os.environ.get("MIAODAI_SCREENSHOTS", "var/screenshots")) / "web"
PHONE = "13800138123"


def snap(page: Page, name: str) -> None:
    """Save the step's screenshot and check what a person would see: no sideways scrolling, CJK drawn."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The tab bar is fixed to the screen's bottom edge; a full-page shot would draw it over whatever sits at the
    # first screen's bottom (once the quote's APR), so the shot shows it at the end of the page instead (through
    # the element's style: the app's CSP refuses the stylesheet ``screenshot(style=...)`` would add).
    tabs = "document.querySelectorAll('.tabs').forEach(e => e.style.position = %s)"
    page.evaluate(tabs % "'static'")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.evaluate(tabs % "''")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_VIEWPORT["width"], f"{name}: the page is {width}px wide"
    assert page.evaluate("document.fonts.check('16px \"WenQuanYi Zen Hei\"', '秒贷')"), f"{name}: no CJK font"


def test_calculator_login_language_and_devices_on_a_phone(browser: Browser, live_server, container, client, backend):
    seed_demo(container)
    context = browser.new_context(viewport=PHONE_VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/app")
        expect(page.locator("h1")).to_have_text("秒贷")
        snap(page, f"01-start-{backend}")

        page.get_by_role("link", name="先算一算").click()
        expect(page.get_by_test_id("apr")).to_contain_text("%")
        first_apr = page.get_by_test_id("apr").inner_text()
        page.get_by_label("借款金额（元）").fill("5000")  # the live quote follows the typing
        expect(page.locator(".schedule tbody tr").first).to_contain_text("¥")
        page.get_by_label("借款期限（月）").select_option("6")
        expect(page.locator(".schedule tbody tr")).to_have_count(6)
        assert page.get_by_test_id("apr").inner_text() != "" and first_apr
        snap(page, f"02-calculator-{backend}")

        page.get_by_role("link", name="登录 / 注册").click()
        page.get_by_label("手机号").fill(PHONE)
        page.get_by_role("button", name="获取验证码").click()
        expect(page.locator(".lead")).to_contain_text("138****8123")
        resend = page.get_by_role("button", name="秒后可重新发送")
        expect(resend).to_be_disabled()  # the countdown runs
        snap(page, f"03-code-{backend}")
        page.get_by_label("验证码").fill("000000")
        page.get_by_role("button", name="登录").click()
        expect(page.get_by_role("alert")).to_contain_text("验证码")
        snap(page, f"04-wrong-code-{backend}")
        page.get_by_label("验证码").fill(latest_code(client, PHONE))
        page.get_by_role("button", name="登录").click()
        expect(page.locator("h1")).to_have_text("首页")
        snap(page, f"05-home-{backend}")

        page.get_by_test_id("lang-switch").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.get_by_role("navigation").get_by_role("link", name="Me", exact=True).click()
        expect(page.locator("h1")).to_have_text("Me")
        page.get_by_role("link", name="Devices and login history").click()
        expect(page.locator("h1")).to_have_text("Devices and sessions")
        expect(page.get_by_text("This device")).to_be_visible()
        snap(page, f"06-devices-en-{backend}")
        page.get_by_role("button", name="Log out", exact=True).click()
        expect(page.locator("h1")).to_have_text("Log in")
        snap(page, f"07-logged-out-{backend}")
    finally:
        context.close()
