"""The dashboards (仪表盘): origination, portfolio and money movement, each a page of Apache ECharts charts that a
risk manager hovers and reads, filtered by a date range and a product, with the table behind each chart under it
and as CSV.

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


@dataclass(frozen=True)
class Panel:
    key: str
    table: Table
    option: dict[str, Any]
    labels: dict[str, str]
    note: str | None = None


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
                  filters=filters, products=products, query=query)


@router.get("/dashboards/{board}/{panel}.csv")
def panel_csv(request: Request, board: Board, panel: str, staff: Reader, since: date | None = None,
              until: date | None = None, product_id: ProductId = None) -> Response:
    filters = _filters(request, since, until, product_id)
    found = next((p for p in _panels(request, board, filters) if p.key == panel), None)
    if found is None:
        raise DomainError(Errors.NOT_FOUND)
    name = f"miaodai-{board}-{panel}-{filters.since.isoformat()}-{filters.until.isoformat()}.csv"
    response = Response("\ufeff" + found.table.to_csv(found.labels), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return finish(request, response)
