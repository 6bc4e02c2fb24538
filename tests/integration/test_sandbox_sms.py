"""The sandbox carrier: it really "delivers" into an inbox read through a sandbox-only endpoint
and `miaodai sandbox sms PHONE`; documented test numbers fail or arrive late."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from miaodai.app import create_app
from miaodai.container import build_container
from miaodai.core.db import Database
from miaodai.core.providers import ProviderNotConfigured
from miaodai.core.settings import get_settings
from miaodai.credit.bureau import SandboxBureau
from miaodai.credit.carrier_data import SandboxCarrierData
from miaodai.identity.kyc_providers import build_kyc_providers
from miaodai.identity.models import OtpChannel
from miaodai.identity.sms import SmsDelivery
from miaodai.payments.card_verification import SandboxCardVerifier
from miaodai.sandbox.channel import SandboxChannel
from miaodai.sandbox.models import SandboxMessage
from miaodai.sandbox.wallet import SandboxWallet
from tests.helpers import assert_problem, device_headers, latest_code, login, request_code, sandbox_inbox

PHONE = "13812345678"


def test_the_inbox_shows_arrived_messages_newest_first(client, clock):
    request_code(client, PHONE)
    clock.advance(timedelta(seconds=61))
    request_code(client, PHONE, channel="voice")
    response = client.get("/sandbox/sms/+8613812345678")
    assert response.json()["phone_masked"] == "138****5678"
    first, second = response.json()["messages"]
    assert (first["channel"], second["channel"]) == ("voice", "sms")
    assert first["code"] in first["text"] and second["code"] in second["text"]
    assert second["text"].startswith("【秒贷】")
    assert sandbox_inbox(client, "13900000009") == []


def test_a_reader_after_the_latest_code_gets_only_the_newest_message(client, clock, container):
    from miaodai.sandbox.sms import read_sandbox_inbox

    request_code(client, PHONE)
    clock.advance(timedelta(seconds=61))
    request_code(client, PHONE, channel="voice")
    every = read_sandbox_inbox(container.db, container.vault, phone_e164="+8613812345678", now=clock.now())
    [newest] = read_sandbox_inbox(container.db, container.vault, phone_e164="+8613812345678", now=clock.now(),
                                  limit=1)
    assert len(every) == 2 and newest == every[0] and newest.channel == "voice"


def test_inbox_messages_are_stored_encrypted_with_the_phone_only_as_a_blind_index(client, container):
    request_code(client, PHONE)
    code = latest_code(client, PHONE)
    with container.db.transaction() as session:
        row = session.execute(select(SandboxMessage)).scalar_one()
    stored = " ".join(str(v) for v in (row.phone_bidx, row.text_enc, row.provider_message_id))
    assert PHONE not in stored and code not in row.text_enc
    assert row.text_enc.startswith("v1.")


def test_a_late_number_receives_its_code_30_seconds_later(client, clock):
    phone = "13900000003"  # sandbox: delivered 30 s late
    assert request_code(client, phone).status_code == 200
    assert sandbox_inbox(client, phone) == []
    clock.advance(timedelta(seconds=29))
    assert sandbox_inbox(client, phone) == []
    clock.advance(timedelta(seconds=1))
    [message] = sandbox_inbox(client, phone)
    assert message["visible_at"] == "2026-11-22T02:00:30Z"
    response = client.post("/v1/auth/login", json={"phone": phone, "code": message["code"]}, headers=device_headers())
    assert response.status_code == 200


def test_the_inbox_refuses_what_is_not_a_mainland_mobile(client):
    assert_problem(client.get("/sandbox/sms/10086"), 422, "PHONE_SHORT_NUMBER")
    assert_problem(client.get("/sandbox/sms/garbage"), 422, "PHONE_INVALID")


class RecordingCarrier:
    """What a real adapter looks like to the service: one class with ``send``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, OtpChannel]] = []

    def send(self, phone_e164: str, text: str, channel: OtpChannel) -> SmsDelivery:
        self.sent.append((phone_e164, text, channel))
        return SmsDelivery(True, provider_message_id=f"real-{len(self.sent)}")


def test_with_the_sandbox_off_the_sandbox_endpoints_do_not_exist(settings, clock):
    production_like = settings.model_copy(update={"sandbox": False})
    carrier = RecordingCarrier()
    # Stand-ins for the other parties' real adapters (the sandbox classes, passed in explicitly).
    kyc_carrier, face = build_kyc_providers(settings)
    container = build_container(production_like, clock=clock, db=Database(settings.database_url), sms=carrier,
                                carrier=kyc_carrier, face=face, bureau=SandboxBureau(timeout_seconds=1),
                                carrier_data=SandboxCarrierData(timeout_seconds=1),
                                card_verifier=SandboxCardVerifier(carrier, b"key", timeout_seconds=1))
    container.channel = SandboxChannel("sandbox", settings.sandbox_channel_store, b"secret", clock)
    container.wallets = SandboxWallet(b"secret", settings.public_base_url, timeout_seconds=1)
    try:
        with TestClient(create_app(container=container), raise_server_exceptions=False) as client:
            assert request_code(client, PHONE).status_code == 200
            assert_problem(client.get(f"/sandbox/sms/{PHONE}"), 404, "NOT_FOUND")
            paths = client.get("/openapi.json").json()["paths"]
            assert "/sandbox/sms/{phone}" not in paths and "/sandbox/wallets/{provider_ref}" not in paths
    finally:
        container.db.dispose()
    [(phone, text, channel)] = carrier.sent
    assert phone == "+8613812345678" and channel is OtpChannel.SMS and "验证码" in text


def test_with_the_sandbox_off_the_server_refuses_to_start_without_real_adapters(settings, clock):
    production_like = settings.model_copy(update={"sandbox": False})
    container = build_container(production_like, clock=clock, db=Database(settings.database_url))
    try:
        # Operator tools still get a container (audit verify, keys rotate), but no provider works...
        with pytest.raises(ProviderNotConfigured, match="real SMS/voice adapter"):
            container.sms.send("+8613812345678", "x", OtpChannel.SMS)
        # ...and the HTTP service will not start, naming every missing adapter.
        missing = ("SMS/voice.*carrier three-element.*face liveness.*credit bureau.*carrier data"
                   ".*four-element card verification.*payment channel.*e-wallet")
        with pytest.raises(ProviderNotConfigured, match=missing):
            create_app(container=container)
    finally:
        container.db.dispose()


@pytest.fixture
def cli_env(settings, monkeypatch):
    monkeypatch.setenv("MIAODAI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MIAODAI_KEYRING_FILE", str(settings.keyring_file))
    monkeypatch.setenv("MIAODAI_SANDBOX", "true")
    monkeypatch.setenv("MIAODAI_ENV", "test")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_cli_prints_a_numbers_inbox(client, cli_env):
    from miaodai.cli import app

    login(client, PHONE)
    code = latest_code(client, PHONE)
    result = CliRunner().invoke(app, ["sandbox", "sms", "138 1234 5678"])
    assert result.exit_code == 0, result.output
    assert code in result.output and "2026-11-22 10:00:00  sms" in result.output
    empty = CliRunner().invoke(app, ["sandbox", "sms", "13900000009"])
    assert empty.exit_code == 0 and "no messages" in empty.output
    refused = CliRunner().invoke(app, ["sandbox", "sms", "010-12345678"])
    assert refused.exit_code == 1 and "PHONE_LANDLINE" in refused.output


def test_the_cli_says_when_the_sandbox_is_off(cli_env, monkeypatch):
    from miaodai.cli import app

    monkeypatch.setenv("MIAODAI_SANDBOX", "false")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["sandbox", "sms", PHONE])
    assert result.exit_code == 1 and "sandbox is off" in result.output


class TimingOutCarrier:
    def send(self, phone_e164: str, text: str, channel: OtpChannel) -> SmsDelivery:
        raise TimeoutError("carrier did not answer")


def test_a_carrier_that_times_out_is_a_failed_delivery_not_a_500(settings, clock):
    container = build_container(settings, clock=clock, db=Database(settings.database_url), sms=TimingOutCarrier())
    try:
        with TestClient(create_app(container=container), raise_server_exceptions=False) as client:
            problem = assert_problem(request_code(client, PHONE), 502, "SMS_DELIVERY_FAILED")
            assert "voice" in problem["action"]["en"]
            assert_problem(request_code(client, PHONE, channel="voice"), 502, "VOICE_DELIVERY_FAILED")
    finally:
        container.db.dispose()
