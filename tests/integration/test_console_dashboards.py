"""The dashboards desk: each board renders its charts' options and tables from the SQL aggregates, filters by
date and product, and downloads each table as CSV; only report.read opens it."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape

import pytest

from miaodai.demo import seed_demo
from tests.console_support import console_as
from tests.credit_support import applicant, apply
from tests.loan_support import active_loan, demo_borrower

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


def _options(page: str) -> dict[str, dict]:
    """Each chart's ECharts option, by panel, as the page embeds it."""
    found = re.findall(r'data-option="([^"]*)" data-testid="chart-([a-z_]+)"', page)
    return {key: json.loads(unescape(raw)) for raw, key in found}


def test_each_board_draws_its_charts_and_the_origination_counts_are_the_applications(client, container, clock):
    seed_demo(container)  # the demo product the applications ask for
    for phone, id_number in (("13912345678", "110101199003089038"), ("13700137601", "110101199003070054")):
        apply(client, applicant(client, phone, id_number))
    web = console_as(client, container, clock, "rm.dash", ("risk_manager",))
    origination = web.get("/console/dashboards/origination")
    assert origination.status_code == 200
    options = _options(origination.text)
    assert set(options) == {"applications_by_day", "decline_reasons", "decision_time", "score_distribution"}
    series = {s["name"]: s["data"] for s in options["applications_by_day"]["series"]}
    decided = sum(sum(v or 0 for v in series[name]) for name in ("通过", "拒绝", "人工审核"))
    assert decided == 2  # the two applications of the test, by their automated decision
    for board, keys in (("portfolio", {"book_by_bucket", "vintage_curves", "roll_rates", "early_and_write_offs"}),
                        ("money", {"orders_by_state", "open_orders", "callback_lag", "recon_open"})):
        page = web.get(f"/console/dashboards/{board}")
        assert page.status_code == 200 and set(_options(page.text)) == keys
    english = web.get("/console/dashboards/origination?lang=en")
    assert {"Approved", "Declined", "Review"} <= {
        s["name"] for s in _options(english.text)["applications_by_day"]["series"]}


def test_a_table_downloads_as_csv_with_the_filters_in_its_name(client, container, clock):
    seed_demo(container)
    apply(client, applicant(client, "13912345678", "110101199003089038"))
    web = console_as(client, container, clock, "rm.csv", ("risk_manager",))
    day = clock.now().date().isoformat()
    answer = web.get(f"/console/dashboards/origination/applications_by_day.csv?since={day}&until={day}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert f"-{day}-{day}.csv" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    # For analysis: the stable column keys whatever the reader's language, then the raw values.
    assert rows[0] == ["day", "applications", "approved", "declined", "review", "approval_rate"]
    assert len(rows) == 2 and rows[1][0] == day and rows[1][1] == "1"
    english = web.get(f"/console/dashboards/origination/applications_by_day.csv?since={day}&until={day}&lang=en")
    assert english.content == answer.content
    assert web.get("/console/dashboards/origination/nope.csv").status_code == 404
    backwards = web.get(f"/console/dashboards/origination?since={day}&until=2020-01-01")
    assert 'data-code="VALIDATION_FAILED"' in backwards.text


def test_a_collections_agent_does_not_see_the_dashboards(client, container, clock):
    web = console_as(client, container, clock, "col.agent", ("collections",))
    assert web.get("/console/dashboards").status_code == 403
    assert "/console/dashboards" not in web.get("/console").text


def _table(page: str, panel: str) -> tuple[list[str], list[list[str]]]:
    """A panel's table on the page: its headings and its rows of cell texts."""
    section = page.split(f'data-testid="panel-{panel}"', 1)[1].split("</section>", 1)[0]
    headings = [unescape(h) for h in re.findall(r"<th[^>]*>([^<]*)</th>", section)]
    rows = [[unescape(c) for c in re.findall(r"<td[^>]*>([^<]*)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>", 1)[1])]
    return headings, rows


def test_a_table_on_the_page_has_words_for_headings_and_amounts_in_yuan(client, container, clock):
    active_loan(client, clock, demo_borrower(client, container), principal_fen=1_234_500)  # its payout order
    web = console_as(client, container, clock, "rm.table", ("risk_manager",))
    headings, rows = _table(web.get("/console/dashboards/money").text, "orders_by_state")
    assert headings == ["类型", "状态", "订单时长", "订单数", "订单金额（元）"]
    assert rows == [["代付（放款）", "成功", "已完成", "1", "¥12,345.00"]]
    headings, rows = _table(web.get("/console/dashboards/money?lang=en").text, "orders_by_state")
    assert headings == ["Kind", "State", "Age of the order", "Orders", "Order amount (yuan)"]
    assert rows == [["Payouts", "Succeeded", "Final", "1", "¥12,345.00"]]
