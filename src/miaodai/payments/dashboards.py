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
the order is made: no join). Portable Core: the date-time difference and a timestamp's Beijing date come from
the dialect layer (:class:`miaodai.core.db.milliseconds_between`, :class:`~miaodai.core.db.business_date_of`).

Daily roll-ups (:mod:`miaodai.core.rollups`), written by the end-of-day batch: final orders by the day they
became final (``payment_order_days``; a final order never changes) and applied callbacks by the day received
(``payment_callback_days``, lag in 10 ms steps). A range reads them up to their last day and the base tables
live after it, so a year is a few thousand roll-up rows plus the tail.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from miaodai.core.charts import Filters, Labels, Table, category_option, percentiles
from miaodai.core.clock import BUSINESS_TZ
from miaodai.core.db import business_date_of, milliseconds_between, not_indexed
from miaodai.core.rollups import instant, rolled_through, split
from miaodai.payments.channel import INDEFINITE_CODES
from miaodai.payments.models import (
    CallbackLagDay,
    ChannelCallback,
    OrderStatus,
    PaymentOrder,
    PaymentOrderDay,
    ReconException,
    ReconExceptionStatus,
)

PO = PaymentOrder
KINDS = ("payout", "collection")
STATES = ("in_flight", "unknown", "succeeded", "failed")
# Ages of orders not final: (key, at least this old).
AGES = (("under_1m", timedelta(0)), ("1m_10m", timedelta(minutes=1)), ("10m_1h", timedelta(minutes=10)),
        ("1h_24h", timedelta(hours=1)), ("over_24h", timedelta(hours=24)))
# Callback lag bands: (key, at least this many seconds).
LAGS = (("under_1s", 0.0), ("1s_5s", 1.0), ("5s_30s", 5.0), ("30s_5m", 30.0), ("over_5m", 300.0))
LAG_STEP_MS = 10  # percentiles of the lag are exact to 10 ms
ORDERS_ROLLUP = "payment_orders"  # the daily roll-ups' names (their marks in dashboard_rollup_marks)
CALLBACKS_ROLLUP = "payment_callbacks"

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


def _range(column: Any, since: date, until: date) -> Any:
    return (column >= instant(since)) & (column < instant(until + timedelta(days=1)))


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


def orders_by_state(session: Session, filters: Filters, *, now: datetime, rolled: bool = True) -> Table:
    """(kind, state, age, orders, amount in fen) for orders made in the range; ``age`` is ``final`` for
    succeeded and failed orders, else how long ago (at ``now``) the order was made.

    Orders that became final up to the daily roll-up's last day come from ``payment_order_days``; the rest —
    orders never settled (not final), and those settled after that day — from ``payment_orders``, live
    (SQLite is kept off the index of days made, :class:`~miaodai.core.db.not_indexed`: it cannot see that the
    range of days is the larger set). ``rolled=False``
    reads everything live (what the roll-up must always agree with)."""
    found: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(rows: Any) -> None:
        for kind, state, age, n, fen in rows:
            found[kind, state, age][0] += int(n)
            found[kind, state, age][1] += int(fen)

    through = rolled_through(session, ORDERS_ROLLUP) if rolled else None
    if through is None or through < filters.since:
        add(session.connection().execute(_live_orders(filters, now)))
    else:
        D = PaymentOrderDay  # noqa: N806 - a table alias
        query = (select(D.kind, D.state, literal("final"), func.sum(D.orders), func.sum(D.amount_fen))
                 .where(D.created_on >= filters.since, D.created_on <= filters.until, D.settled_on <= through)
                 .group_by(D.kind, D.state))
        if filters.product_id is not None:
            query = query.where(D.product_id == filters.product_id)
        add(session.connection().execute(query))
        # The rest, from the settled index: never settled (not final: few), then settled after the last day.
        for tail in (PO.settled_at.is_(None), PO.settled_at >= instant(through + timedelta(days=1))):
            add(session.connection().execute(_live_orders(filters, now, not_indexed(PO.created_at)).where(tail)))
    ages = ["final", *(key for key, _ in AGES)]
    rows = sorted(((kind, state, a, n, fen) for (kind, state, a), (n, fen) in found.items()),
                  key=lambda r: (KINDS.index(r[0]) if r[0] in KINDS else 9, STATES.index(r[1]), ages.index(r[2])))
    table = Table(("kind", "state", "age", "orders", "amount_fen"))
    table.rows.extend(rows)
    return table


def _live_orders(filters: Filters, now: datetime, created_at: Any = PO.created_at) -> Any:
    age = _age(now)
    query = (select(PO.kind, _STATE, age, func.count(), func.coalesce(func.sum(PO.amount_fen), 0))
             .where(_range(created_at, filters.since, filters.until)).group_by(PO.kind, _STATE, age))
    if filters.product_id is not None:
        query = query.where(PO.product_id == filters.product_id)
    return query


class OrdersRollup:
    """The end-of-day roll-up of final orders by the day they became final (:class:`PaymentOrderDay`)."""

    name = ORDERS_ROLLUP

    def first_day(self, session: Session) -> date | None:
        first = session.execute(select(func.min(PO.settled_at))).scalar_one_or_none()
        return None if first is None else first.astimezone(BUSINESS_TZ).date()

    def roll_day(self, session: Session, day: date) -> int:
        session.connection().execute(delete(PaymentOrderDay).where(PaymentOrderDay.settled_on == day))
        created_on = business_date_of(PO.created_at)
        rows = (select(literal(day, PaymentOrderDay.settled_on.type), created_on, PO.product_id, PO.kind, PO.status,
                       func.count(), func.sum(PO.amount_fen))
                .where(_range(PO.settled_at, day, day), PO.status.in_((OrderStatus.SUCCEEDED, OrderStatus.FAILED)))
                .group_by(created_on, PO.product_id, PO.kind, PO.status))
        D = PaymentOrderDay  # noqa: N806 - a table alias
        session.connection().execute(insert(D).from_select(
            [D.settled_on, D.created_on, D.product_id, D.kind, D.state, D.orders, D.amount_fen], rows))
        # (Counted, not the driver's rowcount: psycopg reports none for an INSERT … SELECT built by Core.)
        return session.connection().execute(select(func.count()).where(D.settled_on == day)).scalar_one()


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


def callback_lag(session: Session, filters: Filters, *, rolled: bool = True) -> CallbackLag:
    """Verified callbacks that arrived in the range and settled their order (``applied``): the time from
    the channel's completion to their arrival, by band, with p50 and p99 (nearest rank, to 10 ms).

    Days up to the daily roll-up's last one come from ``payment_callback_days``, the days after it live from
    ``payment_callbacks`` joined to their orders; ``rolled=False`` reads every day live."""
    steps: dict[int, int] = defaultdict(int)
    parts = split(filters.since, filters.until, rolled_through(session, CALLBACKS_ROLLUP) if rolled else None)
    if parts.rolled is not None:
        D = CallbackLagDay  # noqa: N806 - a table alias
        query = (select(D.lag_step, func.sum(D.callbacks))
                 .where(D.received_on >= parts.rolled[0], D.received_on <= parts.rolled[1]).group_by(D.lag_step))
        if filters.product_id is not None:
            query = query.where(D.product_id == filters.product_id)
        for step, n in session.connection().execute(query):
            steps[int(step)] += int(n)
    if parts.live is not None:
        query = (select(_LAG_STEP, func.count()).join(PO, PO.order_no == ChannelCallback.order_no)
                 .where(_range(ChannelCallback.received_at, *parts.live), *_APPLIED).group_by(_LAG_STEP))
        if filters.product_id is not None:
            query = query.where(PO.product_id == filters.product_id)
        for step, n in session.connection().execute(query):
            steps[int(step)] += int(n)
    counts = [(step * LAG_STEP_MS, n) for step, n in sorted(steps.items())]
    bands: dict[str, int] = defaultdict(int)
    for ms, n in counts:
        key = next(k for k, least in reversed(LAGS) if ms >= least * 1000)
        bands[key] += n
    table = Table(("band", "callbacks"))
    table.rows.extend((key, bands.get(key, 0)) for key, _ in LAGS)
    p50, p99 = percentiles(counts, (0.5, 0.99))
    return CallbackLag(table, p50, p99, sum(n for _, n in counts))


# Whole steps of LAG_STEP_MS (integer division on both databases); a negative lag, clocks apart, is 0.
_LAG_MS = milliseconds_between(ChannelCallback.received_at, PO.finished_at)
_LAG_STEP = case((_LAG_MS < 0, 0), else_=_LAG_MS // LAG_STEP_MS)
_APPLIED = (ChannelCallback.outcome == "applied", PO.finished_at.is_not(None))


class CallbacksRollup:
    """The end-of-day roll-up of applied callbacks by the day received, product and lag step
    (:class:`CallbackLagDay`)."""

    name = CALLBACKS_ROLLUP

    def first_day(self, session: Session) -> date | None:
        first = session.execute(select(func.min(ChannelCallback.received_at))).scalar_one_or_none()
        return None if first is None else first.astimezone(BUSINESS_TZ).date()

    def roll_day(self, session: Session, day: date) -> int:
        session.connection().execute(delete(CallbackLagDay).where(CallbackLagDay.received_on == day))
        rows = (select(literal(day, CallbackLagDay.received_on.type), PO.product_id, _LAG_STEP, func.count())
                .join(PO, PO.order_no == ChannelCallback.order_no)
                .where(_range(ChannelCallback.received_at, day, day), *_APPLIED)
                .group_by(PO.product_id, _LAG_STEP))
        D = CallbackLagDay  # noqa: N806 - a table alias
        session.connection().execute(
            insert(D).from_select([D.received_on, D.product_id, D.lag_step, D.callbacks], rows))
        return session.connection().execute(select(func.count()).where(D.received_on == day)).scalar_one()


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
