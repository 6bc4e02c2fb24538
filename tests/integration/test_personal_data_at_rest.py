"""A whole onboarding run leaves no plaintext phone, ID number or name in the database file or the logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import login

PINNED_FIXTURES = ("backend",)
PHONE = "13812345678"
ID_NUMBER = "110101199003077774"  # valid check digit, synthetic
NAME = "张三丰"
CONSENTS = ("privacy_policy", "user_agreement", "credit_bureau_query", "carrier_data")


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the embedded database is a file we can read byte by byte


def _onboard(client) -> dict:
    session = login(client, PHONE)
    headers = session["headers"]
    for kind in CONSENTS:
        assert client.post("/v1/consents", json={"kind": kind, "version": "1.0"}, headers=headers).status_code == 201
    identity = client.post("/v1/kyc/identity", json={"name": NAME, "id_number": ID_NUMBER}, headers=headers)
    assert identity.status_code == 200, identity.text
    face = client.post("/v1/kyc/face", json={"liveness_token": "sandbox-pass"}, headers=headers)
    assert face.status_code == 200, face.text
    return {"headers": headers, "kyc": face.json(), "me": client.get("/v1/me", headers=headers).json()}


def _database_bytes(database_url: str) -> bytes:
    path = Path(database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))  # the file, its WAL and SHM


def test_onboarding_leaves_no_plaintext_personal_data(client, container, database_url, captured_logs):
    result = _onboard(client)
    # The borrower sees their data masked.
    assert result["me"]["phone_masked"] == "138****5678"
    assert result["me"]["kyc_status"] == "verified"
    shown = str(result["kyc"])
    assert "110101********7774" in shown and "张**" in shown
    assert ID_NUMBER not in shown and NAME not in shown
    # A failed attempt with another ID also passes through logs and tables.
    client.post("/v1/kyc/identity", json={"name": NAME, "id_number": "110101199003071233"},
                headers=result["headers"])
    container.db.dispose()  # flush connections so the WAL is on disk as it is
    stored = _database_bytes(database_url)
    logs = captured_logs.getvalue()
    assert logs, "the run wrote no logs at all"
    # We are reading the right bytes: the phone's blind index is there.
    assert container.vault.blind_index("+86" + PHONE, "phone").encode() in stored
    for secret in (PHONE, ID_NUMBER, NAME, "110101199003071233"):
        assert secret.encode() not in stored, f"{secret} found in the database file"
        assert secret.encode("utf-16-le") not in stored
        assert secret not in logs, f"{secret} found in the logs"
