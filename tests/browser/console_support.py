"""Helpers of the console's browser tests: a desk-sized screen, signing in with password + TOTP, screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyotp
from playwright.sync_api import Browser, BrowserContext, Page, expect

SCREENSHOTS = Path(os.environ.get("MIAODAI_SCREENSHOTS", "var/screenshots")) / "console"
DESK_VIEWPORT = {"width": 1280, "height": 800}


def desk(browser: Browser, locale: str = "zh-CN") -> BrowserContext:
    return browser.new_context(viewport=DESK_VIEWPORT, locale=locale)


def snap(page: Page, name: str) -> None:
    """Save the step's screenshot and check what a person at a desk sees: nothing wider than the screen's
    1280 px (wide tables scroll inside their panel), the Chinese glyphs drawn with a CJK font."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= DESK_VIEWPORT["width"], f"{name}: the page is {width}px wide"
    assert page.evaluate("document.fonts.check('14px \"WenQuanYi Zen Hei\"', '秒贷')"), f"{name}: no CJK font"


def sign_in(page: Page, live_server: str, clock: Any, username: str, password: str, secret: str) -> None:
    """Sign in through the login form as a person does (the labels are the zh-CN ones)."""
    page.goto(f"{live_server}/console/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_label("动态验证码").fill(pyotp.TOTP(secret).at(clock.now()))
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("whoami")).to_contain_text(username)
