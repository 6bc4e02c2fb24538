"""Consents over HTTP: read the documents, agree to each separately, revoke, re-consent to a
new version; and later steps refusing to go on without them. Both databases."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from miaodai.core.audit import AuditEntry
from miaodai.core.errors import DomainError
from miaodai.identity.consent_service import in_force, require_consents, standings
from miaodai.identity.models import Consent, ConsentDocument, ConsentKind
from tests.helpers import assert_problem, login

KINDS = ["carrier_data", "credit_bureau_query", "privacy_policy", "user_agreement"]


@pytest.fixture
def who(client) -> dict:
    return login(client, "13800138000", device="device-consents-1")


def grant(client, who, kind, version="1.0"):
    return client.post("/v1/consents", json={"kind": kind, "version": version}, headers=who["headers"])


def publish(container, kind: str, version: str, effective_at) -> None:
    """A content release: a new version of a document (in production, a migration)."""
    body = f"{kind} {version}: revised text / 修订文本"
    with container.db.transaction() as session:
        session.add(ConsentDocument(
            kind=ConsentKind(kind), version=version, title_zh="隐私政策", title_en="Privacy policy", body=body,
            body_sha256=hashlib.sha256(body.encode()).hexdigest(), effective_at=effective_at,
        ))


def consent_audit(container) -> list[AuditEntry]:
    with container.db.transaction() as session:
        stmt = select(AuditEntry).where(AuditEntry.action.startswith("consent.")).order_by(AuditEntry.id)
        return list(session.execute(stmt).scalars())


def test_anyone_can_list_the_documents_and_a_borrower_can_read_one(client, who):
    listing = client.get("/v1/consent-documents")
    assert listing.status_code == 200
    documents = listing.json()
    assert [d["kind"] for d in documents] == KINDS
    assert all(d["version"] == "1.0" and d["current"] for d in documents)
    assert {d["title_zh"] for d in documents} == {"隐私政策", "用户服务协议", "征信查询授权书", "运营商信息授权书"}

    document = client.get("/v1/consent-documents/privacy_policy/1.0", headers=who["headers"]).json()
    assert document["title_en"] == "Privacy policy" and "隐私政策" in document["body"]
    assert document["body_sha256"] == hashlib.sha256(document["body"].encode()).hexdigest()
    # Readable before logging in, as a privacy policy must be.
    assert client.get("/v1/consent-documents/privacy_policy/1.0").json() == document


def test_unknown_documents_and_versions_are_clear_problems(client, who):
    problem = assert_problem(client.get("/v1/consent-documents/marketing/1.0", headers=who["headers"]), 404,
                             "CONSENT_UNKNOWN_KIND")
    assert "privacy_policy" in problem["action"]["en"]
    problem = assert_problem(client.get("/v1/consent-documents/privacy_policy/9.9", headers=who["headers"]), 404,
                             "CONSENT_DOCUMENT_NOT_FOUND")
    assert problem["params"]["current_version"] == "1.0"
    problem = assert_problem(grant(client, who, "privacy_policy", "9.9"), 422, "CONSENT_VERSION_UNKNOWN")
    assert "1.0" in problem["action"]["zh"]
    assert_problem(grant(client, who, "marketing"), 422, "VALIDATION_FAILED")
    extra = client.post("/v1/consents", json={"kind": "privacy_policy", "version": "1.0", "all": True},
                        headers=who["headers"])
    assert_problem(extra, 422, "VALIDATION_FAILED")
    assert_problem(client.delete("/v1/consents/marketing", headers=who["headers"]), 404, "CONSENT_UNKNOWN_KIND")
    assert_problem(client.post("/v1/consents", json={"kind": "privacy_policy", "version": "1.0"}), 401,
                   "UNAUTHENTICATED")


def test_each_document_is_granted_separately_with_time_version_and_device(client, container, clock, who):
    before = client.get("/v1/consents", headers=who["headers"]).json()
    assert before["in_force"] == [] and before["history"] == []
    assert {m["kind"]: m["reason"] for m in before["missing"]} == dict.fromkeys(KINDS, "never_granted")

    response = grant(client, who, "privacy_policy")
    assert response.status_code == 201
    granted = response.json()
    assert granted["version"] == "1.0" and granted["in_force"] and granted["revoked_at"] is None
    assert granted["granted_at"] == "2026-11-22T02:00:00Z"
    assert granted["device_id"] == who["body"]["device_id"]

    clock.advance(timedelta(minutes=1))
    assert grant(client, who, "carrier_data").status_code == 201
    again = grant(client, who, "privacy_policy")  # a retried tap: the same grant, not a second one
    assert again.status_code == 200 and again.json()["id"] == granted["id"]

    now = client.get("/v1/consents", headers=who["headers"]).json()
    assert sorted(c["kind"] for c in now["in_force"]) == ["carrier_data", "privacy_policy"]
    assert sorted(m["kind"] for m in now["missing"]) == ["credit_bureau_query", "user_agreement"]
    assert [c["kind"] for c in now["history"]] == ["privacy_policy", "carrier_data"]
    entries = consent_audit(container)
    assert [e.action for e in entries] == ["consent.granted", "consent.granted"]
    assert '"kind":"privacy_policy"' in entries[0].body and '"version":"1.0"' in entries[0].body


def test_a_revoked_consent_is_no_longer_in_force_but_stays_in_the_history(client, container, clock, who):
    first = grant(client, who, "credit_bureau_query").json()
    clock.advance(timedelta(hours=1))
    response = client.delete("/v1/consents/credit_bureau_query", headers=who["headers"])
    assert response.status_code == 200
    overview = response.json()
    assert overview["in_force"] == []
    assert {"kind": "credit_bureau_query", "current_version": "1.0", "reason": "revoked"} in overview["missing"]
    assert overview["history"] == [{**first, "revoked_at": "2026-11-22T03:00:00Z", "in_force": False}]
    assert_problem(client.delete("/v1/consents/credit_bureau_query", headers=who["headers"]), 404,
                   "CONSENT_NOT_GRANTED")

    regranted = grant(client, who, "credit_bureau_query")  # agreeing again is a new grant
    assert regranted.status_code == 201 and regranted.json()["id"] != first["id"]
    assert [e.action for e in consent_audit(container)] == ["consent.granted", "consent.revoked", "consent.granted"]
    with container.db.transaction() as session:
        assert len(session.execute(select(Consent)).all()) == 2  # grants are never deleted


def test_a_newer_version_takes_the_old_grant_out_of_force(client, container, clock, who):
    for kind in ("privacy_policy", "user_agreement", "carrier_data"):
        grant(client, who, kind)
    publish(container, "privacy_policy", "1.1", effective_at=clock.now() - timedelta(minutes=5))

    overview = client.get("/v1/consents", headers=who["headers"]).json()
    assert "privacy_policy" not in [c["kind"] for c in overview["in_force"]]
    assert {"kind": "privacy_policy", "current_version": "1.1", "reason": "outdated"} in overview["missing"]
    assert [c["in_force"] for c in overview["history"] if c["kind"] == "privacy_policy"] == [False]
    documents = {(d["kind"], d["version"]): d["current"] for d in client.get("/v1/consent-documents").json()}
    assert documents[("privacy_policy", "1.0")] is False and documents[("privacy_policy", "1.1")] is True

    # Verification stops until the borrower agrees to the new text.
    body = {"name": "司马相如", "id_number": "110101199003070011"}
    problem = assert_problem(client.post("/v1/kyc/identity", json=body, headers=who["headers"]), 403,
                             "CONSENT_REQUIRED")
    assert problem["params"]["documents"] == [{"kind": "privacy_policy", "version": "1.1", "reason": "outdated"}]
    problem = assert_problem(grant(client, who, "privacy_policy", "1.0"), 409, "CONSENT_VERSION_NOT_CURRENT")
    assert problem["params"]["current_version"] == "1.1"

    assert grant(client, who, "privacy_policy", "1.1").status_code == 201
    assert client.post("/v1/kyc/identity", json=body, headers=who["headers"]).status_code == 200


def test_a_version_published_ahead_of_its_date_takes_effect_on_that_date(client, container, clock, who):
    grant(client, who, "user_agreement")
    publish(container, "user_agreement", "2.0", effective_at=clock.now() + timedelta(days=1))
    assert_problem(grant(client, who, "user_agreement", "2.0"), 409, "CONSENT_VERSION_NOT_CURRENT")
    in_force = client.get("/v1/consents", headers=who["headers"]).json()["in_force"]
    assert [c["kind"] for c in in_force] == ["user_agreement"]  # 1.0 until 2.0 takes effect

    clock.advance(timedelta(days=1))
    overview = client.get("/v1/consents", headers=who["headers"]).json()
    assert {"kind": "user_agreement", "current_version": "2.0", "reason": "outdated"} in overview["missing"]
    assert grant(client, who, "user_agreement", "2.0").status_code == 201


def test_require_consents_names_everything_missing(container, clock, client, who):
    grant(client, who, "privacy_policy")
    with container.db.transaction() as session:
        require_consents(session, who["borrower_id"], [ConsentKind.PRIVACY_POLICY], now=clock.now())
        with pytest.raises(DomainError) as caught:
            require_consents(
                session, who["borrower_id"], [ConsentKind.PRIVACY_POLICY, ConsentKind.CREDIT_BUREAU_QUERY],
                now=clock.now(),
            )
    problem = caught.value.problem()
    assert problem["code"] == "CONSENT_REQUIRED" and problem["status"] == 403
    assert problem["params"]["missing"] == ["credit_bureau_query"]
    assert problem["message_zh"] == "继续之前需要您阅读并同意：《征信查询授权书》。"
    assert problem["message_en"] == "Before continuing, read and agree to: Credit-bureau query authorization."


def test_the_light_in_force_read_agrees_with_the_standings(client, container, clock, who):
    """``in_force`` (what the credit application reads) gives the answer ``standings`` gives, in every state:
    in force, never granted, revoked, outdated by a newer version, and with a version not yet in effect."""

    def both():
        with container.db.transaction() as session:
            full = standings(session, who["borrower_id"], now=clock.now())
            light = in_force(session, who["borrower_id"], now=clock.now())
        assert light == {kind: s.in_force for kind, s in full.items()}
        return light

    assert set(both().values()) == {False}  # never granted
    for kind in ("privacy_policy", "user_agreement", "carrier_data"):
        grant(client, who, kind)
    client.delete("/v1/consents/carrier_data", headers=who["headers"])
    publish(container, "privacy_policy", "1.1", effective_at=clock.now() - timedelta(minutes=5))
    publish(container, "user_agreement", "2.0", effective_at=clock.now() + timedelta(days=1))
    assert both() == {ConsentKind.PRIVACY_POLICY: False, ConsentKind.USER_AGREEMENT: True,
                      ConsentKind.CARRIER_DATA: False, ConsentKind.CREDIT_BUREAU_QUERY: False}
    grant(client, who, "privacy_policy", "1.1")
    clock.advance(timedelta(days=1))
    assert both() == {ConsentKind.PRIVACY_POLICY: True, ConsentKind.USER_AGREEMENT: False,
                      ConsentKind.CARRIER_DATA: False, ConsentKind.CREDIT_BUREAU_QUERY: False}
