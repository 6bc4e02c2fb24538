"""The dashboards' pure parts: percentiles from value counts, the roll-rate matrix, CSV, chart options."""

from __future__ import annotations

import math
from datetime import date

import pytest

from miaodai.core.charts import Filters, Table, category_option, heatmap_option, percentile, percentiles, roll_matrix
from miaodai.credit.monitor import psi


def test_percentiles_by_nearest_rank_from_counts() -> None:
    # 100 observations: 1 ms ×50, 2 ms ×40, 9 ms ×9, 500 ms ×1.
    counts = [(9, 9), (1, 50), (500, 1), (2, 40)]
    # p50: the 50th value is the last 1; p90: the 90th is the last 2; p99: the 99th is the last 9; max: 500.
    assert percentiles(counts, (0.5, 0.9, 0.99, 1)) == [1, 2, 9, 500]
    assert percentile(counts, 0.51) == 2
    assert percentile([(7, 1)], 0.99) == 7
    assert percentiles([], (0.5, 0.99)) == [None, None]
    assert percentile([(3, 0)], 0.5) is None  # a value nobody had


def test_the_rank_is_exact_where_floats_are_not() -> None:
    # 0.07 × 100 is 7.000000000000001 in floats, whose ceiling is 8; the rank is 7: the 7th value (1).
    assert percentile([(1, 7), (2, 93)], 0.07) == 1
    assert percentile([(1, 57), (2, 43)], 0.57) == 1  # 56.99999999999999: still the 57th


@pytest.mark.parametrize("q", [0, -0.1, 1.5])
def test_a_quantile_outside_0_1_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        percentile([(1, 1)], q)


def test_roll_matrix_is_row_normalised_with_exits() -> None:
    matrix = roll_matrix([("current", "current", 90), ("current", "M1", 6), ("current", "closed", 4),
                          ("M1", "current", 1), ("M1", "M2", 3)], ("current", "M1", "M2"), exits=("closed",))
    assert matrix["current"] == {"current": 0.9, "M1": 0.06, "M2": 0.0, "closed": 0.04}
    assert matrix["M1"] == {"current": 0.25, "M1": 0.0, "M2": 0.75, "closed": 0.0}
    assert matrix["M2"] == {"current": None, "M1": None, "M2": None, "closed": None}
    with pytest.raises(ValueError, match="unknown transition"):
        roll_matrix([("M9", "current", 1)], ("current",))


def test_psi_of_a_known_distribution_by_hand() -> None:
    # Training 25/25/50 %; 40 observations 10/10/20 smoothed by ½ each: shares 10.5/41.5, 10.5/41.5, 20.5/41.5.
    actual = [10.5 / 41.5, 10.5 / 41.5, 20.5 / 41.5]
    expected = [0.25, 0.25, 0.5]
    by_hand = sum((a - e) * math.log(a / e) for a, e in zip(actual, expected, strict=True))
    assert psi(expected, [10, 10, 20]) == pytest.approx(by_hand, rel=1e-12)
    # (0.003012 × 0.011976) × 2 + 0.006024 × 0.012121 = 7.214e-5 + 7.302e-5
    assert by_hand == pytest.approx(0.00014517, abs=1e-8)


def test_a_table_as_csv_with_labels() -> None:
    table = Table(("day", "fen", "rate", "code"), [(date(2026, 11, 20), 12345, 0.5, "A,B"), (date(2026, 11, 21), 0,
                                                                                               None, "")])
    text = table.to_csv({"day": "日期", "fen": "金额（分）"})
    assert text == '日期,金额（分）,rate,code\r\n2026-11-20,12345,0.5,"A,B"\r\n2026-11-21,0,,\r\n'
    assert table.column("fen") == [12345, 0]
    assert table.as_dicts()[0]["code"] == "A,B"


def test_filters_refuse_a_range_that_ends_before_it_starts() -> None:
    assert Filters(date(2026, 11, 29), date(2026, 12, 1)).days() == [date(2026, 11, 29), date(2026, 11, 30),
                                                                     date(2026, 12, 1)]
    with pytest.raises(ValueError, match="ends before it starts"):
        Filters(date(2026, 12, 2), date(2026, 12, 1))


def test_category_option_series_axes_and_labels() -> None:
    option = category_option(title="t", categories=["a", "b"], labels={"t": "标题", "n": "笔数", "r": "比率"},
                             y_name="n", y2_name="r", stacked=True,
                             series=[{"key": "n", "data": [1, 2]}, {"key": "r", "kind": "line", "axis": 1,
                                                                   "data": [50.0, None]}])
    assert option["title"]["text"] == "标题"
    assert option["xAxis"]["data"] == ["a", "b"]
    assert [a.get("name") for a in option["yAxis"]] == ["笔数", "比率"]
    assert option["series"] == [
        {"name": "笔数", "type": "bar", "data": [1, 2], "stack": "total", "emphasis": {"focus": "series"}},
        {"name": "比率", "type": "line", "data": [50.0, None], "yAxisIndex": 1, "connectNulls": False,
         "symbolSize": 6}]


def test_heatmap_cells_are_per_cent() -> None:
    option = heatmap_option(title="roll", rows=["current"], columns=["current", "M1"], values=[[0.9, None]])
    assert option["series"][0]["data"] == [[0, 0, 90.0], [1, 0, None]]
    assert option["yAxis"]["data"] == ["current"] and option["xAxis"]["data"] == ["current", "M1"]
