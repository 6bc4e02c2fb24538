"""What every dashboard shares: a table of plain rows, its CSV, exact percentiles from value counts, and
Apache ECharts ``option`` dicts built from rows in Python (so a page embeds JSON and calls
``echarts.init(el).setOption(option)``; the library is vendored in ``web/static/vendor/echarts``).

Pure: no database, no I/O. Labels (series names, axis titles) are passed in, in the reader's language:
a mapping from a stable key to its text; a key with no text is shown as itself.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

Labels = Mapping[str, str]


def label(labels: Labels | None, key: str) -> str:
    return (labels or {}).get(key, key)


@dataclass(frozen=True)
class Table:
    """The table behind one chart: column keys and rows of plain values (int fen, str, date, float)."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def column(self, key: str) -> list[Any]:
        i = self.columns.index(key)
        return [row[i] for row in self.rows]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_csv(self, labels: Labels | None = None) -> str:
        """The rows as CSV (RFC 4180, ``\\r\\n`` line ends), headed by the columns' labels."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([label(labels, c) for c in self.columns])
        for row in self.rows:
            writer.writerow([_cell(v) for v in row])
        return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Filters:
    """What every dashboard is filtered by: business dates ``since``–``until`` (inclusive) and a product."""

    since: date
    until: date
    product_id: int | None = None

    def __post_init__(self) -> None:
        if self.until < self.since:
            raise ValueError("the date range ends before it starts")

    def days(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]


# -- percentiles -------------------------------------------------------------------------------------


def percentiles(counts: Iterable[tuple[float, int]], qs: Sequence[float]) -> list[float | None]:
    """The ``qs`` quantiles (each 0 < q ≤ 1) of a distribution given as (value, how many) pairs, by nearest
    rank: for each q, the smallest value with at least ``ceil(q × n)`` observations at or below it. Nones
    when the distribution is empty. One sort and one pass for all of them.

    Exact, not estimated: the SQL groups by the value and this reads the ranks, which works the same on
    SQLite (no percentile functions) and PostgreSQL."""
    if any(not 0 < q <= 1 for q in qs):
        raise ValueError("every q must be in (0, 1]")
    ordered = sorted((v, n) for v, n in counts if n > 0)
    total = sum(n for _, n in ordered)
    if not total:
        return [None] * len(qs)
    ranks = [max(1, math.ceil(Fraction(str(q)) * total)) for q in qs]  # exact: 0.07 × 100 is 7, not 7.000…1
    found: list[float | None] = [None] * len(qs)
    seen = 0
    for value, n in ordered:
        seen += n
        for i, rank in enumerate(ranks):
            if found[i] is None and seen >= rank:
                found[i] = value
        if found[-1] is not None and all(f is not None for f in found):
            break
    return found


def percentile(counts: Iterable[tuple[float, int]], q: float) -> float | None:
    """One quantile: :func:`percentiles` with one q."""
    return percentiles(counts, (q,))[0]


# -- roll rates --------------------------------------------------------------------------------------


def roll_matrix(transitions: Iterable[tuple[str, str, int]], states: Sequence[str],
                exits: Sequence[str] = ()) -> dict[str, dict[str, float | None]]:
    """Row-normalised roll rates: for each ``from`` state, the share of its loans in each ``to`` state a
    month later. ``transitions`` are (from, to, loans) counts; ``to`` may also be one of ``exits`` (left
    the book). A from-state with no loans has None shares."""
    columns = [*states, *exits]
    counts: dict[str, dict[str, int]] = {s: dict.fromkeys(columns, 0) for s in states}
    for source, target, n in transitions:
        if source not in counts or target not in counts[source]:
            raise ValueError(f"unknown transition {source} → {target}")
        counts[source][target] += n
    matrix: dict[str, dict[str, float | None]] = {}
    for source, row in counts.items():
        total = sum(row.values())
        matrix[source] = {t: (n / total if total else None) for t, n in row.items()}
    return matrix


# -- ECharts options ---------------------------------------------------------------------------------


def _base(title: str, *, tooltip: str = "axis") -> dict[str, Any]:
    return {
        "title": {"text": title, "left": "center", "textStyle": {"fontSize": 14}},
        "tooltip": {"trigger": tooltip},
        "legend": {"bottom": 0, "type": "scroll"},
        "grid": {"left": 56, "right": 56, "top": 48, "bottom": 56, "containLabel": True},
        "toolbox": {"feature": {"saveAsImage": {}, "dataZoom": {}, "restore": {}}},
    }


def _axis_name(labels: Labels | None, key: str | None) -> dict[str, Any]:
    return {"name": label(labels, key), "nameLocation": "middle", "nameGap": 40} if key else {}


def category_option(*, title: str, categories: Sequence[str], series: Sequence[Mapping[str, Any]],
                    labels: Labels | None = None, y_name: str | None = None, y2_name: str | None = None,
                    x_name: str | None = None, stacked: bool = False) -> dict[str, Any]:
    """Bars and lines over categories (days, months, buckets). Each series: ``key`` (label key), ``kind``
    (``bar`` or ``line``), ``data`` (one value per category), optionally ``axis`` 1 for the right y axis
    (rates, percentiles) and ``percent`` for values shown as per cent."""
    option = _base(label(labels, title))
    option["xAxis"] = {"type": "category", "data": list(categories), **_axis_name(labels, x_name)}
    y_axes: list[dict[str, Any]] = [{"type": "value", **_axis_name(labels, y_name)}]
    if y2_name or any(s.get("axis") == 1 for s in series):
        y_axes.append({"type": "value", "splitLine": {"show": False}, **_axis_name(labels, y2_name)})
    option["yAxis"] = y_axes
    out = []
    for s in series:
        entry: dict[str, Any] = {"name": label(labels, s["key"]), "type": s.get("kind", "bar"),
                                 "data": list(s["data"])}
        if s.get("axis") == 1:
            entry["yAxisIndex"] = 1
        if stacked and entry["type"] == "bar":
            entry["stack"] = "total"
            entry["emphasis"] = {"focus": "series"}
        if entry["type"] == "line":
            entry["connectNulls"] = False
            entry["symbolSize"] = 6
        out.append(entry)
    option["series"] = out
    return option


def heatmap_option(*, title: str, rows: Sequence[str], columns: Sequence[str],
                   values: Sequence[Sequence[float | None]], labels: Labels | None = None) -> dict[str, Any]:
    """A matrix (roll rates: from-bucket rows × to-bucket columns) as a heatmap with the value in each cell,
    shares shown as per cent with one decimal."""
    option = _base(label(labels, title), tooltip="item")
    option.pop("legend")
    option["xAxis"] = {"type": "category", "data": [label(labels, c) for c in columns], "splitArea": {"show": True}}
    option["yAxis"] = {"type": "category", "data": [label(labels, r) for r in rows], "splitArea": {"show": True},
                       "inverse": True}
    data = [[x, y, None if v is None else round(v * 100, 1)]
            for y, row in enumerate(values) for x, v in enumerate(row)]
    option["visualMap"] = {"min": 0, "max": 100, "calculable": True, "orient": "horizontal", "left": "center",
                           "bottom": 0}
    option["series"] = [{"name": label(labels, title), "type": "heatmap", "data": data,
                         "label": {"show": True, "formatter": "{@[2]}%"}}]
    return option
