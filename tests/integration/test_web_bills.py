"""Home once the setup is done, my bills and 我的, as the server renders them: the credit line with its all-in APR,
本期应还 across loans from the loans domain's bills read model, every installment by month with its state and a
calendar, overdue first; and the account page whose every entry answers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from miaodai.core.clock import business_date
from miaodai.loans.disclosure import line_apr_of
from miaodai.loans.models import CreditLine, LoanInstallment
from miaodai.loans.views import bills_view
from miaodai.web.i18n import day, percent, yuan
from tests.integration.test_web_loans import text, web_login
from tests.integration.test_web_login import web as web  # noqa: F401  (the fixture)
from tests.loan_support import active_loan, close_through, demo_borrower


@pytest.fixture
def borrower(client, container):
    return demo_borrower(client, container)


@pytest.fixture
def two_loans(client, clock, borrower):
    return (active_loan(client, clock, borrower, key="loan-a"),
            active_loan(client, clock, borrower, key="loan-b", principal_fen=300_000, term_months=6))


def installments(container, loan_id: int) -> list[LoanInstallment]:
    with container.db.transaction() as session:
        return list(session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id)
                                    .order_by(LoanInstallment.period)))


def owed(row: LoanInstallment) -> int:
    return (row.principal_fen + row.interest_fen + row.fee_fen + row.penalty_fen - row.principal_paid_fen
            - row.interest_paid_fen - row.fee_paid_fen - row.penalty_paid_fen)


def month_section(html: str, month: str) -> str:
    return re.search(rf'data-testid="month-{month}".*?</section>', html, re.S).group(0)


def test_home_is_the_line_and_what_is_due_this_period_across_loans(web, client, container, clock, borrower,
                                                                   two_loans):
    web_login(web, clock)
    home = web.get("/app")
    assert home.status_code == 200
    assert 'data-testid="journey"' not in home.text  # the checklist is done with
    with container.db.transaction() as session:
        line = session.get(CreditLine, two_loans[0]["line_id"])
        available, limit, expires = line.available_fen, line.limit_fen, line.expires_on
        apr = line_apr_of(container, line.product_id, line.annual_rate).apr
    assert available == limit - 1_000_000 - 300_000
    assert f'data-testid="available">{yuan(available)}<' in home.text
    assert f'data-testid="line-apr">{percent(apr)}<' in home.text
    assert f'data-testid="expires">{day(expires, "zh_CN")}<' in home.text
    assert '<a class="button primary" href="/app/loans/new" data-testid="borrow">借钱</a>' in home.text

    # 本期应还: both loans' first installments (drawn the same day, due the same day), summed.
    firsts = [installments(container, loan["id"])[0] for loan in two_loans]
    assert firsts[0].due_date == firsts[1].due_date
    today = business_date(clock.now())
    due = re.search(r'data-testid="due-this-period".*?</section>', home.text, re.S).group(0)
    assert f'data-testid="due-amount">{yuan(sum(owed(r) for r in firsts))}<' in due
    assert f"还剩 {(firsts[0].due_date - today).days} 天" in text(home)
    for loan in two_loans:
        assert f'href="/app/loans/{loan["id"]}/repay?what=due"' in due
    assert home.text.index('data-testid="line-card"') < home.text.index('data-testid="due-this-period"')
    assert "Due this period" in web.get("/app?lang=en").text


def test_bills_by_month_with_a_calendar_and_states_and_overdue_first_at_home(web, client, container, clock,
                                                                             borrower, two_loans):
    long, short = two_loans
    rows = installments(container, long["id"])
    close_through(container, clock, rows[0].due_date + timedelta(days=5))  # the first installments go overdue
    web_login(web, clock)

    page = web.get("/app/bills")
    assert page.status_code == 200
    view = bills_view(container, borrower["borrower_id"])
    assert len(view.months) == 12  # the twelve months of the longer loan, the shorter one's six inside them
    months = re.findall(r'data-testid="month-(\d{4}-\d{2})"', page.text)
    assert months == [m.month.strftime("%Y-%m") for m in view.months]
    first_month = month_section(page.text, months[0])
    assert re.findall(r'data-testid="bill" data-state="([a-z]+)" data-loan="(\d+)"', first_month) == [
        ("overdue", str(long["id"])), ("overdue", str(short["id"]))]
    later = month_section(page.text, months[1])
    assert set(re.findall(r'data-testid="bill" data-state="([a-z]+)"', later)) == {"pending"}
    assert len(re.findall(r'data-testid="bill"', page.text)) == 12 + 6
    # Not by its internal number: by the day, the amount (the demo line was granted by staff: no purpose).
    assert long["loan_no"] not in page.text and f"借款 {yuan(long['principal_fen'])}" in text(page)
    notice = re.search(r'data-testid="bills-overdue">.*?</div>', page.text, re.S).group(0)
    assert f'href="/app/loans/{long["id"]}/repay?what=due"' in notice  # the oldest overdue bill's loan

    # The calendar opens on this period's month; the overdue day is marked in the month it fell in.
    assert f'data-month="{months[1]}"' in page.text
    assert f'data-day="{rows[1].due_date.isoformat()}" data-state="pending"' in page.text
    earlier = web.get(f"/app/bills?month={months[0]}")
    assert f'data-day="{rows[0].due_date.isoformat()}" data-state="overdue"' in earlier.text
    assert web.get("/app/bills?month=nonsense").status_code == 200  # a bad month is this period's, not a 500
    english = web.get("/app/bills?lang=en")
    assert "Overdue" in english.text and "Installment 1 of 12" in text(english)

    home = web.get("/app")
    assert home.text.index('data-testid="overdue"') < home.text.index('data-testid="line-card"')
    assert 'data-testid="line-frozen"' in home.text and 'data-testid="borrow"' not in home.text


def test_me_holds_every_entry_that_exists_and_each_answers(web, client, container, clock, borrower):
    web_login(web, clock)
    page = web.get("/app/me")
    assert page.status_code == 200 and "<h1>我的</h1>" in page.text
    entries = re.findall(r'<a href="(/app/[a-z]+)" data-testid="entry-([a-z]+)"', page.text)
    assert {key for _path, key in entries} == {"verify", "credit", "loans", "bills", "methods", "calculator",
                                               "consents", "devices", "help", "about"}
    for path, _key in entries:
        assert web.get(path).status_code == 200, path
    assert 'action="/app/logout"' in page.text
    help_page = web.get("/app/help").text
    for key in ("verification", "declined", "card", "payout"):
        assert f'data-testid="faq-{key}"' in help_page
    about = web.get("/app/about")
    assert "秒贷小额贷款有限公司" in about.text and 'href="tel:12378"' in about.text
    assert "Miaodai Microcredit" in web.get("/app/about?lang=en").text
