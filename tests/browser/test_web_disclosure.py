"""The price first, on a phone (390×844) in a real Chromium, in Chinese and in English: on the credit decision
(approved), the line's page and the drawing page, the annualized rate of all costs (PBoC announcement [2021]
No. 3) is the largest figure and lies on the first screen — its bounding box inside the viewport before any
scrolling, above the tab bar — with the nominal rate and the service fee shown as secondary figures.
Screenshots: var/screenshots/web/disclosure-*."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from miaodai.credit import bureau
from miaodai.demo import DEMO_BORROWERS, seed_demo
from miaodai.web.i18n import percent
from tests.browser.journey_support import assert_above_the_fold, biggest_text, phone_context
from tests.browser.test_web_login import SCREENSHOTS, snap
from tests.credit_support import applicant, apply, install_test_model, quick_parties
from tests.helpers import latest_code

DEMO_PHONE = DEMO_BORROWERS[0].phone  # a 20,000-yuan line on the demo product
NEW_PHONE = "13700137901"


def log_in(page: Page, live_server: str, client, phone: str, next_path: str) -> None:
    page.goto(f"{live_server}/app/login?next={next_path}")
    page.get_by_label("手机号").fill(phone.removeprefix("+86"))
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_label("验证码").fill(latest_code(client, phone))
    page.get_by_role("button", name="登录").click()


def apr_first(page: Page, testid: str, shot: str) -> str:
    """The APR element is the largest text and on the first screen, in this language and after switching to the
    other one; both screens are shot. Returns the figure."""
    figure = page.get_by_test_id(testid)
    shown = figure.inner_text()
    assert shown.endswith("%") and biggest_text(page) == shown
    assert_above_the_fold(page, figure)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(_first_screen(shot, "zh")))
    snap(page, f"{shot}-zh")
    page.get_by_test_id("lang-switch").click()
    figure = page.get_by_test_id(testid)
    expect(figure).to_have_text(shown)
    assert biggest_text(page) == shown
    assert_above_the_fold(page, figure)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(_first_screen(shot, "en")))
    snap(page, f"{shot}-en")
    page.get_by_test_id("lang-switch").click()  # back to Chinese for the next page
    return shown


def _first_screen(shot: str, lang: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{shot}-{lang}-first-screen.png"


def test_the_lines_all_in_apr_is_the_first_thing_on_the_decision_line_and_draw_pages(
        browser: Browser, live_server, container, client, clock, backend):
    seed_demo(container)
    install_test_model(container)
    quick_parties(container)
    who = applicant(client, NEW_PHONE, bureau.CLEAN_FILE_ID)
    decided = apply(client, who)
    assert decided.status_code == 201 and decided.json()["status"] == "approved", decided.text
    line = decided.json()["line"]
    clock.advance(timedelta(seconds=61))  # past the API login's resend cooldown
    context = phone_context(browser)
    page = context.new_page()
    try:
        log_in(page, live_server, client, NEW_PHONE, f"/app/credit/applications/{decided.json()['id']}")
        expect(page.get_by_test_id("decision")).to_have_attribute("data-status", "approved")
        shown = apr_first(page, "line-apr", f"disclosure-decision-{backend}")
        assert shown == percent(Decimal(line["apr"]))  # the API's field
        expect(page.get_by_test_id("rate")).to_be_visible()  # the nominal rate and the fee, secondary
        expect(page.get_by_test_id("fee-rate")).to_be_visible()
        context.close()

        context = phone_context(browser)
        page = context.new_page()
        clock.advance(timedelta(seconds=61))
        log_in(page, live_server, client, DEMO_PHONE, "/app/credit")
        expect(page.get_by_test_id("line")).to_be_visible()
        line_apr = apr_first(page, "line-apr", f"disclosure-line-{backend}")
        page.goto(f"{live_server}/app/loans/new")
        expect(page.get_by_test_id("apr")).to_have_text(line_apr)  # the form opens on the line's default terms
        apr_first(page, "apr", f"disclosure-draw-{backend}")
        expect(page.get_by_test_id("nominal")).to_contain_text("0.10%")
    finally:
        context.close()

