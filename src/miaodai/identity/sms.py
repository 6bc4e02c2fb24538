"""The SMS/voice provider as a Protocol: what the login flow and card binding need from a carrier.

The sandbox carrier that really "delivers" (into the sandbox inbox) is :mod:`miaodai.sandbox.sms`; a real
adapter is one class with the same ``send``, wired in ``container.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from miaodai.identity.models import OtpChannel


@dataclass(frozen=True)
class SmsDelivery:
    """What the carrier said about one message."""

    accepted: bool
    provider_message_id: str | None = None
    failure_reason: str | None = None


class SmsProvider(Protocol):
    def send(self, phone_e164: str, text: str, channel: OtpChannel) -> SmsDelivery:
        """Hand a message to the carrier (SMS) or the voice platform (voice call reading it out)."""
        ...
