"""The origination dashboard (进件仪表盘): SQL aggregates over ``credit_applications``, their tables and charts.

* applications by day with the automated decision (approved, declined, review) and the approval rate;
* decline reasons by day (a decline's first reason code, ``reason_code``);
* decision time p50 / p99 by day (``decision_ms``: the decision's ``total_ms``, request start to the row);
* the champion's score distribution over its training histogram's bins, and its PSI against training
  (:func:`miaodai.credit.monitor.psi`, the formula ``model monitor`` uses).

Each figure is one GROUP BY over the daily roll-up (``credit_application_days``, ``credit_decision_time_days``,
``credit_score_days``, written by the end-of-day batch, :mod:`miaodai.core.rollups`) for the days it holds, and
one over ``credit_applications`` for the days after it, which the index ``ix_credit_applications_dashboard``
(application_date, product_id, decision, reason_code, decision_ms) answers alone; the Python after it only
reshapes rows (and reads percentiles from value counts, :func:`miaodai.core.charts.percentiles`). Portable
SQLAlchemy Core: the same statements on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.orm import Session

from miaodai.core.charts import Filters, Labels, Table, category_option, label, percentiles
from miaodai.core.rollups import Split, rolled_through, split
from miaodai.credit.models import ApplicationDay, CreditApplication, Decision, DecisionTimeDay, ScoreDay
from miaodai.credit.monitor import psi, verdict
from miaodai.credit.scorecard import Scorecard

A = CreditApplication
ROLLUP = "credit_applications"  # the daily roll-up's name (its mark in dashboard_rollup_marks)
TOP_REASONS = 8  # the chart's stacks: the most frequent reasons in the range, the rest as "other"

# Label keys a page translates (zh-CN, English); shown as the key when a page passes none.
LABELS: dict[str, tuple[str, str]] = {
    "applications_by_day": ("每日进件与通过率", "Applications and approval rate by day"),
    "day": ("日期", "Day"), "applications": ("进件数", "Applications"), "approved": ("通过", "Approved"),
    "declined": ("拒绝", "Declined"), "review": ("人工审核", "Review"), "approval_rate": ("通过率", "Approval rate"),
    "decline_reasons": ("每日拒绝原因", "Decline reasons by day"), "reason_code": ("原因代码", "Reason code"),
    "declines": ("拒绝数", "Declines"), "other": ("其他", "Other"),
    "decision_time": ("决策耗时 p50 / p99", "Decision time p50 / p99"), "decisions": ("决策数", "Decisions"),
    "p50_ms": ("p50（毫秒）", "p50 (ms)"), "p99_ms": ("p99（毫秒）", "p99 (ms)"), "ms": ("毫秒", "ms"),
    "score_distribution": ("评分分布与 PSI", "Score distribution and PSI"), "bin": ("分箱", "Bin"),
    "upper": ("上限", "Upper bound"), "expected_share": ("训练占比", "Training share"),
    "count": ("申请数", "Applications"), "share": ("实际占比", "Actual share"),
}


def labels_for(locale: str) -> dict[str, str]:
    """The default labels in ``zh_CN`` or ``en``."""
    i = 0 if locale.lower().startswith("zh") else 1
    return {key: texts[i] for key, texts in LABELS.items()}


def _filtered(query: Any, filters: Filters, days: tuple[date, date], table: Any = A) -> Any:
    query = query.where(table.application_date >= days[0], table.application_date <= days[1])
    if filters.product_id is not None:
        query = query.where(table.product_id == filters.product_id)
    return query


def _parts(session: Session, filters: Filters, rolled: bool) -> Split:
    """The range's days the daily roll-up answers and those read live from ``credit_applications``."""
    return split(filters.since, filters.until, rolled_through(session, ROLLUP) if rolled else None)


def _rows(session: Session, parts: Split, rolled_query: Any, live_query: Any) -> list[Any]:
    rows: list[Any] = []
    if parts.rolled is not None:
        rows += session.connection().execute(rolled_query(parts.rolled)).all()
    if parts.live is not None:
        rows += session.connection().execute(live_query(parts.live)).all()
    return rows


# -- applications and approval rate -------------------------------------------------------------------


def applications_by_day(session: Session, filters: Filters, *, rolled: bool = True) -> Table:
    """One row per day of the range: applications, approved, declined, review, approval rate (approved /
    applications, None on a day without any) — the automated decision, as it was made."""
    D = ApplicationDay  # noqa: N806 - a table alias
    rows = _rows(session, _parts(session, filters, rolled), lambda days: _filtered(
        select(D.application_date, D.decision, func.sum(D.applications)).group_by(D.application_date, D.decision),
        filters, days, D), lambda days: _filtered(
        select(A.application_date, A.decision, func.count()).group_by(A.application_date, A.decision),
        filters, days))
    counts: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(Decision, 0))
    for day, decision, n in rows:
        counts[day][Decision(decision)] += int(n)
    table = Table(("day", "applications", "approved", "declined", "review", "approval_rate"))
    for day in filters.days():
        c = counts.get(day, dict.fromkeys(Decision, 0))
        total = sum(c.values())
        rate = round(c[Decision.APPROVED] / total, 4) if total else None
        table.rows.append((day, total, c[Decision.APPROVED], c[Decision.DECLINED], c[Decision.REVIEW], rate))
    return table


def applications_chart(table: Table, labels: Labels | None = None) -> dict[str, Any]:
    """Stacked bars of the decisions per day, the approval rate (per cent) as a line on the right axis."""
    rates = [None if r is None else round(r * 100, 2) for r in table.column("approval_rate")]
    return category_option(
        title="applications_by_day", labels=labels, categories=[d.isoformat() for d in table.column("day")],
        y_name="applications", y2_name="approval_rate", stacked=True,
        series=[{"key": "approved", "data": table.column("approved")},
                {"key": "declined", "data": table.column("declined")},
                {"key": "review", "data": table.column("review")},
                {"key": "approval_rate", "kind": "line", "axis": 1, "data": rates}])


# -- decline reasons ----------------------------------------------------------------------------------


def decline_reasons(session: Session, filters: Filters, *, rolled: bool = True) -> Table:
    """(day, reason code, declines) for every day and reason with a decline, by day then code."""
    D = ApplicationDay  # noqa: N806 - a table alias
    rows = _rows(session, _parts(session, filters, rolled), lambda days: _filtered(
        select(D.application_date, D.reason_code, func.sum(D.applications))
        .where(D.decision == Decision.DECLINED.value)
        .group_by(D.application_date, D.reason_code), filters, days, D), lambda days: _filtered(
        select(A.application_date, A.reason_code, func.count())
        .where(A.decision == Decision.DECLINED)
        .group_by(A.application_date, A.reason_code), filters, days))
    table = Table(("day", "reason_code", "declines"))
    table.rows.extend(sorted((day, code or "", int(n)) for day, code, n in rows))
    return table


def decline_reasons_chart(table: Table, days: list[date], labels: Labels | None = None) -> dict[str, Any]:
    """Stacked bars per day: the ``TOP_REASONS`` most frequent reason codes of the range, the rest as one."""
    totals: dict[str, int] = defaultdict(int)
    for _, code, n in table.rows:
        totals[code] += n
    top = sorted(totals, key=lambda c: (-totals[c], c))[:TOP_REASONS]
    index = {d: i for i, d in enumerate(days)}
    data: dict[str, list[int]] = {code: [0] * len(days) for code in [*top, "other"]}
    for day, code, n in table.rows:
        data[code if code in top else "other"][index[day]] += n
    series = [{"key": code, "data": values} for code, values in data.items() if code != "other" or any(values)]
    return category_option(title="decline_reasons", labels=labels, categories=[d.isoformat() for d in days],
                           y_name="declines", stacked=True, series=series)


# -- decision time ------------------------------------------------------------------------------------


# decision_ms to two significant figures, rounded down (1 ms steps below 100 ms, 10 ms below 1 s, …): a day
# has a few hundred values at most, however many decisions it made, and a percentile is off by < 10 %.
_MS = A.decision_ms
_STEP = case((_MS < 100, _MS), (_MS < 1000, _MS // 10 * 10), (_MS < 10000, _MS // 100 * 100),
             else_=_MS // 1000 * 1000)


def decision_time(session: Session, filters: Filters, *, rolled: bool = True) -> Table:
    """Per day: decisions timed, p50 and p99 of ``decision_ms`` (nearest rank over values kept to two
    significant figures, rounded down: 37 ms is 37, 412 ms is 410). Days rolled up are read as the roll-up
    computed them (the same values, the same ranks); the days after, live."""
    parts = _parts(session, filters, rolled)
    found: dict[date, tuple[int, float | None, float | None]] = {}
    if parts.rolled is not None:
        D = DecisionTimeDay  # noqa: N806 - a table alias
        product = D.product_id.is_(None) if filters.product_id is None else D.product_id == filters.product_id
        for day, n, p50, p99 in session.connection().execute(
                select(D.application_date, D.decisions, D.p50_ms, D.p99_ms)
                .where(D.application_date >= parts.rolled[0], D.application_date <= parts.rolled[1], product)):
            found[day] = (int(n), int(p50), int(p99))
    if parts.live is not None:
        rows = session.connection().execute(_filtered(
            select(A.application_date, _STEP, func.count()).where(_MS.is_not(None))
            .group_by(A.application_date, _STEP), filters, parts.live)).all()
        by_day: dict[date, list[tuple[float, int]]] = defaultdict(list)
        for day, ms, n in rows:
            by_day[day].append((int(ms), int(n)))
        for day, counts in by_day.items():
            low, high = percentiles(counts, (0.5, 0.99))
            found[day] = (sum(n for _, n in counts), low, high)
    table = Table(("day", "decisions", "p50_ms", "p99_ms"))
    for day in filters.days():
        table.rows.append((day, *found.get(day, (0, None, None))))
    return table


def decision_time_chart(table: Table, labels: Labels | None = None) -> dict[str, Any]:
    return category_option(
        title="decision_time", labels=labels, categories=[d.isoformat() for d in table.column("day")],
        y_name="ms", series=[{"key": "p50_ms", "kind": "line", "data": table.column("p50_ms")},
                             {"key": "p99_ms", "kind": "line", "data": table.column("p99_ms")}])


# -- score distribution and PSI -----------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreDistribution:
    model_id: str
    table: Table  # bin, upper, expected_share, count, share
    psi: float | None
    verdict: str | None


def score_distribution(session: Session, filters: Filters, model: Scorecard, *,
                       rolled: bool = True) -> ScoreDistribution:
    """Applications scored by ``model`` in the range, over its training histogram's bins (a bin holds
    scores below its upper bound and at or above the previous one's; the last is open), and the PSI of
    those counts against the training shares."""
    bins = model.document.get("training", {}).get("score_distribution", [])
    table = Table(("bin", "upper", "expected_share", "count", "share"))
    if not bins:
        return ScoreDistribution(model.model_id, table, None, None)
    uppers = [b["upper"] for b in bins]

    def bin_of(score: Any) -> Any:
        return case(*((score < Decimal(str(u)), i) for i, u in enumerate(uppers) if u is not None),
                    else_=len(uppers) - 1)

    D = ScoreDay  # noqa: N806 - a table alias
    rolled_bin, live_bin = bin_of(D.score), bin_of(A.score)  # one expression each: GROUP BY repeats its SELECT's
    rows = _rows(session, _parts(session, filters, rolled), lambda days: _filtered(
        select(rolled_bin, func.sum(D.applications)).where(D.model_id == model.model_id)
        .group_by(rolled_bin), filters, days, D), lambda days: _filtered(
        select(live_bin, func.count()).where(A.model_id == model.model_id, A.score.is_not(None))
        .group_by(live_bin), filters, days))
    counts = [0] * len(bins)
    for i, n in rows:
        counts[int(i)] += int(n)
    total = sum(counts)
    for i, b in enumerate(bins):
        table.rows.append((i + 1, b["upper"], b["share"], counts[i], round(counts[i] / total, 4) if total else None))
    value = psi([b["share"] for b in bins], counts) if total else None
    return ScoreDistribution(model.model_id, table, None if value is None else round(value, 4),
                             None if value is None else verdict(value))


def score_chart(result: ScoreDistribution, labels: Labels | None = None) -> dict[str, Any]:
    """Training share beside the actual share per bin (per cent), the PSI and its verdict in the title."""
    table = result.table
    title = label(labels, "score_distribution")
    if result.psi is not None:
        title = f"{title} · PSI {result.psi:.4f} ({result.verdict})"
    categories = [f"< {u}" if u is not None else f"≥ {table.rows[-2][1]}" if len(table.rows) > 1 else "all"
                  for u in table.column("upper")]
    option = category_option(
        title="score_distribution", labels=labels, categories=categories, y_name="share",
        series=[{"key": "expected_share", "data": [round(s * 100, 2) for s in table.column("expected_share")]},
                {"key": "share", "data": [None if s is None else round(s * 100, 2) for s in table.column("share")]}])
    option["title"]["text"] = title
    return option


# -- the daily roll-up ----------------------------------------------------------------------------------


class ApplicationsRollup:
    """The end-of-day roll-up of a day's applications (:class:`ApplicationDay`, :class:`DecisionTimeDay`,
    :class:`ScoreDay`): delete the day's rows, insert them again from ``credit_applications`` (the decision
    times' percentiles read in Python from the day's values, as :func:`decision_time` reads a live day's)."""

    name = ROLLUP

    def first_day(self, session: Session) -> date | None:
        return session.execute(select(func.min(A.application_date))).scalar_one_or_none()

    def roll_day(self, session: Session, day: date) -> int:
        written = 0
        for table in (ApplicationDay, DecisionTimeDay, ScoreDay):
            session.connection().execute(delete(table).where(table.application_date == day))
        on_day = A.application_date == day
        for target, columns, source in (
            (ApplicationDay, ("application_date", "product_id", "decision", "reason_code", "applications"),
             select(A.application_date, A.product_id, A.decision, A.reason_code, func.count()).where(on_day)
             .group_by(A.application_date, A.product_id, A.decision, A.reason_code)),
            (ScoreDay, ("application_date", "product_id", "model_id", "score", "applications"),
             select(A.application_date, A.product_id, A.model_id, A.score, func.count())
             .where(on_day, A.model_id.is_not(None), A.score.is_not(None))
             .group_by(A.application_date, A.product_id, A.model_id, A.score)),
        ):
            session.connection().execute(insert(target).from_select(list(columns), source))
            written += session.connection().execute(  # (psycopg reports no rowcount for a Core INSERT … SELECT)
                select(func.count()).where(target.application_date == day)).scalar_one()
        return written + self._decision_times(session, day)

    @staticmethod
    def _decision_times(session: Session, day: date) -> int:
        """The day's decision-time percentiles per product and for all products (``product_id`` None)."""
        counts: dict[int | None, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for product_id, ms, n in session.connection().execute(
                select(A.product_id, _STEP, func.count()).where(A.application_date == day, _MS.is_not(None))
                .group_by(A.product_id, _STEP)):
            counts[int(product_id)][int(ms)] += int(n)
            counts[None][int(ms)] += int(n)
        rows = []
        for product_id, values in counts.items():
            p50, p99 = percentiles(values.items(), (0.5, 0.99))
            rows.append({"application_date": day, "product_id": product_id, "decisions": sum(values.values()),
                         "p50_ms": p50, "p99_ms": p99})
        if rows:
            session.connection().execute(insert(DecisionTimeDay), rows)
        return len(rows)
