"""Credit applications end to end on both databases: approve, decline for each policy reason, refer to
review, bureau timeout and error, a borrower's request for a human review, and overrides with
maker-checker — every decision stored with its snapshot and audited."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from miaodai.core.audit import AuditEntry
from miaodai.credit import bureau
from miaodai.credit.carrier_data import CARRIER_DATA_TIMEOUT_PHONE, SHORT_TENURE_PHONE
from miaodai.credit.features import FEATURE_NAMES
from miaodai.credit.models import SNAPSHOT_FIELD, BlockKind, BlockListEntry, CreditApplication, ReviewCase
from miaodai.demo import seed_demo
from miaodai.identity.models import DEVICE_INDEX
from miaodai.loans.models import CreditLine
from tests.credit_support import GOOD_FORM, applicant, apply, install_test_model, quick_parties
from tests.helpers import assert_problem, sandbox_inbox, staff_headers

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")

PHONE = "13700137001"
OTHER_ID = "110101199003070038"


@pytest.fixture
def waits(container):
    seed_demo(container)  # the demo product, which applications default to
    install_test_model(container)
    return quick_parties(container)


def _stored(container, application_id: int) -> tuple[CreditApplication, dict]:
    with container.db.transaction() as session:
        row = session.get(CreditApplication, application_id)
        session.expunge(row)
    return row, json.loads(container.vault.decrypt(row.snapshot_enc, SNAPSHOT_FIELD))


def _codes(body: dict) -> list[str]:
    return [r["code"] for r in body["reasons"]]


def test_a_thin_file_is_approved_with_a_starter_line(client, container, waits):
    # No bureau history: the score rests on the application alone, so the line starts small (the
    # ruleset's thin_file_max_fen) and grows through re-scoring as the borrower repays with us.
    who = applicant(client, PHONE, bureau.THIN_FILE_ID)
    body = apply(client, who, monthly_income_fen=5_000_000).json()
    assert body["status"] == "approved" and body["line"]["limit_fen"] == 5_000_00
    _, snapshot = _stored(container, body["id"])
    assert snapshot["features"]["bureau_file_age_months"] is None


def test_a_clean_applicant_is_approved_with_a_line_in_the_same_request(client, container, waits):
    who = applicant(client, PHONE, bureau.CLEAN_FILE_ID)
    response = apply(client, who)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "approved" and body["decision"] == "approved" and body["reasons"] == []
    line = body["line"]
    assert line["grade"] in "ABC" and line["limit_fen"] >= 500_00 and line["limit_fen"] % 100_00 == 0
    assert 0.072 <= float(line["annual_rate"]) <= 0.18
    lines = client.get("/v1/credit-lines", headers=who["headers"]).json()
    assert [(x["id"], x["limit_fen"], x["available_fen"]) for x in lines] == [
        (line["credit_line_id"], line["limit_fen"], line["limit_fen"])]
    row, snapshot = _stored(container, body["id"])
    assert tuple(snapshot["features"]) == FEATURE_NAMES
    assert snapshot["features"]["bureau_file_age_months"] == 96 and snapshot["facts"]["bureau_status"] == "ok"
    assert row.ruleset_version == "default-2026.12.1" and row.model_id == "test-scorecard-1" and row.model_sha256
    assert row.score is not None and row.pd is not None and row.grade == line["grade"]
    assert set(json.loads(row.timings)) >= {"read_ms", "bureau_ms", "decide_ms", "store_ms", "total_ms"}
    assert "王小明" not in row.snapshot_enc  # the snapshot is encrypted at rest
    with container.db.transaction() as session:
        audit = session.execute(
            select(AuditEntry).where(AuditEntry.subject == f"credit_application:{row.id}")).scalar_one()
        granted = session.get(CreditLine, line["credit_line_id"])
    assert audit.action == "credit.decision.approved"
    assert json.loads(audit.body)["details"]["credit_line_id"] == row.credit_line_id == granted.id
    assert granted.source == f"credit:application:{row.id}" and granted.version == 1 and granted.risk_grade == row.grade
    # A second application while the line is open is refused before the bureau, nothing stored: use the line.
    assert_problem(apply(client, who), 409, "CREDIT_TOO_MANY_LINES")
    assert len(client.get("/v1/credit/applications", headers=who["headers"]).json()) == 1


@pytest.mark.parametrize(("id_number", "form", "code"), [
    (bureau.CURRENT_OVERDUE_ID, {}, "CREDIT_BUREAU_CURRENT_OVERDUE"),
    (bureau.WRITTEN_OFF_ID, {}, "CREDIT_BUREAU_WRITTEN_OFF"),
    (bureau.FRAUD_LIST_ID, {}, "CREDIT_POLICY_NOT_MET"),
    (bureau.MULTI_BORROWING_ID, {}, "CREDIT_TOO_MANY_INQUIRIES"),
    (bureau.CLEAN_FILE_ID, {"occupation": "student"}, "CREDIT_STUDENT"),
    (bureau.CLEAN_FILE_ID, {"monthly_income_fen": 1_200_00}, "CREDIT_DEBT_TO_INCOME_HIGH"),
])
def test_each_policy_decline_has_its_reason_tips_and_a_reapply_date(client, container, waits, id_number, form, code):
    who = applicant(client, PHONE, id_number)
    body = apply(client, who, **form).json()
    assert body["status"] == "declined" and body["line"] is None
    assert _codes(body)[0] == code
    first = body["reasons"][0]
    assert first["message_zh"] and first["message_en"] and "{" not in first["message_en"]
    assert body["reapply_on"] == "2026-12-22"  # 30 days of cooling-off from 2026-11-22
    assert client.get("/v1/credit-lines", headers=who["headers"]).json() == []
    # Applying again inside the cooling-off period is refused for that, with the same date, nothing stored.
    again = assert_problem(apply(client, who), 409, "CREDIT_COOLING_OFF")
    assert again["params"] == {"reapply_on": "2026-12-22"}
    assert len(client.get("/v1/credit/applications", headers=who["headers"]).json()) == 1


def test_tips_say_what_to_improve(client, container, waits):
    body = apply(client, applicant(client, PHONE, bureau.MULTI_BORROWING_ID)).json()
    assert body["reasons"][0]["message_en"] == (
        "Lenders queried your credit 9 times in the last 3 months, more than our limit of 6.")
    assert body["reasons"][0]["tip_en"] == "Apply to fewer lenders in a short time."
    # the scorecard's "many applications lately" is not told again; what else the score found still is
    assert not [c for c in _codes(body) if c.startswith("SCORE_bureau_inquiries")]
    assert [c for c in _codes(body) if c.startswith("SCORE_")]
    staff_see = json.loads(_stored(container, body["id"])[0].score_reasons)  # the stored decision keeps them all
    assert "bureau_inquiries_3m" in [r["variable"] for r in staff_see]


def test_a_blocked_device_is_declined_without_saying_which_list(client, container, waits):
    with container.db.transaction() as session:
        bidx = container.vault.blind_index("bad-phone", DEVICE_INDEX)
        session.add(BlockListEntry(kind=BlockKind.DEVICE, value_bidx=bidx, reason="test", added_by="system:test",
                                   created_at=container.clock.now()))
    body = apply(client, applicant(client, PHONE, bureau.CLEAN_FILE_ID, device="bad-phone")).json()
    assert body["status"] == "declined" and _codes(body)[0] == "CREDIT_POLICY_NOT_MET"
    row, snapshot = _stored(container, body["id"])
    assert snapshot["facts"]["blocked_on"] == ["device"]  # staff can see why


def test_a_short_phone_tenure_is_referred_to_review(client, container, waits):
    who = applicant(client, SHORT_TENURE_PHONE, bureau.CLEAN_FILE_ID)
    body = apply(client, who).json()
    assert body["status"] == "in_review" and body["decision"] == "review"
    assert _codes(body) == ["CREDIT_PHONE_TENURE_SHORT"] and "review" in body["next_step_en"]
    with container.db.transaction() as session:
        case = session.execute(select(ReviewCase).where(ReviewCase.application_id == body["id"])).scalar_one()
    assert (case.kind.value, case.status.value, case.recommendation) == ("referred", "open", "approve")


@pytest.mark.parametrize("id_number", [bureau.BUREAU_TIMEOUT_ID, bureau.BUREAU_ERROR_ID])
def test_without_the_bureau_there_is_no_blind_approval(client, container, waits, id_number):
    who = applicant(client, PHONE, id_number)
    waits.clear()
    body = apply(client, who).json()
    assert body["status"] == "in_review" and body["line"] is None
    assert _codes(body) == ["CREDIT_BUREAU_UNAVAILABLE"]
    row, snapshot = _stored(container, body["id"])
    assert row.bureau_status == ("timeout" if id_number == bureau.BUREAU_TIMEOUT_ID else "error")
    assert snapshot["features"]["bureau_inquiries_3m"] is None
    if id_number == bureau.BUREAU_TIMEOUT_ID:
        assert container.settings.provider_timeout_seconds in waits  # it really waited for the bureau


def test_carrier_data_timeout_leaves_tenure_unknown_and_decides_on_the_rest(client, container, waits):
    body = apply(client, applicant(client, CARRIER_DATA_TIMEOUT_PHONE, bureau.CLEAN_FILE_ID)).json()
    assert body["status"] == "approved"
    _, snapshot = _stored(container, body["id"])
    assert snapshot["features"]["phone_tenure_months"] is None and snapshot["carrier_status"] == "timeout"


def test_without_carrier_consent_carrier_data_is_not_fetched(client, container, waits):
    who = applicant(client, PHONE, bureau.CLEAN_FILE_ID)
    assert client.delete("/v1/consents/carrier_data", headers=who["headers"]).status_code == 200
    body = apply(client, who).json()
    _, snapshot = _stored(container, body["id"])
    assert snapshot["carrier_status"] == "not_queried" and snapshot["features"]["phone_tenure_months"] is None


def test_an_unverified_borrower_or_missing_bureau_consent_cannot_apply(client, container, waits):
    from tests.helpers import login

    fresh = login(client, "13700137002")
    assert_problem(apply(client, fresh), 403, "CREDIT_IDENTITY_REQUIRED")
    who = applicant(client, PHONE, bureau.CLEAN_FILE_ID,
                    consents=("privacy_policy", "user_agreement", "carrier_data"))
    problem = assert_problem(apply(client, who), 403, "CONSENT_REQUIRED")
    assert "credit_bureau_query" in json.dumps(problem)


@pytest.mark.parametrize(("form", "status"), [
    ({"monthly_income_fen": 0}, 422), ({"occupation": "astronaut"}, 422), ({"product_code": "NOPE"}, 404),
    ({"extra": 1}, 422),
])
def test_bad_input_is_a_clear_error(client, container, waits, form, status):
    who = applicant(client, PHONE, bureau.CLEAN_FILE_ID)
    response = apply(client, who, **form)
    assert response.status_code == status and response.json()["code"]


def test_a_borrower_asks_for_a_human_review_of_a_decline(client, container, clock, waits):
    who = applicant(client, PHONE, bureau.MULTI_BORROWING_ID)
    declined = apply(client, who).json()
    asked = client.post(f"/v1/credit/applications/{declined['id']}/human-review", json={"note": "I repaid them"},
                        headers=who["headers"])
    assert asked.status_code == 201, asked.text
    assert asked.json()["kind"] == "human_review_request"
    assert client.get(f"/v1/credit/applications/{declined['id']}", headers=who["headers"]).json()["status"] == (
        "in_review")
    assert_problem(client.post(f"/v1/credit/applications/{declined['id']}/human-review", json={},
                               headers=who["headers"]), 409, "CREDIT_REVIEW_ALREADY_REQUESTED")
    # Someone else's application is not there at all.
    other = applicant(client, "13700137003", OTHER_ID)
    assert_problem(client.post(f"/v1/credit/applications/{declined['id']}/human-review", json={},
                               headers=other["headers"]), 404, "CREDIT_APPLICATION_NOT_FOUND")
    # The reviewer upholds it (following the recommendation: no second approver needed).
    reviewer = staff_headers(client, container, clock, "rita.reviewer", ("risk_reviewer",))
    queue = client.get("/v1/staff/credit/review-cases", headers=reviewer).json()
    assert [c["application_id"] for c in queue] == [declined["id"]]
    clock.advance(timedelta(minutes=5))
    detail = client.get(f"/v1/staff/credit/review-cases/{queue[0]['id']}", headers=reviewer).json()
    assert detail["borrower"]["name"] == "王**" and "*" in detail["borrower"]["id_number"]
    assert detail["bureau"]["bureau_inquiries_3m"] == 9 and detail["age_seconds"] >= 300
    assert detail["borrower_note"] == "I repaid them"
    decided = client.post(f"/v1/staff/credit/review-cases/{queue[0]['id']}/decision",
                          json={"outcome": "decline", "reason": "nine inquiries is nine inquiries"}, headers=reviewer)
    assert decided.status_code == 200 and decided.json()["status"] == "decided", decided.text
    final = client.get(f"/v1/credit/applications/{declined['id']}", headers=who["headers"]).json()
    assert final["status"] == "declined"
    assert "not approved after review" in sandbox_inbox(client, PHONE)[0]["text"]


def test_a_review_request_is_only_for_declines(client, container, waits):
    who = applicant(client, PHONE, bureau.CLEAN_FILE_ID)
    approved = apply(client, who).json()
    assert_problem(client.post(f"/v1/credit/applications/{approved['id']}/human-review", json={},
                               headers=who["headers"]), 409, "CREDIT_REVIEW_NOT_APPLICABLE")


def test_an_override_needs_a_second_approver(client, container, clock, waits):
    who = applicant(client, PHONE, bureau.MULTI_BORROWING_ID)
    declined = apply(client, who).json()
    client.post(f"/v1/credit/applications/{declined['id']}/human-review", json={}, headers=who["headers"])
    reviewer = staff_headers(client, container, clock, "rita.reviewer", ("risk_reviewer",))
    manager = staff_headers(client, container, clock, "max.manager", ("risk_manager",))
    case_id = client.get("/v1/staff/credit/review-cases", headers=reviewer).json()[0]["id"]
    decided = client.post(f"/v1/staff/credit/review-cases/{case_id}/decision",
                          json={"outcome": "approve", "reason": "inquiries were one mortgage shopping",
                                "limit_fen": 1_000_000}, headers=reviewer).json()
    assert decided["status"] == "awaiting_second" and decided["outcome"] == "approve"
    assert client.get("/v1/credit-lines", headers=who["headers"]).json() == []  # nothing yet
    # The reviewer cannot approve their own override (and lacks the permission anyway).
    assert_problem(client.post(f"/v1/staff/credit/review-cases/{case_id}/second-approval", json={"approve": True},
                               headers=reviewer), 403, "STAFF_PERMISSION_DENIED")
    approved = client.post(f"/v1/staff/credit/review-cases/{case_id}/second-approval",
                           json={"approve": True, "note": "agreed"}, headers=manager)
    assert approved.status_code == 200 and approved.json()["status"] == "decided", approved.text
    lines = client.get("/v1/credit-lines", headers=who["headers"]).json()
    assert [x["limit_fen"] for x in lines] == [1_000_000]
    final = client.get(f"/v1/credit/applications/{declined['id']}", headers=who["headers"]).json()
    assert final["status"] == "approved" and final["line"]["limit_fen"] == 1_000_000
    assert "approved after review" in sandbox_inbox(client, PHONE)[0]["text"]
    with container.db.transaction() as session:
        actions = [e.action for e in session.execute(
            select(AuditEntry).where(AuditEntry.subject == f"credit_review_case:{case_id}")
            .order_by(AuditEntry.id)).scalars()]
    assert actions == ["credit.review.decided", "credit.review.override_approved"]
    # A decided case cannot be decided again.
    assert_problem(client.post(f"/v1/staff/credit/review-cases/{case_id}/decision",
                               json={"outcome": "decline", "reason": "changed my mind"}, headers=manager),
                   409, "CREDIT_CASE_CLOSED")


def test_a_manager_cannot_check_their_own_override(client, container, clock, waits):
    who = applicant(client, SHORT_TENURE_PHONE, bureau.CLEAN_FILE_ID)
    referred = apply(client, who).json()
    manager = staff_headers(client, container, clock, "max.manager", ("risk_manager",))
    case_id = client.get("/v1/staff/credit/review-cases", headers=manager).json()[0]["id"]
    assert referred["status"] == "in_review"
    client.post(f"/v1/staff/credit/review-cases/{case_id}/decision",
                json={"outcome": "decline", "reason": "new SIM, no history"}, headers=manager)
    assert_problem(client.post(f"/v1/staff/credit/review-cases/{case_id}/second-approval", json={"approve": True},
                               headers=manager), 403, "CREDIT_FOUR_EYES")
    # Rejected by a second manager: back in the queue for a fresh decision.
    other = staff_headers(client, container, clock, "mia.manager", ("risk_manager",))
    back = client.post(f"/v1/staff/credit/review-cases/{case_id}/second-approval",
                       json={"approve": False, "note": "tenure alone is not enough"}, headers=other).json()
    assert back["status"] == "open" and back["outcome"] is None
    followed = client.post(f"/v1/staff/credit/review-cases/{case_id}/decision",
                           json={"outcome": "approve", "reason": "clean file, tenure only"}, headers=other).json()
    assert followed["status"] == "decided"
    assert client.get(f"/v1/credit/applications/{referred['id']}", headers=who["headers"]).json()["status"] == (
        "approved")


def test_an_application_without_a_live_session_is_refused_and_nothing_is_stored(client, container, waits):
    # The endpoint checks its token in the same hand-off as the decision: no token is refused before the
    # body is looked at; a wrong or revoked token with a well-formed body is refused before any decision.
    who = applicant(client, PHONE, bureau.CLEAN_FILE_ID)
    assert_problem(client.post("/v1/credit/applications", json={"monthly_income_fen": "lots"}), 401,
                   "UNAUTHENTICATED")
    wrong = {**who["headers"], "Authorization": "Bearer md_not-a-session"}
    assert_problem(client.post("/v1/credit/applications", json=GOOD_FORM, headers=wrong), 401, "UNAUTHENTICATED")
    assert client.post("/v1/auth/logout", headers=who["headers"]).status_code in (200, 204)
    assert_problem(apply(client, who), 401, "UNAUTHENTICATED")
    with container.db.transaction() as session:
        assert session.execute(select(CreditApplication.id)).first() is None
