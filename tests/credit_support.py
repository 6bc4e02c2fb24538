"""Applicants for credit tests: logged in, consents granted, identity verified through the API."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from miaodai.credit.bureau import SandboxBureau
from miaodai.credit.carrier_data import SandboxCarrierData
from miaodai.credit.models import ModelState, ScoringModel
from miaodai.identity.kyc_providers import SandboxCarrierVerifier, SandboxFaceLiveness
from tests.helpers import login

ALL_CONSENTS = ("privacy_policy", "user_agreement", "carrier_data", "credit_bureau_query")
GOOD_FORM = {"monthly_income_fen": 2_000_000, "occupation": "employee", "education": "bachelor",
             "loan_purpose": "home_furnishing"}


TEST_SCORECARD = Path(__file__).parent / "data" / "test_scorecard.json"


def install_test_model(container: Any) -> str:
    """Make the hand-written test scorecard the champion (decisions in tests then do not move when the
    default model is retrained). Returns its model id."""
    artifact = json.loads(TEST_SCORECARD.read_text(encoding="utf-8"))
    canonical = json.dumps(artifact, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    now = container.clock.now()
    with container.db.transaction() as session:
        session.add(ScoringModel(
            model_id=artifact["model_id"], artifact=canonical, sha256=hashlib.sha256(canonical.encode()).hexdigest(),
            metadata_json="{}", state=ModelState.CHAMPION, registered_by="system:test", registered_at=now,
            updated_at=now))
    return artifact["model_id"]


def quick_parties(container: Any) -> list[float]:
    """Zero-latency sandboxes that record how long they would have waited (timeouts are not spent)."""
    waits: list[float] = []
    timeout = container.settings.provider_timeout_seconds
    options = {"timeout_seconds": timeout, "latency_seconds": 0, "sleep": waits.append}
    container.carrier = SandboxCarrierVerifier(**options)
    container.face = SandboxFaceLiveness(**options)
    container.bureau = SandboxBureau(**options)
    container.carrier_data = SandboxCarrierData(**options)
    return waits


def applicant(client: TestClient, phone: str, id_number: str, *, name: str = "王小明",
              consents: tuple[str, ...] = ALL_CONSENTS, device: str | None = None) -> dict[str, Any]:
    """A logged-in borrower with ``consents`` and a verified identity (name, ID number, carrier, face)."""
    who = login(client, phone, device=device or f"device-{phone}")
    for kind in consents:
        granted = client.post("/v1/consents", json={"kind": kind, "version": "1.0"}, headers=who["headers"])
        assert granted.status_code == 201, granted.text
    checked = client.post("/v1/kyc/identity", json={"name": name, "id_number": id_number}, headers=who["headers"])
    assert checked.status_code == 200, checked.text
    faced = client.post("/v1/kyc/face", json={"liveness_token": "sandbox-pass"}, headers=who["headers"])
    assert faced.status_code == 200, faced.text
    return who


def apply(client: TestClient, who: dict[str, Any], **form: Any) -> Any:
    return client.post("/v1/credit/applications", json={**GOOD_FORM, **form}, headers=who["headers"])
