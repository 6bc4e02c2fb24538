"""A sandbox carrier that really "delivers" SMS and voice messages, and its inbox.

The sandbox writes each message into the sandbox inbox (``sandbox_messages``: the
phone only as a blind index, the text encrypted) where the sandbox endpoint and
``miaodai sandbox sms PHONE`` read it. Documented test numbers (docs/sandbox.md)
make delivery fail or arrive late, so every path of the login flow can be exercised
without a carrier contract. It implements :class:`miaodai.identity.sms.SmsProvider`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from miaodai.core.clock import Clock
from miaodai.core.crypto import Vault
from miaodai.core.db import Database
from miaodai.identity.models import PHONE_INDEX, OtpChannel
from miaodai.identity.sms import SmsDelivery
from miaodai.sandbox.models import MESSAGE_TEXT_FIELD, SandboxMessage

# Sandbox test numbers (E.164). Every other valid mainland mobile number is delivered at once.
SANDBOX_SMS_FAILS_VOICE_WORKS = "+8613900000001"
SANDBOX_ALL_DELIVERY_FAILS = "+8613900000002"
SANDBOX_DELIVERED_LATE = "+8613900000003"
SANDBOX_LATE_BY = timedelta(seconds=30)

_CODE_IN_TEXT = re.compile(r"(?<!\d)(\d{6})(?!\d)")


class SandboxSmsProvider:
    """A sandbox carrier: "delivers" into the sandbox inbox table, in its own transaction."""

    def __init__(self, db: Database, vault: Vault, clock: Clock) -> None:
        self._db, self._vault, self._clock = db, vault, clock

    def send(self, phone_e164: str, text: str, channel: OtpChannel) -> SmsDelivery:
        if phone_e164 == SANDBOX_ALL_DELIVERY_FAILS:
            return SmsDelivery(False, failure_reason="sandbox: number unreachable on every channel")
        if phone_e164 == SANDBOX_SMS_FAILS_VOICE_WORKS and channel is OtpChannel.SMS:
            return SmsDelivery(False, failure_reason="sandbox: SMS rejected by the carrier")
        now = self._clock.now()
        visible_at = now + SANDBOX_LATE_BY if phone_e164 == SANDBOX_DELIVERED_LATE else now
        message_id = "sbx_" + secrets.token_hex(12)
        with self._db.transaction() as session:
            session.add(
                SandboxMessage(
                    phone_bidx=self._vault.blind_index(phone_e164, PHONE_INDEX),
                    channel=channel.value,
                    text_enc=self._vault.encrypt(text, MESSAGE_TEXT_FIELD),
                    provider_message_id=message_id,
                    sent_at=now,
                    visible_at=visible_at,
                )
            )
        return SmsDelivery(True, provider_message_id=message_id)


@dataclass(frozen=True)
class InboxMessage:
    channel: str
    text: str
    code: str | None  # the 6-digit code in the text, for convenience
    sent_at: datetime
    visible_at: datetime


def read_sandbox_inbox(db: Database, vault: Vault, *, phone_e164: str, now: datetime,
                       limit: int = 50) -> list[InboxMessage]:
    """The latest ``limit`` messages that have "arrived" at a number by ``now``, newest first (each one
    decrypted: a caller after the latest code asks for one)."""
    stmt = (
        select(SandboxMessage)
        .where(
            SandboxMessage.phone_bidx == vault.blind_index(phone_e164, PHONE_INDEX),
            SandboxMessage.visible_at <= now,
        )
        .order_by(SandboxMessage.visible_at.desc(), SandboxMessage.id.desc())
        .limit(limit)
    )
    with db.transaction() as session:
        rows = session.execute(stmt).scalars().all()
    messages = []
    for row in rows:
        text = vault.decrypt(row.text_enc, MESSAGE_TEXT_FIELD)
        found = _CODE_IN_TEXT.search(text)
        messages.append(
            InboxMessage(row.channel, text, found.group(1) if found else None, row.sent_at, row.visible_at)
        )
    return messages


