"""Carrier data (运营商数据), fetched only under the borrower's carrier-data consent.

For now one fact: how long the phone number has been in service with this subscriber (在网时长).
A number used for a few weeks is a classic fraud signal (fresh SIM cards bought for applications).
The risk issue adds more carrier features to this slot later.

Sandbox, chosen by the borrower's phone number (docs/sandbox.md):

    +86 139 0000 0026   in service for 2 months (too short for the policy)
    +86 139 0000 0027   no answer: ProviderTimeout after the timeout
    any other number    6-180 months, drawn deterministically from the number
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from miaodai.core.providers import SandboxParty

SHORT_TENURE_PHONE = "+8613900000026"
CARRIER_DATA_TIMEOUT_PHONE = "+8613900000027"


class CarrierData(Protocol):
    def phone_tenure_months(self, phone_e164: str) -> int:
        """Months the number has been in service for its current subscriber; raises ProviderTimeout."""
        ...


class SandboxCarrierData(SandboxParty):
    def phone_tenure_months(self, phone_e164: str) -> int:
        if phone_e164 == CARRIER_DATA_TIMEOUT_PHONE:
            raise self._time_out("carrier data")
        self._answer_after_latency()
        if phone_e164 == SHORT_TENURE_PHONE:
            return 2
        return 6 + int.from_bytes(hashlib.sha256(phone_e164.encode()).digest()[:4], "big") % 175
