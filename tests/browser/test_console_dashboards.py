"""The dashboards in a real Chromium at a desk (1280×800): a risk manager opens each board and sees every chart
drawn by the vendored ECharts (a canvas in each), downloads a table as CSV, and reads a board in English.
Screenshots in ``MIAODAI_SCREENSHOTS``/console."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from miaodai.demo import seed_demo
from tests.browser.console_support import desk, sign_in, snap
from tests.console_support import PASSWORD, add_staff
from tests.credit_support import applicant, apply

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


def test_every_board_draws_its_charts_and_downloads_a_table(browser: Browser, live_server, client, container,
                                                            clock, backend):
    seed_demo(container)
    for phone, id_number in (("13912345678", "110101199003089038"), ("13700137601", "110101199003070054")):
        apply(client, applicant(client, phone, id_number))
    manager = add_staff(container, "rm.boards", ("risk_manager",))
    context = desk(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda response: errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico") else None)
    try:
        sign_in(page, live_server, clock, "rm.boards", PASSWORD, manager.totp_secret)
        page.get_by_test_id("menu-dashboards").click()
        for board, panels in (("origination", 4), ("portfolio", 4), ("money", 4)):
            page.get_by_test_id(f"board-{board}").click()
            charts = page.locator(".chart[data-drawn='1'] canvas")
            expect(charts).to_have_count(panels)
            snap(page, f"dashboards-{board}-{backend}")
        page.get_by_test_id("board-origination").click()
        with page.expect_download() as download:
            page.get_by_test_id("csv-applications_by_day").click()
        text = download.value.path().read_text(encoding="utf-8-sig")
        assert text.splitlines()[0].startswith("day,applications,") and len(text.splitlines()) >= 2
        page.get_by_test_id("lang-switch").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Origination")
        expect(page.locator(".chart[data-drawn='1'] canvas")).to_have_count(4)
        snap(page, f"dashboards-origination-en-{backend}")
        assert not errors, errors
    finally:
        context.close()
