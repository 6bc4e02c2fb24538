"""The money-movement dashboard (资金仪表盘): SQL aggregates over payment orders, callbacks and
reconciliation exceptions, their tables and charts.

* payouts and collections by state and age: ``in_flight`` (stored, or sent and awaiting the channel's first
  answer), ``unknown`` (sent, and the channel has not said how it ended although asked: queried at least
  once, or its last answer an indefinite code such as SYSTEMERROR), ``succeeded``, ``failed``; orders not
  final by how long ago they were made;
* callback lag: from the channel's completion time (``finished_at``) to our receipt of its signed callback,
  p50 / p99 and by band;
* reconciliation exceptions still open, by channel and kind, with their amounts and the oldest's age.

The date range selects orders by the Beijing day they were made, callbacks by the day they arrived, and
exceptions by their business date; the product is the order's own ``product_id`` (its loan's, copied when
the order is made: no join). Portable Core: the one
date-time difference comes from the dialect layer (:class:`miaodai.core.db.milliseconds_between`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from miaodai.core.charts import Filters, Labels, Table, category_option, percentiles
from miaodai.core.clock import BUSINESS_TZ
from miaodai.core.db import milliseconds_between
from miaodai.payments.channel import INDEFINITE_CODES
from miaodai.payments.models import ChannelCallback, OrderStatus, PaymentOrder, ReconException, ReconExceptionStatus

PO = PaymentOrder
KINDS = ("payout", "collection")
STATES = ("in_flight", "unknown", "succeeded", "failed")
# Ages of orders not final: (key, at least this old).
AGES = (("under_1m", timedelta(0)), ("1m_10m", timedelta(minutes=1)), ("10m_1h", timedelta(minutes=10)),
        ("1h_24h", timedelta(hours=1)), ("over_24h", timedelta(hours=24)))
# Callback lag bands: (key, at least this many seconds).
LAGS = (("under_1s", 0.0), ("1s_5s", 1.0), ("5s_30s", 5.0), ("30s_5m", 30.0), ("over_5m", 300.0))
LAG_STEP_MS = 10  # percentiles of the lag are exact to 10 ms

LABELS: dict[str, tuple[str, str]] = {
    "orders_by_state": ("代付与代扣订单状态", "Payouts and collections by state"), "kind": ("类型", "Kind"),
    "payout": ("代付（放款）", "Payouts"), "collection": ("代扣（还款）", "Collections"), "state": ("状态", "State"),
    "in_flight": ("处理中", "In flight"), "unknown": ("结果未知", "Unknown"), "succeeded": ("成功", "Succeeded"),
    "failed": ("失败", "Failed"), "age": ("时长", "Age"), "orders": ("订单数", "Orders"),
    "amount_fen": ("金额（分）", "Amount (fen)"), "under_1m": ("< 1 分钟", "< 1 min"),
    "1m_10m": ("1–10 分钟", "1–10 min"), "10m_1h": ("10–60 分钟", "10–60 min"), "1h_24h": ("1–24 小时", "1–24 h"),
    "over_24h": ("> 24 小时", "> 24 h"), "final": ("已完成", "Final"),
    "open_orders_by_age": ("未完成订单时长", "Orders not final, by age"),
    "callback_lag": ("回调延迟", "Callback lag"), "band": ("区间", "Band"), "callbacks": ("回调数", "Callbacks"),
    "under_1s": ("< 1 秒", "< 1 s"), "1s_5s": ("1–5 秒", "1–5 s"), "5s_30s": ("5–30 秒", "5–30 s"),
    "30s_5m": ("30 秒–5 分钟", "30 s–5 min"), "over_5m": ("> 5 分钟", "> 5 min"),
    "recon_open": ("未处理对账差异", "Reconciliation exceptions open"), "channel": ("渠道", "Channel"),
    "exceptions": ("差异数", "Exceptions"), "our_amount_fen": ("我方金额（分）", "Our amount (fen)"),
    "channel_amount_fen": ("渠道金额（分）", "Channel amount (fen)"),
    "oldest_hours": ("最久（小时）", "Oldest (hours)"),
    "missing_ours": ("我方缺单", "Missing on our side"), "missing_channel": ("渠道缺单", "Missing at the channel"),
    "amount_mismatch": ("金额不符", "Amount mismatch"), "status_mismatch": ("状态不符", "Status mismatch"),
}


def labels_for(locale: str) -> dict[str, str]:
    i = 0 if locale.lower().startswith("zh") else 1
    return {key: texts[i] for key, texts in LABELS.items()}


def _instant(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=BUSINESS_TZ)


def _range(column: Any, filters: Filters) -> Any:
    return (column >= _instant(filters.since)) & (column < _instant(filters.until + timedelta(days=1)))


# -- orders by state and age --------------------------------------------------------------------------

_STATE = case(
    (PO.status == OrderStatus.SUCCEEDED, "succeeded"), (PO.status == OrderStatus.FAILED, "failed"),
    ((PO.status == OrderStatus.PROCESSING) & ((PO.checks > 0) | PO.code.in_(sorted(INDEFINITE_CODES))), "unknown"),
    else_="in_flight")


def _age(now: datetime) -> Any:
    final = PO.status.in_((OrderStatus.SUCCEEDED, OrderStatus.FAILED))
    whens = [(final, literal("final"))]
    whens += [(PO.created_at <= now - least, literal(key)) for key, least in reversed(AGES[1:])]
    return case(*whens, else_=literal(AGES[0][0]))


def orders_by_state(session: Session, filters: Filters, *, now: datetime) -> Table:
    """(kind, state, age, orders, amount in fen) for orders made in the range; ``age`` is ``final`` for
    succeeded and failed orders, else how long ago (at ``now``) the order was made."""
    age = _age(now)
    query = (select(PO.kind, _STATE, age, func.count(), func.coalesce(func.sum(PO.amount_fen), 0))
             .where(_range(PO.created_at, filters)).group_by(PO.kind, _STATE, age))
    if filters.product_id is not None:
        query = query.where(PO.product_id == filters.product_id)
    ages = ["final", *(key for key, _ in AGES)]
    found = session.connection().execute(query)
    rows = sorted(((kind, state, a, int(n), int(fen)) for kind, state, a, n, fen in found),
                  key=lambda r: (KINDS.index(r[0]) if r[0] in KINDS else 9, STATES.index(r[1]), ages.index(r[2])))
    table = Table(("kind", "state", "age", "orders", "amount_fen"))
    table.rows.extend(rows)
    return table


def orders_chart(table: Table, labels: Labels | None = None) -> dict[str, Any]:
    """Orders per kind, stacked by state."""
    counts: dict[str, dict[str, int]] = {state: dict.fromkeys(KINDS, 0) for state in STATES}
    for kind, state, _, n, _ in table.rows:
        if kind in KINDS:
            counts[state][kind] += n
    return category_option(title="orders_by_state", labels=labels, categories=[(labels or {}).get(k, k) for k in KINDS],
                           y_name="orders", stacked=True,
                           series=[{"key": s, "data": [counts[s][k] for k in KINDS]} for s in STATES])


def open_orders_chart(table: Table, labels: Labels | None = None) -> dict[str, Any]:
    """Orders not final (in flight or unknown), stacked by kind, per age band."""
    keys = [key for key, _ in AGES]
    counts: dict[str, list[int]] = {kind: [0] * len(keys) for kind in KINDS}
    for kind, _, age, n, _ in table.rows:
        if age != "final" and kind in counts:
            counts[kind][keys.index(age)] += n
    return category_option(title="open_orders_by_age", labels=labels,
                           categories=[(labels or {}).get(k, k) for k in keys], y_name="orders", stacked=True,
                           series=[{"key": kind, "data": counts[kind]} for kind in KINDS])


# -- callback lag -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackLag:
    table: Table  # band, callbacks
    p50_ms: float | None
    p99_ms: float | None
    callbacks: int


def callback_lag(session: Session, filters: Filters) -> CallbackLag:
    """Verified callbacks that arrived in the range and settled their order (``applied``): the time from
    the channel's completion to their arrival, by band, with p50 and p99 (nearest rank, to 10 ms)."""
    # Integer division on both databases: whole steps of LAG_STEP_MS (a negative lag, clocks apart, is 0).
    step = milliseconds_between(ChannelCallback.received_at, PO.finished_at) // LAG_STEP_MS
    query = (select(step, func.count())
             .join(PO, PO.order_no == ChannelCallback.order_no)
             .where(_range(ChannelCallback.received_at, filters), ChannelCallback.outcome == "applied",
                    PO.finished_at.is_not(None))
             .group_by(step))
    if filters.product_id is not None:
        query = query.where(PO.product_id == filters.product_id)
    counts = [(max(0, int(s)) * LAG_STEP_MS, int(n)) for s, n in session.connection().execute(query)]
    bands: dict[str, int] = defaultdict(int)
    for ms, n in counts:
        key = next(k for k, least in reversed(LAGS) if ms >= least * 1000)
        bands[key] += n
    table = Table(("band", "callbacks"))
    table.rows.extend((key, bands.get(key, 0)) for key, _ in LAGS)
    p50, p99 = percentiles(counts, (0.5, 0.99))
    return CallbackLag(table, p50, p99, sum(n for _, n in counts))


def callback_lag_chart(result: CallbackLag, labels: Labels | None = None) -> dict[str, Any]:
    option = category_option(title="callback_lag", labels=labels,
                             categories=[(labels or {}).get(b, b) for b in result.table.column("band")],
                             y_name="callbacks",
                             series=[{"key": "callbacks", "data": result.table.column("callbacks")}])
    if result.p50_ms is not None:
        option["title"]["text"] += f" · p50 {result.p50_ms:.0f} ms · p99 {result.p99_ms:.0f} ms"
    return option


# -- reconciliation exceptions open -------------------------------------------------------------------


def recon_open(session: Session, filters: Filters, *, now: datetime) -> Table:
    """Open exceptions of business dates in the range, by channel and kind: how many, their amounts on
    each side (fen), and how many hours the oldest has been open."""
    R = ReconException  # noqa: N806 - a table alias
    query = (select(R.channel, R.kind, func.count(), func.coalesce(func.sum(R.our_amount_fen), 0),
                    func.coalesce(func.sum(R.channel_amount_fen), 0), func.min(R.created_at))
             .where(R.status == ReconExceptionStatus.OPEN, R.business_date >= filters.since,
                    R.business_date <= filters.until)
             .group_by(R.channel, R.kind).order_by(R.channel, R.kind))
    table = Table(("channel", "kind", "exceptions", "our_amount_fen", "channel_amount_fen", "oldest_hours"))
    for channel, kind, n, ours, theirs, oldest in session.connection().execute(query):
        hours = round((now - oldest).total_seconds() / 3600, 1)
        table.rows.append((channel, kind, int(n), int(ours or 0), int(theirs or 0), hours))
    return table


def recon_chart(table: Table, labels: Labels | None = None) -> dict[str, Any]:
    """Open exceptions per channel, stacked by kind."""
    channels = sorted({row[0] for row in table.rows})
    kinds = sorted({row[1] for row in table.rows})
    data = {kind: [0] * len(channels) for kind in kinds}
    for channel, kind, n, *_ in table.rows:
        data[kind][channels.index(channel)] = n
    return category_option(title="recon_open", labels=labels, categories=channels, y_name="exceptions",
                           stacked=True, series=[{"key": kind, "data": data[kind]} for kind in kinds])
