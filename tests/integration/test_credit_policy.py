"""Changing credit policy: rulesets proposed with a backtest and activated by a second staff member,
models registered and promoted with maker-checker (the challenger scores in shadow), the backtest and
rescore commands' work, on both databases."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from miaodai.credit import bureau
from miaodai.credit.backtest import backtest
from miaodai.credit.models import BlockKind, BlockListEntry, CreditApplication
from miaodai.credit.registry import default_ruleset
from miaodai.credit.rescore import rescore
from miaodai.credit.rules import Ruleset
from miaodai.demo import seed_demo
from miaodai.identity.models import ID_NUMBER_INDEX
from miaodai.loans.models import CreditLine
from miaodai.loans.states import LineStatus
from tests.credit_support import TEST_SCORECARD, applicant, apply, install_test_model, quick_parties
from tests.helpers import assert_problem, sandbox_inbox, staff_headers

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


@pytest.fixture
def waits(container):
    seed_demo(container)
    install_test_model(container)
    return quick_parties(container)


def _strict_document() -> dict:
    """The default ruleset with at most 0 inquiries in 3 months: declines more."""
    document = copy.deepcopy(dict(default_ruleset().document))
    document["version"] = "strict-1"
    document["rules"]["inquiries_3m"]["max_3m"] = 0
    return document


def _applications(client, n_clean: int = 2) -> list[dict]:
    results = []
    for i in range(n_clean):
        who = applicant(client, f"1370013710{i}", _synthetic_id(i))
        results.append(apply(client, who).json())
    return results


def _synthetic_id(i: int) -> str:
    from stdnum.cn import ric

    body = f"33010619850{i + 1}15{100 + i:03d}"
    return body + ric.calc_check_digit(body + "0")


def test_a_ruleset_is_proposed_with_its_backtest_and_activated_by_someone_else(client, container, clock, waits):
    clean = applicant(client, "13700137100", bureau.CLEAN_FILE_ID)
    assert apply(client, clean).json()["status"] == "approved"
    heavy_id = _synthetic_id(7)
    assert bureau.synthetic_report(heavy_id).inquiries_3m > 0  # a file this strict ruleset would decline
    other = applicant(client, "13700137107", heavy_id)
    first = apply(client, other).json()
    maker = staff_headers(client, container, clock, "max.manager", ("risk_manager",))
    checker = staff_headers(client, container, clock, "mia.manager", ("risk_manager",))
    proposed = client.post("/v1/staff/credit/rulesets", json=_strict_document(), headers=maker)
    assert proposed.status_code == 201, proposed.text
    report = proposed.json()["backtest"]
    assert report["applications"] == 2 and report["baseline"] == "default-2026.12.1"
    if first["status"] == "approved":
        assert report["candidate_approval_rate"] < report["baseline_approval_rate"]
    assert_problem(client.post("/v1/staff/credit/rulesets/strict-1/approve", headers=maker), 403, "CREDIT_FOUR_EYES")
    activated = client.post("/v1/staff/credit/rulesets/strict-1/approve", headers=checker).json()
    assert activated["status"] == "active"
    assert_problem(client.post("/v1/staff/credit/rulesets/strict-1/approve", headers=checker), 409,
                   "CREDIT_RULESET_NOT_PROPOSED")
    # The next application is decided by it at once (no restart).
    late = applicant(client, "13700137108", _synthetic_id(8))
    body = apply(client, late).json()
    with container.db.transaction() as session:
        assert session.get(CreditApplication, body["id"]).ruleset_version == "strict-1"
    # A second proposal of the same version, and malformed documents, are refused.
    assert_problem(client.post("/v1/staff/credit/rulesets", json=_strict_document(), headers=maker), 409,
                   "CREDIT_RULESET_EXISTS")
    broken = _strict_document() | {"version": "broken"}
    broken["rules"]["astrology"] = {"outcome": "decline"}
    assert_problem(client.post("/v1/staff/credit/rulesets", json=broken, headers=maker), 422, "CREDIT_RULESET_INVALID")


def test_backtest_replays_stored_snapshots(client, container, waits):
    heavy = applicant(client, "13700137200", bureau.MULTI_BORROWING_ID)
    clean = applicant(client, "13700137201", bureau.CLEAN_FILE_ID)
    assert apply(client, heavy).json()["status"] == "declined"
    assert apply(client, clean).json()["status"] == "approved"
    lenient = copy.deepcopy(dict(default_ruleset().document)) | {"version": "lenient"}
    lenient["rules"]["inquiries_3m"]["max_3m"] = 20
    report = backtest(container, Ruleset.from_document(lenient))
    summary = report.summary()
    assert summary["applications"] == 2
    assert summary["baseline_decisions"] == {"declined": 1, "approved": 1}
    assert summary["candidate_decisions"] == {"approved": 2}
    assert [c["baseline"] + ">" + c["candidate"] for c in report.changed] == ["declined>approved"]
    # The active ruleset against itself changes nothing.
    assert backtest(container, default_ruleset()).changed == []


def test_a_model_goes_candidate_challenger_champion_with_two_staff_each_step(client, container, clock, waits):
    maker = staff_headers(client, container, clock, "max.manager", ("risk_manager",))
    checker = staff_headers(client, container, clock, "mia.manager", ("risk_manager",))
    artifact = json.loads(TEST_SCORECARD.read_text()) | {"model_id": "challenger-2"}
    for variable in artifact["variables"]:
        if variable["name"] == "monthly_income_yuan":
            variable["bins"][-1]["points"] = 45  # a slightly different model
    registered = client.post("/v1/staff/credit/models", json=artifact, headers=maker)
    assert registered.status_code == 201 and registered.json()["state"] == "candidate", registered.text
    assert_problem(client.post("/v1/staff/credit/models", json=artifact, headers=maker), 409, "CREDIT_MODEL_EXISTS")
    assert_problem(client.post("/v1/staff/credit/models", json={"format": "nope"}, headers=maker), 422,
                   "CREDIT_MODEL_INVALID")
    assert_problem(client.post("/v1/staff/credit/models/challenger-2/promotion", json={"target": "champion"},
                               headers=maker), 409, "CREDIT_MODEL_TRANSITION")
    client.post("/v1/staff/credit/models/challenger-2/promotion", json={"target": "challenger"}, headers=maker)
    assert_problem(client.post("/v1/staff/credit/models/challenger-2/promotion/approve", headers=maker), 403,
                   "CREDIT_FOUR_EYES")
    promoted = client.post("/v1/staff/credit/models/challenger-2/promotion/approve", headers=checker).json()
    assert promoted["state"] == "challenger"
    # The challenger now scores every application in shadow; the champion decides.
    body = apply(client, applicant(client, "13700137300", bureau.CLEAN_FILE_ID)).json()
    with container.db.transaction() as session:
        row = session.get(CreditApplication, body["id"])
        assert (row.model_id, row.challenger_model_id) == ("test-scorecard-1", "challenger-2")
        assert row.challenger_score == row.score - 10
    # Champion: the old one retires.
    client.post("/v1/staff/credit/models/challenger-2/promotion", json={"target": "champion"}, headers=checker)
    client.post("/v1/staff/credit/models/challenger-2/promotion/approve", headers=maker)
    states = {m["model_id"]: m["state"] for m in client.get("/v1/staff/credit/models", headers=maker).json()}
    assert states == {"challenger-2": "champion", "test-scorecard-1": "retired"}


def test_rescore_raises_freezes_and_tells_the_borrower(client, container, clock, waits):
    good = applicant(client, "13700137400", bureau.CLEAN_FILE_ID)
    line = apply(client, good, monthly_income_fen=300_000).json()["line"]  # 3,000 yuan: a small line
    assert line["limit_fen"] < 5_000_000
    with container.db.transaction() as session:  # the borrower's income was understated; the file is clean
        row = session.execute(select(CreditApplication)).scalars().first()
        snapshot = json.loads(container.vault.decrypt(row.snapshot_enc, "credit.snapshot"))
        snapshot["application"]["monthly_income_fen"] = 2_000_000
        row.snapshot_enc = container.vault.encrypt(json.dumps(snapshot), "credit.snapshot")
    clock.advance(timedelta(days=90))
    report = rescore(container)
    assert report.counts["raised"] == 1
    with container.db.transaction() as session:
        raised = session.get(CreditLine, line["credit_line_id"])
        assert raised.limit_fen > line["limit_fen"] and raised.available_fen == raised.limit_fen
    assert "raised" in sandbox_inbox(client, "13700137400")[0]["text"]
    # A second run with nothing new changes nothing.
    again = rescore(container).counts
    assert again["unchanged"] == 1 and again["raised"] == 0


def test_rescore_freezes_a_blocked_borrower_and_skips_what_it_cannot_judge(client, container, clock, waits):
    who = applicant(client, "13700137500", bureau.CLEAN_FILE_ID)
    line_id = apply(client, who).json()["line"]["credit_line_id"]
    counts = rescore(container).counts
    # The demo borrowers' lines were granted by staff (no application on file): left alone.
    assert (counts["skipped_no_application"], counts["unchanged"]) == (2, 1)
    with container.db.transaction() as session:
        session.add(BlockListEntry(kind=BlockKind.ID_NUMBER, value_bidx=container.vault.blind_index(
            bureau.CLEAN_FILE_ID, ID_NUMBER_INDEX), reason="confirmed fraud report", added_by="system:test",
            created_at=container.clock.now()))
    frozen = rescore(container)
    assert frozen.counts["frozen"] == 1 and frozen.changes[0]["codes"] == ["CREDIT_POLICY_NOT_MET"]
    with container.db.transaction() as session:
        assert session.get(CreditLine, line_id).status is LineStatus.FROZEN
    assert "paused" in sandbox_inbox(client, "13700137500")[0]["text"]
    # Without the bureau-query consent there is no fresh report: nothing is changed on a guess.
    other = applicant(client, "13700137501", _synthetic_id(2))
    assert apply(client, other).json()["status"] == "approved"
    client.delete("/v1/consents/credit_bureau_query", headers=other["headers"])
    assert rescore(container).counts["skipped_no_bureau_consent"] == 1
