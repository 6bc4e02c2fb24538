"""The console in a real Chromium at a desk (1280×800): a new hire's first sign-in (a new password and an
authenticator enrolled from the QR code), the home with the role's desks, the account page, both languages,
and a desk the role may not open. Screenshots in ``MIAODAI_SCREENSHOTS``/console."""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.console_support import desk, snap
from tests.console_support import PASSWORD, add_staff

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


def test_first_sign_in_home_account_and_languages(browser: Browser, live_server, container, clock, backend):
    add_staff(container, "new.hire", ("customer_service",), setup_on_first_login=True)
    context = desk(browser)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/console")
        expect(page).to_have_url(f"{live_server}/console/login?next=%2Fconsole")
        snap(page, f"01-login-{backend}")
        page.get_by_label("用户名").fill("new.hire")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_test_id("sign-in").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("完成首次登录")
        expect(page.get_by_test_id("totp-qr").locator("svg")).to_be_visible()
        snap(page, f"02-setup-{backend}")
        page.get_by_text("无法扫码？改为手动输入密钥").click()
        secret = page.get_by_test_id("totp-secret").inner_text()
        page.get_by_label("新密码", exact=True).fill("my-own-new-password")
        page.get_by_label("再次输入新密码").fill("my-own-new-password")
        page.get_by_label("动态验证码").fill(pyotp.TOTP(secret).at(clock.now()))
        page.get_by_test_id("finish-setup").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("欢迎，New.Hire")
        expect(page.get_by_test_id("whoami")).to_contain_text("客服专员")
        snap(page, f"03-home-{backend}")

        page.get_by_test_id("menu-me").click()
        expect(page.get_by_test_id("sessions").locator("tbody tr")).to_have_count(1)
        expect(page.get_by_test_id("login-history")).to_contain_text("首次登录设置完成")
        snap(page, f"04-me-{backend}")
        page.get_by_test_id("lang-switch").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("My account")
        expect(page.get_by_test_id("login-history")).to_contain_text("First sign-in finished")
        snap(page, f"05-me-en-{backend}")

        page.get_by_test_id("logout").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Staff sign-in")
    finally:
        context.close()
