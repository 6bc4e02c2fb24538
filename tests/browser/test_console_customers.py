"""The customer desk in a real Chromium at a desk (1280×800): customer service finds the demo borrower by name,
reads the page masked, reveals the full name with a reason and finds the reveal in the audit trail; the same
page in English, masked again; a search that finds nobody. Screenshots in ``MIAODAI_SCREENSHOTS``/console."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from miaodai.demo import DEMO_BORROWERS
from tests.browser.console_support import desk, sign_in, snap
from tests.console_support import PASSWORD, add_staff
from tests.credit_support import applicant, apply
from tests.loan_support import active_loan, demo_borrower

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")

DEMO = DEMO_BORROWERS[0]


def test_search_open_reveal_and_find_the_audit_entry(browser: Browser, live_server, client, container, clock,
                                                      backend):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    declined = applicant(client, "13912345678", "110101199003089038", name="张三")  # overdue at the bureau
    application = apply(client, declined).json()
    staff = add_staff(container, "cs.agent", ("customer_service",))
    context = desk(browser)
    page = context.new_page()
    try:
        sign_in(page, live_server, clock, "cs.agent", PASSWORD, staff.totp_secret)
        page.get_by_test_id("menu-customers").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("查找客户")
        page.get_by_label("查询方式").select_option("name")
        page.get_by_label("查询内容").fill(DEMO.name)
        snap(page, f"customers-01-search-{backend}")
        page.get_by_test_id("search").click()

        # One hit: the borrower's page, masked.
        expect(page.get_by_role("heading", level=1)).to_have_text(f"客户 #{borrower['borrower_id']}")
        expect(page.get_by_test_id("masked-full_name")).to_have_text("王**")
        expect(page.get_by_test_id(f"loan-{loan['id']}")).to_contain_text(loan["loan_no"])
        assert DEMO.name not in page.content() and DEMO.id_number not in page.content()
        snap(page, f"customers-02-page-{backend}")

        # Reveal the full name with a reason.
        reveal = page.get_by_test_id("reveal-full_name")
        reveal.get_by_text("查看完整信息").click()
        reveal.get_by_label("理由", exact=True).select_option("customer_request")
        reveal.get_by_label("具体事由：工单、来电或案件").fill("客户来电核实身份，工单 CS-20261207-0042")
        snap(page, f"customers-03-reveal-form-{backend}")
        reveal.get_by_test_id("reveal-submit-full_name").click()
        expect(page.get_by_test_id("revealed-full_name")).to_have_text(DEMO.name)
        expect(page.get_by_test_id("notice")).to_contain_text("仅显示这一次")
        entry = page.get_by_test_id("audit-new")
        expect(entry).to_contain_text("borrower.pii_revealed")
        expect(entry).to_contain_text("CS-20261207-0042")
        snap(page, f"customers-04-revealed-{backend}")
        entry.scroll_into_view_if_needed()
        page.screenshot(path=str(_shot(f"customers-05-audit-entry-{backend}")))

        # English: the page again, masked, with the reveal in the trail.
        page.get_by_test_id("lang-switch").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Customer #{borrower['borrower_id']}")
        expect(page.get_by_test_id("masked-full_name")).to_have_text("王**")
        expect(page.locator('[data-action="borrower.pii_revealed"]')).to_contain_text("customer_request")
        assert DEMO.name not in page.content()
        snap(page, f"customers-06-page-en-{backend}")

        page.get_by_test_id("menu-customers").click()
        page.get_by_label("Search by").select_option("phone")
        page.get_by_label("What to look for").fill("13800138009")
        page.get_by_test_id("search").click()
        expect(page.get_by_test_id("search-nothing")).to_contain_text("No customer matches")
        snap(page, f"customers-07-nothing-en-{backend}")

        # Another customer's credit decision: reasons, the rules that fired, score, model and ruleset.
        page.get_by_label("Search by").select_option("name")
        page.get_by_label("What to look for").fill("张三")
        page.get_by_test_id("search").click()
        decision = page.get_by_test_id(f"application-{application['id']}")
        expect(decision).to_contain_text("CREDIT_BUREAU_CURRENT_OVERDUE")
        decision.get_by_text("Rules fired").click()
        expect(page.get_by_test_id(f"rules-{application['id']}").locator("tbody tr").first).to_be_visible()
        page.evaluate("window.scrollTo(0, 0)")  # the table of contents sticks to the top of the window
        snap(page, f"customers-08-application-en-{backend}")
    finally:
        context.close()


def _shot(name: str):
    from tests.browser.console_support import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
