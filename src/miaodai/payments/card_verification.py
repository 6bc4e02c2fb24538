"""Four-element card verification (四要素鉴权: name, ID number, card number, the phone reserved at the
bank) as a Protocol, and a sandbox bank that really sends its code.

A real verifier (UnionPay or a payment company's 鉴权绑卡 API) checks the four elements against the
issuing bank's records and has the bank send a one-time code to the card's reserved phone; binding
completes only when the borrower types that code back. The sandbox does the same: it "sends" the
code as the bank's SMS through the sandbox SMS carrier (readable at ``/sandbox/sms/{phone}``), and
documented test cards (docs/sandbox.md) produce each failure the real thing can.

Every start has the bank text a phone that need not be the borrower's own, so starts are capped
(:func:`count_start`) per borrower and per reserved phone per Beijing day, on the atomic counters of
:mod:`miaodai.identity.counters`: exactly the cap gets through, however many arrive at once.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from hashlib import sha256
from typing import Protocol

from sqlalchemy.orm import Session

from miaodai.core.providers import ProviderTimeout, SandboxParty
from miaodai.identity import counters
from miaodai.identity.models import OtpChannel
from miaodai.identity.sms import SmsProvider
from miaodai.payments.bins import sandbox_number


class VerificationOutcome(StrEnum):
    CODE_SENT = "code_sent"
    ELEMENTS_MISMATCH = "elements_mismatch"  # name / ID number do not match the account holder
    PHONE_MISMATCH = "phone_mismatch"  # not the phone reserved at the bank
    CARD_FROZEN = "card_frozen"  # frozen, reported lost, or closed


@dataclass(frozen=True)
class VerificationStarted:
    outcome: VerificationOutcome
    provider_ref: str | None = None  # set when the code was sent



class StartCap(StrEnum):
    BORROWER = "borrower"
    RESERVED_PHONE = "reserved_phone"


@dataclass(frozen=True)
class StartRefused:
    cap: StartCap
    limit: int
    until: datetime  # the end of the Beijing day


def count_start(session: Session, *, borrower_id: int, reserved_phone_bidx: str, now: datetime,
                per_borrower: int, per_phone: int) -> StartRefused | None:
    """Count one start against the borrower's and the reserved phone's day, in one upsert that keeps both rows
    locked until the caller's transaction ends; the refusal when either is over its cap (``per_borrower`` and
    ``per_phone`` a Beijing day: the settings ``card_binding_codes_per_*``). The caller raises the refusal,
    rolling the count back, and never asks the bank."""
    Kind = counters.Kind  # noqa: N806
    counts = counters.bump(session, [counters.Bump(Kind.BIND_BORROWER_DAY, str(borrower_id)),
                                     counters.Bump(Kind.BIND_PHONE_DAY, reserved_phone_bidx)], now)
    for cap, kind, limit in ((StartCap.RESERVED_PHONE, Kind.BIND_PHONE_DAY, per_phone),
                             (StartCap.BORROWER, Kind.BIND_BORROWER_DAY, per_borrower)):
        if counts[kind].over(limit):
            return StartRefused(cap, limit, counts[kind].resets_at)
    return None


class CardVerifier(Protocol):
    def start(self, *, name: str, id_number: str, card_number: str, reserved_phone_e164: str,
              bank_name_zh: str) -> VerificationStarted:
        """Check the four elements and have the bank send its code; raises ProviderTimeout."""
        ...

    def confirm(self, provider_ref: str, code: str) -> bool:
        """Whether ``code`` is the one the bank sent for ``provider_ref``; raises ProviderTimeout."""
        ...


# Sandbox test cards (valid numbers of real BIN ranges; docs/sandbox.md). Any other debit card of a
# supported bank verifies and gets its code.
SANDBOX_CARD_OK = sandbox_number("622202", 19, "1000000001")  # 工商银行 debit
SANDBOX_CARD_ELEMENTS_MISMATCH = sandbox_number("622202", 19, "1000000002")
SANDBOX_CARD_PHONE_MISMATCH = sandbox_number("622202", 19, "1000000003")
SANDBOX_CARD_FROZEN = sandbox_number("622202", 19, "1000000004")
SANDBOX_CARD_TIMEOUT = sandbox_number("622202", 19, "1000000005")

_OUTCOMES = {
    SANDBOX_CARD_ELEMENTS_MISMATCH: VerificationOutcome.ELEMENTS_MISMATCH,
    SANDBOX_CARD_PHONE_MISMATCH: VerificationOutcome.PHONE_MISMATCH,
    SANDBOX_CARD_FROZEN: VerificationOutcome.CARD_FROZEN,
}


class SandboxCardVerifier(SandboxParty):
    """The sandbox bank. Stateless: the code is a keyed hash of the reference, so any worker process
    (they share ``secret``) can check it."""

    def __init__(self, sms: SmsProvider, secret: bytes, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._sms = sms
        self._secret = secret

    def _code(self, provider_ref: str) -> str:
        digest = hmac.new(self._secret, provider_ref.encode(), sha256).digest()
        return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"

    def start(self, *, name: str, id_number: str, card_number: str, reserved_phone_e164: str,
              bank_name_zh: str) -> VerificationStarted:
        if card_number == SANDBOX_CARD_TIMEOUT:
            raise self._time_out("sandbox card verification")
        self._answer_after_latency()
        outcome = _OUTCOMES.get(card_number)
        if outcome is not None:
            return VerificationStarted(outcome)
        provider_ref = "sbxv_" + secrets.token_hex(12)
        text = (f"【{bank_name_zh}】验证码 {self._code(provider_ref)}，您正在秒贷绑定尾号 {card_number[-4:]} 的银行卡，"
                "5 分钟内有效，请勿告诉他人。")
        delivery = self._sms.send(reserved_phone_e164, text, OtpChannel.SMS)
        if not delivery.accepted:  # the bank's own SMS did not go out: as good as no answer
            raise ProviderTimeout("sandbox card verification", 0)
        return VerificationStarted(VerificationOutcome.CODE_SENT, provider_ref)

    def confirm(self, provider_ref: str, code: str) -> bool:
        self._answer_after_latency()
        return hmac.compare_digest(self._code(provider_ref), code)
