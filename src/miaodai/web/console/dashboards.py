"""The dashboards (仪表盘): origination, portfolio and money movement, each a page of Apache ECharts charts that a
risk manager hovers and reads, filtered by a date range and a product, with the table behind each chart under it
(headings from the catalog, amounts in yuan) and as CSV (column keys and raw values, for analysis).

The figures are the domains' SQL aggregates (``credit.dashboards``, ``loans.portfolio``, ``payments.dashboards``:
one GROUP BY each, measured on the 1,000,000-loan book by ``bench/dashboards.py``); each builds its ECharts option
in Python, so a page only embeds JSON for ``web/static/console.js`` to draw with the vendored library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from miaodai.core.charts import Filters, Table
from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError, Errors
from miaodai.core.fields import ROW_ID_MAX
from miaodai.credit import dashboards as origination
from miaodai.identity.staff_service import StaffContext
from miaodai.loans import portfolio, product_service
from miaodai.payments import dashboards as money
from miaodai.web import i18n
from miaodai.web.console.core import (
    PREFIX,
    _,
    container_of,
    csrf_protect,
    finish,
    locale_of,
    menu_item,
    render,
    require,
)

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)
menu_item(f"{PREFIX}/dashboards", _("Dashboards"), "report.read")

Reader = Annotated[StaffContext, Depends(require("report.read"))]
Board = Literal["origination", "portfolio", "money"]
BOARDS: dict[str, str] = {"origination": _("Origination"), "portfolio": _("Portfolio"), "money": _("Money movement")}
DEFAULT_DAYS = 90
MAX_DAYS = 366 * 3


# The headings of the tables behind the charts (catalog message ids, by the tables' column keys). The page shows
# these words, amounts in yuan, shares as per cent and coded values (kinds, states, buckets) in the reader's
# language; the CSV keeps the keys and the raw values (see :func:`panel_csv`).
HEADINGS: dict[str, str] = {
    "day": _("Day"), "applications": _("Applications"), "approved": _("Approved applications"),
    "declined": _("Declined applications"),
    "review": _("Sent to review"), "approval_rate": _("Approval rate"), "reason_code": _("Reason code"),
    "declines": _("Declines"), "decisions": _("Decisions timed"), "p50_ms": _("p50 (ms)"), "p99_ms": _("p99 (ms)"),
    "bin": _("Score bin"), "upper": _("Upper bound"), "expected_share": _("Training share"),
    "count": _("Applications scored"), "share": _("Actual share"),
    "bucket": _("Days-past-due bucket"), "loans": _("Number of loans"),
    "principal_outstanding_fen": _("Principal outstanding (yuan)"), "principal_share": _("Share of principal"),
    "vintage": _("Disbursement month"), "months_on_book": _("Months on book"),
    "bad_loans": _("Loans ever 30+ days past due"), "bad_share": _("Share ever 30+ days past due"),
    "month_end": _("Month end"), "from_bucket": _("Bucket at the month end before"),
    "to_bucket": _("Bucket at this month end"), "month": _("Month"), "early_repayments": _("Early repayments"),
    "early_repaid_fen": _("Repaid early (yuan)"), "write_offs": _("Write-offs"),
    "written_off_fen": _("Principal written off (yuan)"),
    "kind": _("Kind"), "state": _("State"), "age": _("Age of the order"), "orders": _("Orders"),
    "amount_fen": _("Order amount (yuan)"),
    "band": _("Lag"), "callbacks": _("Callbacks"), "channel": _("Channel"), "exceptions": _("Exceptions"),
    "our_amount_fen": _("Our amount (yuan)"), "channel_amount_fen": _("Channel's amount (yuan)"),
    "oldest_hours": _("Oldest open (hours)"),
}
SHARES = frozenset({"approval_rate", "expected_share", "share", "principal_share", "bad_share"})
CODED = frozenset({"kind", "state", "age", "band", "bucket", "from_bucket", "to_bucket"})


@dataclass(frozen=True)
class Panel:
    key: str
    table: Table
    option: dict[str, Any]
    labels: dict[str, str]
    note: str | None = None

    def cells(self) -> list[list[tuple[str, bool]]]:
        """The table's rows as the page shows them: (text, is it a number) per cell — amounts (``*_fen``) in
        yuan, shares as per cent, coded values in the reader's words."""
        return [[_shown(column, value, self.labels) for column, value in zip(self.table.columns, row, strict=True)]
                for row in self.table.rows]


def _shown(column: str, value: Any, labels: dict[str, str]) -> tuple[str, bool]:
    if value is None:
        return "—", False
    if column.endswith("_fen"):
        return i18n.yuan(int(value)), True
    if column in SHARES:
        return i18n.percent(str(value)), True
    if column in CODED:
        return labels.get(str(value), str(value)), False
    if isinstance(value, date):
        return value.isoformat(), False
    return str(value), isinstance(value, int | float)


Compute = Callable[[Session, Filters, Any, str], list[Panel]]


def _origination(session: Session, filters: Filters, container: Any, locale: str) -> list[Panel]:
    labels = origination.labels_for(locale)
    applications = origination.applications_by_day(session, filters)
    reasons = origination.decline_reasons(session, filters)
    timing = origination.decision_time(session, filters)
    model = container.credit_policy.active(session).champion
    scores = origination.score_distribution(session, filters, model)
    return [
        Panel("applications_by_day", applications, origination.applications_chart(applications, labels), labels),
        Panel("decline_reasons", reasons, origination.decline_reasons_chart(reasons, filters.days(), labels), labels),
        Panel("decision_time", timing, origination.decision_time_chart(timing, labels), labels),
        Panel("score_distribution", scores.table, origination.score_chart(scores, labels), labels,
              note=f"{scores.model_id} · PSI {scores.psi}" if scores.psi is not None else scores.model_id),
    ]


def _portfolio(session: Session, filters: Filters, container: Any, locale: str) -> list[Panel]:
    labels = portfolio.labels_for(locale)
    book = portfolio.book_by_bucket(session, filters)
    vintages = portfolio.vintage_curves(session, filters)
    rolls = portfolio.roll_rates(session, filters)
    exits = portfolio.early_and_write_offs(session, filters)
    return [
        Panel("book_by_bucket", book, portfolio.book_chart(book, labels), labels),
        Panel("vintage_curves", vintages, portfolio.vintage_chart(vintages, labels), labels),
        Panel("roll_rates", rolls, portfolio.roll_chart(rolls, labels), labels),
        Panel("early_and_write_offs", exits, portfolio.early_and_write_offs_chart(exits, labels), labels),
    ]


def _money(session: Session, filters: Filters, container: Any, locale: str) -> list[Panel]:
    labels = money.labels_for(locale)
    now = container.clock.now()
    orders = money.orders_by_state(session, filters, now=now)
    lag = money.callback_lag(session, filters)
    recon = money.recon_open(session, filters, now=now)
    return [
        Panel("orders_by_state", orders, money.orders_chart(orders, labels), labels),
        Panel("open_orders", orders, money.open_orders_chart(orders, labels), labels),
        Panel("callback_lag", lag.table, money.callback_lag_chart(lag, labels), labels),
        Panel("recon_open", recon, money.recon_chart(recon, labels), labels),
    ]


COMPUTE: dict[str, Compute] = {"origination": _origination, "portfolio": _portfolio, "money": _money}


def _filters(request: Request, since: date | None, until: date | None, product_id: int | None) -> Filters:
    today = business_date(container_of(request).clock.now())
    until = until or today
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if until < since or (until - since).days > MAX_DAYS:
        raise DomainError(Errors.VALIDATION_FAILED, params={"fields": "since, until"})
    return Filters(since, until, product_id)


def _panels(request: Request, board: str, filters: Filters) -> list[Panel]:
    container = container_of(request)
    with container.db.transaction() as session:
        return COMPUTE[board](session, filters, container, locale_of(request))


ProductId = Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)]


@router.get("/dashboards", response_class=HTMLResponse)
def dashboards_home(request: Request, staff: Reader) -> Response:
    return board_page(request, "origination", staff, None, None, None)


@router.get("/dashboards/{board}", response_class=HTMLResponse)
def board_page(request: Request, board: Board, staff: Reader, since: date | None = None, until: date | None = None,
               product_id: ProductId = None) -> HTMLResponse:
    filters = _filters(request, since, until, product_id)
    panels = _panels(request, board, filters)
    products = [(p.id, p.code) for p in product_service.list_products(container_of(request))]
    query = f"since={filters.since.isoformat()}&until={filters.until.isoformat()}" + (
        f"&product_id={product_id}" if product_id else "")
    return render(request, "console/dashboards.html", staff=staff, board=board, boards=BOARDS, panels=panels,
                  headings=HEADINGS, filters=filters, products=products, query=query)


@router.get("/dashboards/{board}/{panel}.csv")
def panel_csv(request: Request, board: Board, panel: str, staff: Reader, since: date | None = None,
              until: date | None = None, product_id: ProductId = None) -> Response:
    filters = _filters(request, since, until, product_id)
    found = next((p for p in _panels(request, board, filters) if p.key == panel), None)
    if found is None:
        raise DomainError(Errors.NOT_FOUND)
    # For analysis, not reading: one header row of the stable column keys (``amount_fen``, the same in every
    # language, so a script or a pivot table reads any staff member's download) and the raw values (amounts
    # in whole fen, exact; dates ISO; states and buckets as their codes). The page is where words and yuan are.
    name = f"miaodai-{board}-{panel}-{filters.since.isoformat()}-{filters.until.isoformat()}.csv"
    response = Response("\ufeff" + found.table.to_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return finish(request, response)
