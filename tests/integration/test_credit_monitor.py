"""``miaodai model monitor`` over stored decisions of the default model, and early delinquency by grade."""

from __future__ import annotations

import json

import pytest

from miaodai.credit import bureau
from miaodai.credit.monitor import monitor
from miaodai.credit.registry import default_scorecard
from miaodai.demo import seed_demo
from tests.cli_support import run_cli
from tests.credit_support import applicant, apply, quick_parties
from tests.loan_support import active_loan


@pytest.fixture
def waits(container):
    seed_demo(container)
    return quick_parties(container)


def test_monitor_reports_the_day_psi_and_delinquency_by_grade(client, container, waits):
    for phone, id_number in (("13700137600", bureau.CLEAN_FILE_ID), ("13700137601", bureau.MULTI_BORROWING_ID),
                             ("13700137602", bureau.THIN_FILE_ID)):
        apply(client, applicant(client, phone, id_number))
    report = monitor(container)
    assert report["model_id"] == default_scorecard().model_id  # no champion registered: the default model
    (day,) = report["days"]
    assert day["date"] == "2026-11-22" and day["applications"] == 3
    assert day["decisions"] == {"approved": 2, "declined": 1, "review": 0}
    assert day["approval_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert sum(day["score_distribution"]) == 3
    assert day["score_psi"] > 0.25 and day["score_psi_verdict"] == "shifted"  # three applicants are no population
    assert set(day["feature_psi"]) >= {"bureau_inquiries_3m", "age"}
    assert report["early_delinquency_by_grade"] == {}


def test_booked_loans_are_counted_by_their_lines_grade(client, container, clock, waits):
    from tests.loan_support import demo_borrower

    borrower = demo_borrower(client, container)
    active_loan(client, clock, borrower)
    grades = monitor(container)["early_delinquency_by_grade"]
    assert grades == {"B": {"loans": 1, "past_due": 0, "dpd30_plus": 0, "written_off": 0, "dpd30_plus_rate": 0.0}}


def test_the_command_prints_json(client, container, waits, settings):
    apply(client, applicant(client, "13700137603", bureau.CLEAN_FILE_ID))
    result = run_cli(settings, "model", "monitor", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["days"][0]["applications"] == 1


def test_outcomes_export_labels_seasoned_and_late_loans(client, container, clock, waits, settings, tmp_path):
    """Approved applications with booked loans become training rows: late 30+ days is bad."""
    import csv
    from datetime import timedelta

    from miaodai.credit.features import FEATURE_NAMES
    from miaodai.credit.outcomes import export_outcomes
    from tests.loan_support import close_through

    good = applicant(client, "13700137700", bureau.CLEAN_FILE_ID)
    line_id = apply(client, good).json()["line"]["credit_line_id"]
    young = applicant(client, "13700137701", bureau.THIN_FILE_ID)
    apply(client, young)  # approved, never drew: no outcome
    from tests.helpers import sign_body
    from tests.payment_support import bind_card, channel_time_passes

    bind_card(client, good, "13700137700")
    body = {"line_id": line_id, "principal_fen": 300_000, "method": "equal_installment", "term_months": 3}
    loan = client.post("/v1/loans", json=body, headers={**good["headers"], "Idempotency-Key": "o-1"}).json()
    contract = client.get(f"/v1/loans/{loan['id']}/contract", headers=good["headers"])
    body = sign_body(client, clock, good, "13700137700", loan["id"], contract.headers["X-Content-SHA256"])
    client.post(f"/v1/loans/{loan['id']}/sign", json=body,
                headers={**good["headers"], "Idempotency-Key": "sign-1"})
    assert channel_time_passes(client, container, clock) == 1  # paid out to the card
    out = tmp_path / "outcomes.csv"
    assert run_cli(settings, "model", "outcomes", "--out", str(out)).exit_code == 0
    assert list(csv.DictReader(out.open())) == []  # the loan is too young to judge
    # Nothing repaid: 45 days after the first due date it is 30+ days late — bad.
    first_due = client.get(f"/v1/loans/{loan['id']}", headers=good["headers"]).json()["installments"][0]["due_date"]
    from datetime import date

    close_through(container, clock, date.fromisoformat(first_due) + timedelta(days=45))
    clock.advance(timedelta(days=1))  # (the command reads the system clock: call the service on the test clock)
    assert export_outcomes(container, out) == {"rows": 1, "bad": 1, "too_young_or_unused": 1}
    rows = list(csv.DictReader(out.open()))
    assert [(r["bad"], r["bureau_file_age_months"]) for r in rows] == [("1", "96")]
    assert set(rows[0]) == {*FEATURE_NAMES, "application_id", "bad"}
