"""Real-name verification over HTTP: the happy path and every way it can fail, on both databases.

Borrowers log in through the real SMS flow (tests/helpers.py). The carrier and face
sandboxes are swapped for ones that record their waits instead of sleeping.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from miaodai.core.audit import AuditEntry
from miaodai.core.clock import BUSINESS_TZ
from miaodai.core.db import Base
from miaodai.identity import kyc_service
from miaodai.identity.kyc_providers import SandboxCarrierVerifier, SandboxFaceLiveness
from miaodai.identity.models import Borrower, IdentityFlag, KycAttempt, KycIdentity, KycStatus
from miaodai.identity.sessions import AuthContext
from tests.helpers import assert_problem, login

CARRIER_CONSENTS = ("privacy_policy", "user_agreement", "carrier_data")
PHONE = "13800138000"
NAME = "司马相如"
ID_NUMBER = "110101199003070011"  # valid: Beijing Dongcheng, born 1990-03-07, male
CARRIER_SAYS_MISMATCH = "13900000021"  # the sandbox carrier: name and ID number do not match (docs/sandbox.md)


@pytest.fixture
def waits(container) -> list[float]:
    """Zero-latency sandboxes that record how long they would have waited."""
    recorded: list[float] = []
    timeout = container.settings.provider_timeout_seconds
    container.carrier = SandboxCarrierVerifier(timeout_seconds=timeout, latency_seconds=0, sleep=recorded.append)
    container.face = SandboxFaceLiveness(timeout_seconds=timeout, latency_seconds=0, sleep=recorded.append)
    return recorded


def borrower(client, phone=PHONE, consents=CARRIER_CONSENTS) -> dict:
    """A logged-in borrower (own device) who agreed to ``consents``."""
    who = login(client, phone, device=f"device-{phone}")
    for kind in consents:
        granted = client.post("/v1/consents", json={"kind": kind, "version": "1.0"}, headers=who["headers"])
        assert granted.status_code == 201, granted.text
    return who


def submit(client, who, name=NAME, id_number=ID_NUMBER):
    return client.post("/v1/kyc/identity", json={"name": name, "id_number": id_number}, headers=who["headers"])


def face(client, who, token="sdk-session-1"):  # noqa: S107 - a sandbox liveness token
    return client.post("/v1/kyc/face", json={"liveness_token": token}, headers=who["headers"])


def attempts(container, borrower_id) -> list[tuple[str, str]]:
    with container.db.transaction() as session:
        rows = session.execute(select(KycAttempt).where(KycAttempt.borrower_id == borrower_id).order_by(KycAttempt.id))
        return [(a.kind.value, a.outcome) for a in rows.scalars()]


def audit_entries(container, prefix="kyc.") -> list[AuditEntry]:
    with container.db.transaction() as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id))
        return list(rows.scalars())


def kyc_status(container, borrower_id) -> KycStatus:
    with container.db.transaction() as session:
        return session.get(Borrower, borrower_id).kyc_status


def test_a_borrower_verifies_name_id_and_phone_then_face(client, container, waits):
    who = borrower(client)
    assert client.get("/v1/kyc", headers=who["headers"]).json()["next_step"] == "identity"

    response = submit(client, who, name=" 司马 相如 ", id_number="110101 19900307 0011")
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["status"] == "carrier_verified" and view["next_step"] == "face"
    assert view["name"] == "司***" and view["id_number"] == "110101********0011"
    assert view["attempts_today"]["identity"] == {"used": 1, "limit": 5, "remaining": 4}

    response = face(client, who)
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["status"] == "verified" and view["next_step"] == "done"
    assert view["face_verified_at"] == "2026-11-22T02:00:00Z"
    assert attempts(container, who["borrower_id"]) == [("identity", "passed"), ("face", "passed")]
    assert waits == [0, 0]  # one carrier call and one face call, each after its latency

    with container.db.transaction() as session:
        identity = session.execute(select(KycIdentity)).scalar_one()
        assert container.vault.decrypt(identity.name_enc, "kyc.name") == NAME
        assert container.vault.decrypt(identity.id_number_enc, "kyc.id_number") == ID_NUMBER
        assert identity.id_number_bidx == container.vault.blind_index(ID_NUMBER, "id_number")
        assert (identity.birth_date.isoformat(), identity.gender, identity.region_code) == ("1990-03-07", "M", "110101")
    entries = audit_entries(container)
    assert [e.action for e in entries] == ["kyc.identity_verified", "kyc.face_verified"]
    assert all(e.subject == f"borrower:{who['borrower_id']}" for e in entries)
    for entry in audit_entries(container, prefix=""):
        assert NAME not in entry.body and ID_NUMBER not in entry.body and PHONE not in entry.body


def test_a_minority_name_with_a_middle_dot_is_accepted(client, container, waits):
    who = borrower(client)
    response = submit(client, who, name="阿卜杜 • 热合曼")
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "阿******"
    with container.db.transaction() as session:
        identity = session.execute(select(KycIdentity)).scalar_one()
        assert container.vault.decrypt(identity.name_enc, "kyc.name") == "阿卜杜·热合曼"


@pytest.mark.parametrize(
    ("name", "id_number", "code"),
    [
        (NAME, "110101199003070012", "KYC_ID_BAD_CHECKSUM"),
        (NAME, "110101199002300014", "KYC_ID_BAD_BIRTH_DATE"),  # 30 February
        (NAME, "999999199003070012", "KYC_ID_UNKNOWN_REGION"),
        (NAME, "110101900307001", "KYC_ID_LEGACY_15_DIGIT"),
        (NAME, "11010119900307001", "KYC_ID_WRONG_LENGTH"),
        (NAME, "11010119900307001Y", "KYC_ID_BAD_CHARACTERS"),
        ("Zhang San", ID_NUMBER, "KYC_NAME_BAD_CHARACTERS"),
        ("张", ID_NUMBER, "KYC_NAME_TOO_SHORT"),
        ("李" * 31, ID_NUMBER, "KYC_NAME_TOO_LONG"),
        ("·张三", ID_NUMBER, "KYC_NAME_BAD_DOT"),
    ],
)
def test_a_typo_is_refused_with_its_own_code_and_uses_up_no_attempt(client, container, waits, name, id_number, code):
    who = borrower(client)
    problem = assert_problem(submit(client, who, name=name, id_number=id_number), 422, code)
    assert problem["action"]["zh"] and problem["action"]["en"]
    assert problem["params"]["attempts_remaining"] == 5  # nobody was asked: the typo is not an attempt
    assert NAME not in str(problem) and id_number not in str(problem)
    assert attempts(container, who["borrower_id"]) == []
    assert kyc_status(container, who["borrower_id"]) is KycStatus.NONE
    assert waits == []  # the carrier was never asked
    assert audit_entries(container) == []
    assert submit(client, who).status_code == 200  # corrected, it goes through


def test_the_age_policy_is_18_to_60_on_the_beijing_date(client, container, clock, waits):
    # 2026-11-22 in Beijing. Born 2008-11-23: 17 until tomorrow.
    who = borrower(client)
    problem = assert_problem(submit(client, who, id_number="110101200811230015"), 422, "KYC_AGE_TOO_YOUNG")
    assert problem["params"]["eligible_on"] == "2026-11-23"
    assert "2026-11-23" in problem["action"]["zh"] and "2026-11-23" in problem["action"]["en"]
    problem = assert_problem(submit(client, who, id_number="110101196511220019"), 422, "KYC_AGE_TOO_OLD")
    assert "18" in problem["message_en"] and "60" in problem["message_en"]  # turned 61 today

    # 00:00 on 23 November in Beijing is still 22 November in UTC: the birthday counts.
    clock.set(datetime(2026, 11, 23, 0, 0, tzinfo=BUSINESS_TZ))
    assert submit(client, who, id_number="110101200811230015").status_code == 200


def test_sixty_is_still_eligible(client, waits):
    who = borrower(client)
    assert submit(client, who, id_number="110101196511230014").status_code == 200  # 61 tomorrow


def test_an_id_number_verified_on_another_account_is_refused_and_flagged(client, container, waits):
    first = borrower(client, "13800138000")
    assert submit(client, first).status_code == 200
    second = borrower(client, "13800138001")

    problem = assert_problem(submit(client, second), 409, "KYC_ID_ON_OTHER_ACCOUNT")
    assert problem["action"]["en"]
    assert "138" not in str(problem)  # nothing about the other account leaks
    with container.db.transaction() as session:
        flag = session.execute(select(IdentityFlag)).scalar_one()
        assert (flag.borrower_id, flag.related_borrower_id) == (second["borrower_id"], first["borrower_id"])
        assert flag.kind == "id_number_on_other_account"
        assert session.execute(select(KycIdentity.borrower_id)).scalars().all() == [first["borrower_id"]]
    flagged = [e for e in audit_entries(container) if e.action == "kyc.duplicate_id_flagged"]
    assert len(flagged) == 1 and flagged[0].subject == f"borrower:{second['borrower_id']}"
    assert f'"related_borrower_id":{first["borrower_id"]}' in flagged[0].body
    assert attempts(container, second["borrower_id"]) == [("identity", "KYC_ID_ON_OTHER_ACCOUNT")]
    assert waits == [0]  # the second account never reached the carrier


class _InterleavingCarrier:
    """While the carrier checks the second account, the first account binds the same ID."""

    def __init__(self, inner, container, first: AuthContext, second_phone: str) -> None:
        self.inner, self.container, self.first, self.second_phone = inner, container, first, second_phone

    def verify(self, name, id_number, phone_e164):
        if phone_e164 == self.second_phone:
            self.second_phone = ""
            kyc_service.submit_identity(self.container, self.first, name, id_number)
        return self.inner.verify(name, id_number, phone_e164)


def test_a_race_for_one_id_number_binds_it_once_and_flags_the_loser(client, container, waits):
    first = borrower(client, "13800138000")
    second = borrower(client, "13800138001")
    first_auth = AuthContext(first["borrower_id"], first["session_id"], first["body"]["device_id"], None)
    container.carrier = _InterleavingCarrier(container.carrier, container, first_auth, "+8613800138001")

    assert_problem(submit(client, second), 409, "KYC_ID_ON_OTHER_ACCOUNT")
    assert kyc_status(container, first["borrower_id"]) is KycStatus.CARRIER_VERIFIED
    assert kyc_status(container, second["borrower_id"]) is KycStatus.NONE
    with container.db.transaction() as session:
        assert session.execute(select(KycIdentity.borrower_id)).scalars().all() == [first["borrower_id"]]
        assert session.execute(select(IdentityFlag.related_borrower_id)).scalars().all() == [first["borrower_id"]]
    assert attempts(container, second["borrower_id"]) == [("identity", "KYC_ID_ON_OTHER_ACCOUNT")]


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        ("13900000021", "KYC_CARRIER_NAME_ID_MISMATCH"),
        ("13900000022", "KYC_CARRIER_PHONE_NOT_OWNER"),
        ("13900000023", "KYC_CARRIER_NUMBER_REASSIGNED"),
        ("13900000024", "KYC_CARRIER_NUMBER_SUSPENDED"),
    ],
)
def test_each_carrier_refusal_has_its_code_and_what_to_do(client, container, waits, phone, code):
    who = borrower(client, phone)
    problem = assert_problem(submit(client, who), 422, code)
    assert problem["action"]["zh"] and problem["action"]["en"]
    assert problem["params"]["attempts_remaining"] == 4
    assert attempts(container, who["borrower_id"]) == [("identity", code)]
    assert kyc_status(container, who["borrower_id"]) is KycStatus.NONE
    with container.db.transaction() as session:
        assert session.execute(select(KycIdentity)).first() is None


def test_a_carrier_timeout_waits_the_timeout_and_does_not_use_up_an_attempt(client, container, waits):
    who = borrower(client, "13900000025")
    problem = assert_problem(submit(client, who), 504, "KYC_CARRIER_TIMEOUT")
    assert problem["action"]["en"]
    assert waits == [3.0]  # provider_timeout_seconds
    assert problem["params"]["attempts_remaining"] == 5
    assert attempts(container, who["borrower_id"]) == [("identity", "KYC_CARRIER_TIMEOUT")]
    budget = client.get("/v1/kyc", headers=who["headers"]).json()["attempts_today"]["identity"]
    assert budget == {"used": 0, "limit": 5, "remaining": 5}


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        ("sandbox-liveness-failed", 422, "KYC_FACE_LIVENESS_FAILED"),
        ("sandbox-face-mismatch", 422, "KYC_FACE_MISMATCH"),
        ("sandbox-timeout", 504, "KYC_FACE_TIMEOUT"),
    ],
)
def test_each_face_failure_has_its_code_and_keeps_the_identity_step(client, container, waits, token, status, code):
    who = borrower(client)
    assert submit(client, who).status_code == 200
    problem = assert_problem(face(client, who, token), status, code)
    assert problem["action"]["zh"] and problem["action"]["en"]
    assert kyc_status(container, who["borrower_id"]) is KycStatus.CARRIER_VERIFIED
    assert attempts(container, who["borrower_id"]) == [("identity", "passed"), ("face", code)]
    # After a failure the borrower simply tries again.
    assert face(client, who).json()["status"] == "verified"


def test_steps_out_of_order_are_refused(client, waits):
    who = borrower(client)
    assert_problem(face(client, who), 409, "KYC_FACE_BEFORE_IDENTITY")
    assert submit(client, who).status_code == 200
    assert_problem(submit(client, who), 409, "KYC_ALREADY_VERIFIED")
    assert face(client, who).status_code == 200
    assert_problem(face(client, who), 409, "KYC_ALREADY_VERIFIED")


def test_five_identity_attempts_a_day_then_again_from_midnight_beijing_time(client, container, clock, waits):
    who = borrower(client, phone=CARRIER_SAYS_MISMATCH)
    for _ in range(5):
        assert_problem(submit(client, who), 422, "KYC_CARRIER_NAME_ID_MISMATCH")
    refused = submit(client, who)
    problem = assert_problem(refused, 429, "KYC_IDENTITY_ATTEMPTS_EXHAUSTED")
    assert problem["params"]["retry_at"] == "2026-11-23 00:00:00"
    assert problem["params"]["retry_after_seconds"] == 14 * 3600  # from 10:00 Beijing time
    assert refused.headers["retry-after"] == str(14 * 3600)
    assert "2026-11-23 00:00:00" in problem["action"]["zh"]
    assert len(attempts(container, who["borrower_id"])) == 5  # a refusal by the limit is not an attempt

    clock.set(datetime(2026, 11, 22, 23, 59, 59, tzinfo=BUSINESS_TZ))
    assert_problem(submit(client, who), 429, "KYC_IDENTITY_ATTEMPTS_EXHAUSTED")
    clock.advance(timedelta(seconds=1))  # midnight in Beijing, 16:00 UTC the day before
    assert_problem(submit(client, who), 422, "KYC_CARRIER_NAME_ID_MISMATCH")  # asked again: a new day's attempt


def test_five_face_attempts_a_day(client, container, clock, waits):
    who = borrower(client)
    assert submit(client, who).status_code == 200
    for _ in range(5):
        assert_problem(face(client, who, "sandbox-liveness-failed"), 422, "KYC_FACE_LIVENESS_FAILED")
    assert_problem(face(client, who), 429, "KYC_FACE_ATTEMPTS_EXHAUSTED")
    clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=BUSINESS_TZ))
    assert face(client, who).json()["status"] == "verified"


def test_the_carrier_check_needs_privacy_user_agreement_and_carrier_data_consents(client, container, waits):
    who = borrower(client, consents=("privacy_policy",))
    problem = assert_problem(submit(client, who), 403, "CONSENT_REQUIRED")
    assert problem["params"]["missing"] == ["user_agreement", "carrier_data"]
    assert "《运营商信息授权书》" in problem["message_zh"] and "Carrier-data authorization" in problem["message_en"]
    assert problem["action"]["en"]
    assert client.get("/v1/kyc", headers=who["headers"]).json()["next_step"] == "grant_consents"
    assert attempts(container, who["borrower_id"]) == []  # nothing was verified, so nothing was attempted

    for kind in ("user_agreement", "carrier_data"):
        client.post("/v1/consents", json={"kind": kind, "version": "1.0"}, headers=who["headers"])
    assert client.delete("/v1/consents/carrier_data", headers=who["headers"]).status_code == 200
    problem = assert_problem(submit(client, who), 403, "CONSENT_REQUIRED")
    assert problem["params"]["documents"] == [{"kind": "carrier_data", "version": "1.0", "reason": "revoked"}]


def test_the_face_check_needs_the_privacy_policy_in_force(client, waits):
    who = borrower(client)
    assert submit(client, who).status_code == 200
    client.delete("/v1/consents/privacy_policy", headers=who["headers"])
    problem = assert_problem(face(client, who), 403, "CONSENT_REQUIRED")
    assert problem["params"]["missing"] == ["privacy_policy"]


def test_requests_are_checked_before_anything_happens(client, waits):
    who = borrower(client)
    assert_problem(client.get("/v1/kyc"), 401, "UNAUTHENTICATED")
    assert_problem(client.post("/v1/kyc/identity", json={"name": NAME, "id_number": ID_NUMBER}), 401, "UNAUTHENTICATED")
    body = {"name": NAME, "id_number": ID_NUMBER, "phone": "13800138000"}
    assert_problem(client.post("/v1/kyc/identity", json=body, headers=who["headers"]), 422, "VALIDATION_FAILED")
    assert_problem(client.post("/v1/kyc/identity", json={"name": 5}, headers=who["headers"]), 422, "VALIDATION_FAILED")
    assert_problem(client.post("/v1/kyc/face", json={"liveness_token": ""}, headers=who["headers"]), 422,
                   "VALIDATION_FAILED")
    malformed = client.post(
        "/v1/kyc/identity", content=b"{", headers={**who["headers"], "Content-Type": "application/json"}
    )
    assert_problem(malformed, 400, "MALFORMED_JSON")


def test_no_plaintext_name_or_id_number_is_stored(client, container, backend, waits):
    who = borrower(client)
    assert submit(client, who).status_code == 200
    assert face(client, who).status_code == 200
    secrets = [NAME.encode(), ID_NUMBER.encode(), ID_NUMBER[6:14].encode()]  # incl. the bare birth date digits
    # Every column of every table, as the database returns it.
    with container.db.engine.connect() as conn:
        dump = "".join(str(row) for table in Base.metadata.sorted_tables for row in conn.execute(table.select()))
    assert not any(s.decode() in dump for s in secrets)
    if backend == "sqlite":
        container.db.dispose()
        path = container.settings.database_url.split("///", 1)[1]
        files = [Path(path + suffix) for suffix in ("", "-wal", "-shm")]
        raw = b"".join(f.read_bytes() for f in files if f.exists())
        assert raw and not any(s in raw for s in secrets)


class _BrokenParty:
    """A real adapter whose vendor answers with garbage: it raises something other than a timeout."""

    def verify(self, name, id_number, phone_e164):
        raise ConnectionResetError("vendor hung up")

    def check(self, liveness_token, id_number):
        raise ValueError("malformed vendor answer")


def test_a_failing_carrier_adapter_is_a_retryable_problem_not_a_500(client, container, waits):
    who = borrower(client)
    container.carrier = _BrokenParty()
    problem = assert_problem(submit(client, who), 503, "KYC_PROVIDER_UNAVAILABLE")
    assert problem["action"]["en"] and problem["params"]["attempts_remaining"] == 5
    assert attempts(container, who["borrower_id"]) == [("identity", "KYC_PROVIDER_UNAVAILABLE")]
    assert kyc_status(container, who["borrower_id"]) is KycStatus.NONE


def test_a_failing_face_adapter_is_a_retryable_problem_not_a_500(client, container, waits):
    who = borrower(client)
    assert submit(client, who).status_code == 200
    container.face = _BrokenParty()
    assert_problem(face(client, who), 503, "KYC_PROVIDER_UNAVAILABLE")
    assert attempts(container, who["borrower_id"]) == [("identity", "passed"), ("face", "KYC_PROVIDER_UNAVAILABLE")]
    assert kyc_status(container, who["borrower_id"]) is KycStatus.CARRIER_VERIFIED
