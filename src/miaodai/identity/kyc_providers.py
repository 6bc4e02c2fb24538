"""Outside parties of real-name verification, as small Protocols with sandboxes.

* :class:`CarrierVerifier` — the carrier three-element check (运营商三要素): do this name,
  ID number and phone number belong together, and is the number in service?
* :class:`FaceLiveness` — the face SDK's session result: was a live person in front of
  the camera, and is it the person whose ID photo is on record?

A real adapter is one class implementing the Protocol. It must give up after the
configured timeout and raise :class:`ProviderTimeout` (the outcome is then unknown).

The sandboxes answer like the real parties (a little latency, a timeout that really
waits) and pick the outcome from documented test values (docs/sandbox.md):

Carrier check, chosen by the borrower's phone number (139 0000 002x; the SMS sandbox
uses 139 0000 000x for its own test numbers):

    +86 139 0000 0021   name and ID number do not match
    +86 139 0000 0022   phone not registered to this person
    +86 139 0000 0023   number re-assigned recently (二次号)
    +86 139 0000 0024   number suspended (停机)
    +86 139 0000 0025   no answer: ProviderTimeout after the timeout
    any other number    match

Face check, chosen by the liveness token:

    sandbox-liveness-failed   liveness failed
    sandbox-face-mismatch     face does not match the ID photo
    sandbox-timeout           no answer: ProviderTimeout after the timeout
    any other token           pass
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from miaodai.core.providers import SandboxParty
from miaodai.core.settings import Settings


class CarrierOutcome(StrEnum):
    MATCH = "match"
    NAME_ID_MISMATCH = "name_id_mismatch"
    PHONE_NOT_OWNER = "phone_not_owner"
    NUMBER_REASSIGNED = "number_reassigned"  # 二次号: the number changed hands recently
    NUMBER_SUSPENDED = "number_suspended"


class FaceOutcome(StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    LIVENESS_FAILED = "liveness_failed"
    FACE_MISMATCH = "face_mismatch"


@dataclass(frozen=True, slots=True)
class CarrierResult:
    outcome: CarrierOutcome
    reference: str  # the provider's request id, for reconciling the bill and disputes


@dataclass(frozen=True, slots=True)
class FaceResult:
    outcome: FaceOutcome
    reference: str


class CarrierVerifier(Protocol):
    def verify(self, name: str, id_number: str, phone_e164: str) -> CarrierResult: ...


class FaceLiveness(Protocol):
    def check(self, liveness_token: str, id_number: str) -> FaceResult: ...


CARRIER_TEST_PHONES: dict[str, CarrierOutcome] = {
    "+8613900000021": CarrierOutcome.NAME_ID_MISMATCH,
    "+8613900000022": CarrierOutcome.PHONE_NOT_OWNER,
    "+8613900000023": CarrierOutcome.NUMBER_REASSIGNED,
    "+8613900000024": CarrierOutcome.NUMBER_SUSPENDED,
}
CARRIER_TIMEOUT_PHONE = "+8613900000025"

FACE_TEST_TOKENS: dict[str, FaceOutcome] = {
    "sandbox-liveness-failed": FaceOutcome.LIVENESS_FAILED,
    "sandbox-face-mismatch": FaceOutcome.FACE_MISMATCH,
}
FACE_TIMEOUT_TOKEN = "sandbox-timeout"  # noqa: S105 - a documented sandbox value, not a secret


class SandboxCarrierVerifier(SandboxParty):
    """Picks the outcome from the phone number (see the module docstring)."""

    def verify(self, name: str, id_number: str, phone_e164: str) -> CarrierResult:
        if phone_e164 == CARRIER_TIMEOUT_PHONE:
            raise self._time_out("carrier verification")
        reference = self._answer_after_latency()
        return CarrierResult(CARRIER_TEST_PHONES.get(phone_e164, CarrierOutcome.MATCH), reference)


class SandboxFaceLiveness(SandboxParty):
    """Picks the outcome from the liveness token (see the module docstring)."""

    def check(self, liveness_token: str, id_number: str) -> FaceResult:
        if liveness_token == FACE_TIMEOUT_TOKEN:
            raise self._time_out("face liveness")
        reference = self._answer_after_latency()
        return FaceResult(FACE_TEST_TOKENS.get(liveness_token, FaceOutcome.PASS), reference)


def build_kyc_providers(settings: Settings) -> tuple[CarrierVerifier, FaceLiveness]:
    """The sandbox carrier and face parties, with the configured timeout."""
    timeout, latency = settings.provider_timeout_seconds, settings.sandbox_latency_seconds
    return (SandboxCarrierVerifier(timeout_seconds=timeout, latency_seconds=latency),
            SandboxFaceLiveness(timeout_seconds=timeout, latency_seconds=latency))
