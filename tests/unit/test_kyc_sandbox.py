"""The carrier and face sandboxes pick outcomes from documented test values, wait like the
real parties, and time out after the configured timeout (tests record the wait, never spend it)."""

from __future__ import annotations

import pytest

from miaodai.container import build_container
from miaodai.core.providers import SANDBOX_LATENCY_SECONDS, ProviderNotConfigured, ProviderTimeout
from miaodai.core.settings import Environment, Settings
from miaodai.identity.kyc_providers import (
    CarrierOutcome,
    CarrierVerifier,
    FaceLiveness,
    FaceOutcome,
    SandboxCarrierVerifier,
    SandboxFaceLiveness,
    build_kyc_providers,
)
from tests.mutation import RecordingSleep

ID_NUMBER = "110101199003070011"


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.mark.parametrize(
    ("phone", "outcome"),
    [
        ("+8613800138000", CarrierOutcome.MATCH),
        ("+8613900000000", CarrierOutcome.MATCH),
        ("+8613900000001", CarrierOutcome.MATCH),  # an SMS-sandbox test number: not the carrier's
        ("+8613900000021", CarrierOutcome.NAME_ID_MISMATCH),
        ("+8613900000022", CarrierOutcome.PHONE_NOT_OWNER),
        ("+8613900000023", CarrierOutcome.NUMBER_REASSIGNED),
        ("+8613900000024", CarrierOutcome.NUMBER_SUSPENDED),
    ],
)
def test_the_carrier_outcome_is_chosen_by_the_phone_number(phone, outcome, sleep):
    carrier = SandboxCarrierVerifier(timeout_seconds=3.0, latency_seconds=0.2, sleep=sleep)
    result = carrier.verify("张三", ID_NUMBER, phone)
    assert result.outcome is outcome
    assert result.reference.startswith("sbx-")
    assert sleep.waits == [0.2]


def test_the_carrier_timeout_number_waits_the_whole_timeout_then_raises(sleep):
    carrier = SandboxCarrierVerifier(timeout_seconds=3.0, sleep=sleep)
    with pytest.raises(ProviderTimeout) as caught:
        carrier.verify("张三", ID_NUMBER, "+8613900000025")
    assert caught.value.seconds == 3.0
    assert sleep.waits == [3.0]


@pytest.mark.parametrize(
    ("token", "outcome"),
    [
        ("sdk-session-8f2a", FaceOutcome.PASS),
        ("sandbox-pass", FaceOutcome.PASS),
        ("sandbox-liveness-failed", FaceOutcome.LIVENESS_FAILED),
        ("sandbox-face-mismatch", FaceOutcome.FACE_MISMATCH),
    ],
)
def test_the_face_outcome_is_chosen_by_the_liveness_token(token, outcome, sleep):
    face = SandboxFaceLiveness(timeout_seconds=3.0, latency_seconds=0.0, sleep=sleep)
    assert face.check(token, ID_NUMBER).outcome is outcome


def test_the_face_timeout_token_waits_the_whole_timeout_then_raises(sleep):
    face = SandboxFaceLiveness(timeout_seconds=1.5, sleep=sleep)
    with pytest.raises(ProviderTimeout):
        face.check("sandbox-timeout", ID_NUMBER)
    assert sleep.waits == [1.5]


def test_the_sandboxes_satisfy_the_protocols_and_default_to_a_small_real_latency():
    carrier: CarrierVerifier = SandboxCarrierVerifier(timeout_seconds=3.0)
    face: FaceLiveness = SandboxFaceLiveness(timeout_seconds=3.0)
    assert 0 < SANDBOX_LATENCY_SECONDS < 0.5
    assert carrier.verify("张三", ID_NUMBER, "+8613800138000").outcome is CarrierOutcome.MATCH
    assert face.check("x", ID_NUMBER).outcome is FaceOutcome.PASS


def test_the_container_gets_sandboxes_with_the_configured_timeout(tmp_path):
    settings = Settings(env=Environment.TEST, keyring_file=tmp_path / "k.json", provider_timeout_seconds=2.5)
    carrier, face = build_kyc_providers(settings)
    assert isinstance(carrier, SandboxCarrierVerifier) and carrier.timeout_seconds == 2.5
    assert isinstance(face, SandboxFaceLiveness) and face.timeout_seconds == 2.5


def test_without_the_sandbox_a_real_adapter_must_be_configured(tmp_path):
    settings = Settings(env=Environment.TEST, keyring_file=tmp_path / "k.json", sandbox=False,
                        database_url=f"sqlite:///{tmp_path}/x.db")
    container = build_container(settings)
    with pytest.raises(ProviderNotConfigured, match="CarrierVerifier"):
        container.carrier.verify("张三", ID_NUMBER, "+8613800138000")
    with pytest.raises(ProviderNotConfigured, match="FaceLiveness"):
        container.face.check("x", ID_NUMBER)


def test_a_sandbox_without_latency_does_not_give_the_processor_away(monkeypatch):
    """``sleep(0)`` yields the processor (milliseconds each on a busy machine): the default wait skips it."""
    slept: list[float] = []
    monkeypatch.setattr("miaodai.core.providers.time.sleep", slept.append)
    SandboxCarrierVerifier(timeout_seconds=3.0, latency_seconds=0.0).verify("张三", ID_NUMBER, "+8613800138000")
    assert slept == []
    SandboxCarrierVerifier(timeout_seconds=3.0, latency_seconds=0.2).verify("张三", ID_NUMBER, "+8613800138000")
    assert slept == [0.2]
