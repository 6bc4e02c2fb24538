"""The borrower's own pages around their loans: my bills 账单 (every installment across loans by month, with a
repayment calendar), the account page 我的 (one place for everything about the account: each entry is a page
that exists today, never a dead link), help 帮助与客服 (the common problems and what to do) and about 关于我们.

The figures come from the loans domain's read model (:func:`miaodai.loans.views.bills_view`): amounts still to
pay, states and days left are computed there, never here or in a template. A loan reads by the day it was paid
out, its amount and what the borrower said the money is for (:func:`miaodai.credit.views.line_purposes`), not by
its internal number.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from miaodai.container import Container
from miaodai.credit.features import LoanPurpose
from miaodai.credit.views import line_purposes
from miaodai.identity import kyc_service
from miaodai.loans.contract_service import LENDER_NAME_EN, LENDER_NAME_ZH
from miaodai.loans.disclosure import line_apr_of
from miaodai.loans.views import BillLine, BillsView, bills_view
from miaodai.web.core import PREFIX, WebBorrower, WebContainer, csrf_protect, render
from miaodai.web.journey import Progress
from miaodai.web.purposes import LOAN_PURPOSES

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

# A day of the calendar takes the colour of its most pressing bill.
STATE_ORDER = ("overdue", "due", "pending", "paid")
# The regulators' consumer hotlines (public numbers): financial regulation, and the central bank's.
REGULATOR_HOTLINES = (("12378", "nfra"), ("12363", "pboc"))


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


REGULATORS = {"nfra": _("National Financial Regulatory Administration consumer hotline"),
              "pboc": _("People's Bank of China financial consumer protection hotline")}


@dataclass(frozen=True)
class Bills:
    """The bills read model with what the pages say of each loan: its purpose, by credit line."""

    view: BillsView
    purposes: dict[int, LoanPurpose]

    def purpose_word(self, line: BillLine) -> str | None:
        """The message id of the loan's purpose, or None when none was declared (a line a person granted)."""
        purpose = self.purposes.get(line.credit_line_id)
        return LOAN_PURPOSES[purpose] if purpose is not None else None


    @property
    def first_overdue_loan(self) -> int | None:
        """The loan of the oldest overdue bill: where the overdue notice's 还款 goes."""
        return next((line.loan_id for month in self.view.months for line in month.lines if line.status == "overdue"),
                    None)


def bills(container: Container, borrower_id: int) -> Bills:
    return Bills(bills_view(container, borrower_id), line_purposes(container, borrower_id))


def home_context(container: Container, progress: Progress, borrower_id: int) -> dict[str, Any]:
    """What the home page shows once the setup is done: the line with its all-in APR, and the bills."""
    line = progress.line
    apr: Decimal | None = line_apr_of(container, line.product_id, line.annual_rate).apr if line else None
    return {"bills": bills(container, borrower_id), "line_apr": apr}


# -- my bills ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarDay:
    day: date
    in_month: bool
    state: str | None  # the most pressing state of the day's bills, None without one
    to_pay_fen: int
    total_fen: int


def _month_of(text: str | None, default: date) -> date:
    """``2026-12`` as that month's first day; anything else: ``default``'s month."""
    try:
        year, month = (int(part) for part in (text or "").split("-"))
        return date(year, month, 1)
    except ValueError:
        return default.replace(day=1)


def _shift(month: date, by: int) -> date:
    index = month.year * 12 + month.month - 1 + by
    return date(index // 12, index % 12 + 1, 1)


def month_calendar(view: BillsView, month: date) -> list[list[CalendarDay]]:
    """The month as weeks from Monday, each day with its bills' state and amounts."""
    by_day: dict[date, list[BillLine]] = {}
    for group in view.months:
        for line in group.lines:
            by_day.setdefault(line.due_date, []).append(line)
    weeks = []
    for week in calendar.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month):
        days = []
        for day in week:
            lines = by_day.get(day, []) if day.month == month.month else []
            state = next((s for s in STATE_ORDER if any(line.status == s for line in lines)), None)
            days.append(CalendarDay(day, day.month == month.month, state, sum(line.to_pay_fen for line in lines),
                                    sum(line.total_fen for line in lines)))
        weeks.append(days)
    return weeks


@router.get("/bills", response_class=HTMLResponse)
def my_bills(request: Request, container: WebContainer, auth: WebBorrower, month: str | None = None) -> HTMLResponse:
    """Every installment across loans by month, paid, upcoming and overdue, and the repayment calendar of one month
    (``?month=2026-12``; by default the month of this period's bills, else this month)."""
    found = bills(container, auth.borrower_id)
    period = found.view.this_period
    shown = _month_of(month, period.due_date if period else found.view.as_of)
    return render(request, "bills.html", signed_in=auth, bills=found, shown=shown,
                  weeks=month_calendar(found.view, shown), previous=_shift(shown, -1), following=_shift(shown, 1),
                  weekdays=[date(2024, 1, 1 + i) for i in range(7)])  # a Monday, then the week


# -- 我的, help, about -------------------------------------------------------------------------------------


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    return render(request, "me.html", signed_in=auth, kyc=kyc_service.overview(container, auth.borrower_id))


@router.get("/help", response_class=HTMLResponse)
def help_page(request: Request, auth: WebBorrower) -> HTMLResponse:
    return render(request, "help.html", signed_in=auth)


@router.get("/about", response_class=HTMLResponse)
def about(request: Request, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    return render(request, "about.html", signed_in=auth, lender_zh=LENDER_NAME_ZH, lender_en=LENDER_NAME_EN,
                  licence=container.settings.lender_licence, hotlines=REGULATOR_HOTLINES, regulators=REGULATORS)
