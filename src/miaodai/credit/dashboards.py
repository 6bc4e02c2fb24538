"""The origination dashboard (进件仪表盘): SQL aggregates over ``credit_applications``, their tables and charts.

* applications by day with the automated decision (approved, declined, review) and the approval rate;
* decline reasons by day (a decline's first reason code, ``reason_code``);
* decision time p50 / p99 by day (``decision_ms``: the decision's ``total_ms``, request start to the row);
* the champion's score distribution over its training histogram's bins, and its PSI against training
  (:func:`miaodai.credit.monitor.psi`, the formula ``model monitor`` uses).

Each figure is one GROUP BY over a range of days that the index ``ix_credit_applications_dashboard``
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

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from miaodai.core.charts import Filters, Labels, Table, category_option, label, percentiles
from miaodai.credit.models import CreditApplication, Decision
from miaodai.credit.monitor import psi, verdict
from miaodai.credit.scorecard import Scorecard

A = CreditApplication
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


def _filtered(query: Any, filters: Filters) -> Any:
    query = query.where(A.application_date >= filters.since, A.application_date <= filters.until)
    if filters.product_id is not None:
        query = query.where(A.product_id == filters.product_id)
    return query


# -- applications and approval rate -------------------------------------------------------------------


def applications_by_day(session: Session, filters: Filters) -> Table:
    """One row per day of the range: applications, approved, declined, review, approval rate (approved /
    applications, None on a day without any) — the automated decision, as it was made."""
    rows = session.connection().execute(_filtered(
        select(A.application_date, A.decision, func.count()).group_by(A.application_date, A.decision),
        filters)).all()
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


def decline_reasons(session: Session, filters: Filters) -> Table:
    """(day, reason code, declines) for every day and reason with a decline, by day then code."""
    rows = session.connection().execute(_filtered(
        select(A.application_date, A.reason_code, func.count())
        .where(A.decision == Decision.DECLINED)
        .group_by(A.application_date, A.reason_code), filters)).all()
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


def decision_time(session: Session, filters: Filters) -> Table:
    """Per day: decisions timed, p50 and p99 of ``decision_ms`` (nearest rank over values kept to two
    significant figures, rounded down: 37 ms is 37, 412 ms is 410)."""
    rows = session.connection().execute(_filtered(
        select(A.application_date, _STEP, func.count())
        .where(_MS.is_not(None))
        .group_by(A.application_date, _STEP), filters)).all()
    by_day: dict[date, list[tuple[float, int]]] = defaultdict(list)
    for day, ms, n in rows:
        by_day[day].append((int(ms), int(n)))
    table = Table(("day", "decisions", "p50_ms", "p99_ms"))
    for day in filters.days():
        counts = by_day.get(day, [])
        p50, p99 = percentiles(counts, (0.5, 0.99))
        table.rows.append((day, sum(n for _, n in counts), p50, p99))
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


def score_distribution(session: Session, filters: Filters, model: Scorecard) -> ScoreDistribution:
    """Applications scored by ``model`` in the range, over its training histogram's bins (a bin holds
    scores below its upper bound and at or above the previous one's; the last is open), and the PSI of
    those counts against the training shares."""
    bins = model.document.get("training", {}).get("score_distribution", [])
    table = Table(("bin", "upper", "expected_share", "count", "share"))
    if not bins:
        return ScoreDistribution(model.model_id, table, None, None)
    uppers = [b["upper"] for b in bins]
    bin_of = case(*((A.score < Decimal(str(u)), i) for i, u in enumerate(uppers) if u is not None),
                  else_=len(uppers) - 1)
    rows = session.connection().execute(_filtered(
        select(bin_of, func.count()).where(A.model_id == model.model_id, A.score.is_not(None)).group_by(bin_of),
        filters)).all()
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
