"""Home, my bills and 我的 in a real Chromium at 390×844, in zh-CN and English (issue 20): the demo borrower with
two loans meets the credit line (the available amount the biggest figure) and 本期应还 across both loans, a tap
from repaying either; the bills by month with the repayment calendar and each installment's state; the account
page whose every entry opens its page. Then an installment goes overdue on the test clock: the overdue amount is
the first thing on the start page, in the overdue colour, and the bills and calendar say so. Screenshots by
``snap`` (``home-*``)."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from miaodai.loans.models import CreditLine, LoanInstallment
from miaodai.web import i18n
from miaodai.web.i18n import yuan
from tests.browser.journey_support import biggest_text, phone_context
from tests.browser.test_web_accessibility import Audit
from tests.browser.test_web_loans import log_in
from tests.browser.test_web_login import snap
from tests.loan_support import active_loan, close_through, demo_borrower

# 我的's entries and the title of the page each opens (message ids: the page's h1 in either language).
ENTRIES = {"verify": "Verify your identity", "credit": "My credit line", "loans": "My loans", "bills": "My bills",
           "methods": "Cards and wallets", "calculator": "Loan calculator", "consents": "Consents",
           "devices": "Devices and sessions", "help": "Help and customer service", "about": "About us"}
OVERDUE_COLOUR = "rgb(163, 20, 31)"  # --bad in app.css


def words(locale: str, message: str) -> str:
    return i18n.translations(locale).gettext(message)


def first_installments(container, loan_ids) -> list[LoanInstallment]:
    with container.db.transaction() as session:
        return [session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id)
                                .order_by(LoanInstallment.period)).first() for loan_id in loan_ids]


def owed(row: LoanInstallment) -> int:
    return (row.principal_fen + row.interest_fen + row.fee_fen + row.penalty_fen - row.principal_paid_fen
            - row.interest_paid_fen - row.fee_paid_fen - row.penalty_paid_fen)


def tab(page: Page, name: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()


def test_home_bills_and_me_on_a_phone(browser: Browser, live_server, container, client, clock, backend):
    borrower = demo_borrower(client, container)
    loans = [active_loan(client, clock, borrower, key="home-a"),
             active_loan(client, clock, borrower, key="home-b", principal_fen=300_000, term_months=6)]
    clock.advance(timedelta(seconds=61))
    with container.db.transaction() as session:
        available = session.get(CreditLine, loans[0]["line_id"]).available_fen
    context = phone_context(browser)
    page = context.new_page()
    try:
        log_in(page, client, live_server, "/app/me")
        for lang, locale in (("zh", "zh_CN"), ("en", "en")):
            page.goto(f"{live_server}/app?lang={lang}")
            expect(page.locator("h1")).to_have_text(words(locale, "Home"))
            line_card = page.get_by_test_id("line-card")
            expect(line_card.get_by_test_id("available")).to_have_text(yuan(available))
            assert biggest_text(page) == yuan(available)  # the available amount is what the eye meets first
            expect(line_card.get_by_test_id("line-apr")).to_contain_text("%")
            expect(line_card.get_by_role("link", name=words(locale, "Borrow"), exact=True)).to_be_visible()
            due = page.get_by_test_id("due-this-period")
            firsts = first_installments(container, [loan["id"] for loan in loans])
            expect(due.get_by_test_id("due-amount")).to_have_text(yuan(sum(owed(r) for r in firsts)))
            for loan, first in zip(loans, firsts, strict=True):
                expect(due.get_by_test_id(f"due-loan-{loan['id']}")).to_contain_text(yuan(owed(first)))
            snap(page, f"home-{backend}-01-home-{lang}")

            tab(page, words(locale, "Bills"))
            expect(page.locator("h1")).to_have_text(words(locale, "My bills"))
            expect(page.locator("section.bill-month")).to_have_count(12)  # the 12-month loan's; the 6 inside them
            first_month = page.locator("section.bill-month").first
            expect(first_month.get_by_test_id("bill")).to_have_count(2)
            expect(page.get_by_test_id("bill")).to_have_count(12 + 6)
            expect(first_month.locator('[data-state="pending"]')).to_have_count(2)
            calendar = page.get_by_test_id("calendar")
            expect(calendar.locator(f'td[data-day="{firsts[0].due_date.isoformat()}"]')).to_have_attribute(
                "data-state", "pending")
            snap(page, f"home-{backend}-02-bills-{lang}")

            tab(page, words(locale, "Me"))
            expect(page.locator("h1")).to_have_text(words(locale, "Me"))
            snap(page, f"home-{backend}-03-me-{lang}")
            for key, title in ENTRIES.items():  # every entry opens its page
                page.get_by_test_id(f"entry-{key}").click()
                expect(page.locator("h1")).to_have_text(words(locale, title))
                if key == "help":  # a question opens on its answers and what to do
                    faq = page.get_by_test_id("faq-card")
                    faq.locator("summary").click()
                    expect(faq.get_by_role("link", name=words(locale, "Cards and wallets"))).to_be_visible()
                if key in ("help", "about"):
                    snap(page, f"home-{backend}-04-{key}-{lang}")
                page.go_back()
                expect(page.locator("h1")).to_have_text(words(locale, "Me"))

        # 还款 one tap away from home.
        page.goto(f"{live_server}/app?lang=zh")
        page.get_by_test_id(f"due-loan-{loans[1]['id']}").get_by_role("link", name="还款").click()
        expect(page.locator("h1")).to_have_text("还款")
        expect(page.get_by_label("还款金额（元）")).to_have_value(f"{owed(firsts[1]) / 100:.2f}")

        # Five days past the first due date the two first installments are overdue.
        close_through(container, clock, firsts[0].due_date + timedelta(days=5))
        log_in(page, client, live_server, "/app/me")
        page.goto(f"{live_server}/app")
        overdue = page.get_by_test_id("overdue")
        first_card = page.locator("main > section, main > ol").first
        expect(first_card).to_have_attribute("data-testid", "overdue")  # at the very top, above the line
        expect(overdue.get_by_test_id("overdue-owed")).to_have_css("color", OVERDUE_COLOUR)
        expect(overdue.get_by_role("link", name="立即还款")).to_be_visible()
        expect(page.get_by_test_id("line-card").get_by_test_id("line-frozen")).to_be_visible()
        snap(page, f"home-{backend}-05-home-overdue-zh")
        page.goto(f"{live_server}/app/bills?month={firsts[0].due_date.strftime('%Y-%m')}")
        expect(page.get_by_test_id("bills-overdue")).to_be_visible()
        day = page.get_by_test_id("calendar").locator(f'td[data-day="{firsts[0].due_date.isoformat()}"]')
        expect(day).to_have_attribute("data-state", "overdue")
        expect(day.locator(".calendar-date")).to_have_css("background-color", OVERDUE_COLOUR)
        expect(page.locator("section.bill-month").first.locator('[data-state="overdue"]')).to_have_count(2)
        snap(page, f"home-{backend}-06-bills-overdue-zh")
        audit = Audit(page, live_server)  # the overdue states pass the app's accessibility rules too
        audit.both("bills (overdue)", page.url)
        audit.both("home (overdue)", f"{live_server}/app")
        audit.assert_clean()
        page.goto(f"{live_server}/app?lang=en")
        expect(page.get_by_test_id("overdue")).to_contain_text("Your loan is overdue")
        snap(page, f"home-{backend}-07-home-overdue-en")
    finally:
        context.close()
