"""One-time login codes: generation, keyed hashing and the rate-limit decisions. Pure, no I/O.

The login service gathers what the database knows (the atomic counters of
:mod:`miaodai.identity.counters`, the latest code) into a :class:`SendHistory`, :class:`CapUse` values or a
:class:`ChallengeState` and asks these functions what to do, so every limit and its retry time is decided
(and unit-tested) in one place.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from miaodai.core.settings import Settings

CODE_DIGITS = 6


def generate_code() -> str:
    """A uniformly random 6-digit code from the OS's secure random source."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(key: bytes, *, phone_bidx: str, purpose: str, code: str) -> str:
    """Keyed hash of a code, bound to the number and purpose it was sent for.

    Keyed, because six digits are brute-forced in a millisecond from a plain hash;
    bound, so a stolen login code cannot pass as a step-up code or for another number.
    """
    message = f"otp-code\x00{phone_bidx}\x00{purpose}\x00{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def code_matches(key: bytes, *, phone_bidx: str, purpose: str, guess: str, stored_hash: str) -> bool:
    expected = hash_code(key, phone_bidx=phone_bidx, purpose=purpose, code=guess)
    return hmac.compare_digest(expected, stored_hash)


@dataclass(frozen=True)
class OtpLimits:
    ttl: timedelta
    max_wrong_guesses: int  # per code: the last one burns it
    resend_cooldown: timedelta
    max_per_phone_per_hour: int
    max_per_phone_per_day: int
    max_per_ip_per_hour: int
    max_per_device_per_hour: int
    max_wrong_per_ip_per_hour: int
    max_wrong_per_device_per_hour: int
    max_wrong_per_ip_per_phone_per_hour: int
    max_wrong_per_phone_per_day: int  # then the number is locked, but for devices it has logged in from

    @classmethod
    def from_settings(cls, settings: Settings) -> OtpLimits:
        return cls(
            ttl=timedelta(seconds=settings.otp_ttl_seconds),
            max_wrong_guesses=settings.otp_max_wrong_guesses,
            resend_cooldown=timedelta(seconds=settings.otp_resend_cooldown_seconds),
            max_per_phone_per_hour=settings.otp_max_per_hour,
            max_per_phone_per_day=settings.otp_max_per_day,
            max_per_ip_per_hour=settings.otp_max_per_ip_per_hour,
            max_per_device_per_hour=settings.otp_max_per_device_per_hour,
            max_wrong_per_ip_per_hour=settings.otp_max_wrong_per_ip_per_hour,
            max_wrong_per_device_per_hour=settings.otp_max_wrong_per_device_per_hour,
            max_wrong_per_ip_per_phone_per_hour=settings.otp_max_wrong_per_ip_per_phone_per_hour,
            max_wrong_per_phone_per_day=settings.otp_max_wrong_per_phone_per_day,
        )


class SendRefusal(StrEnum):
    LOCKED_OUT = "locked_out"
    COOLDOWN = "cooldown"
    PHONE_HOURLY_CAP = "phone_hourly_cap"
    PHONE_DAILY_CAP = "phone_daily_cap"
    DEVICE_HOURLY_CAP = "device_hourly_cap"
    IP_HOURLY_CAP = "ip_hourly_cap"


@dataclass(frozen=True)
class LastSend:
    created_at: datetime
    channel: str  # "sms" | "voice"
    delivery_failed: bool


@dataclass(frozen=True)
class CapUse:
    """One cap as its atomic counter stands, this request counted: ``count`` of ``limit`` in a fixed
    window that ends at ``resets_at``."""

    count: int
    limit: int
    resets_at: datetime

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit


@dataclass(frozen=True)
class SendHistory:
    """What a code request is judged on: the number's lock, its last code, and each cap with this request
    already counted (the counters are raised before the decision; a refusal rolls them back)."""

    locked_until: datetime | None
    last_send: LastSend | None
    caps: Mapping[SendRefusal, CapUse]


@dataclass(frozen=True)
class SendDecision:
    refusal: SendRefusal | None = None
    retry_at: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def cooldown_ends_at(last: LastSend | None, channel: str, cooldown: timedelta) -> datetime | None:
    if last is None:
        return None
    # A failed SMS must not make the borrower wait out the cooldown to ask for a voice call.
    if last.delivery_failed and last.channel == "sms" and channel == "voice":
        return None
    return last.created_at + cooldown


def decide_send(history: SendHistory, *, channel: str, now: datetime, limits: OtpLimits) -> SendDecision:
    """Whether a code may be sent now; if not, the refusal that lasts longest and when it ends.

    Reporting the longest one means the time we show is a time the request will succeed
    (telling someone "in 60 s" when the hourly cap holds for 40 minutes only annoys them).
    """
    candidates: list[tuple[SendRefusal, datetime | None]] = [
        (SendRefusal.LOCKED_OUT, history.locked_until),
        (SendRefusal.COOLDOWN, cooldown_ends_at(history.last_send, channel, limits.resend_cooldown)),
    ]
    for refusal in (SendRefusal.PHONE_HOURLY_CAP, SendRefusal.PHONE_DAILY_CAP, SendRefusal.DEVICE_HOURLY_CAP,
                    SendRefusal.IP_HOURLY_CAP):
        use = history.caps.get(refusal)
        candidates.append((refusal, use.resets_at if use is not None and use.exceeded else None))
    active = [(refusal, at) for refusal, at in candidates if at is not None and at > now]
    if not active:
        return SendDecision()
    refusal, retry_at = max(active, key=lambda item: item[1])  # max() keeps the first of equals
    return SendDecision(refusal, retry_at)


class GuessThrottle(StrEnum):
    """A guesser's own signal that has had its wrong codes: its guesses stop before the number is touched."""

    IP_PHONE = "ip_phone"  # this network, at this number
    DEVICE = "device"
    IP = "ip"  # this network, at any number


def guess_throttle(
    caps: Mapping[GuessThrottle, CapUse], now: datetime,
) -> tuple[GuessThrottle, datetime] | None:
    """The guesser's signal that has reached its cap of wrong codes (the longest-lasting one), or None.

    ``caps`` hold the counts *before* this guess (read, not raised): reaching the cap stops the next guess.
    """
    reached = [(throttle, use.resets_at) for throttle, use in caps.items()
               if use.count >= use.limit and use.resets_at > now]
    if not reached:
        return None
    return max(reached, key=lambda item: item[1])


def number_locked(wrong_today: CapUse, *, known_device: bool) -> datetime | None:
    """Until when the number refuses codes from this device: after the day's wrong codes, every device but
    the ones the borrower has already logged in from (the owner's phone still gets in), until the day ends."""
    if known_device or wrong_today.count < wrong_today.limit:
        return None
    return wrong_today.resets_at


class GuessOutcome(StrEnum):
    ACCEPTED = "accepted"
    NOT_REQUESTED = "not_requested"
    LOCKED_OUT = "locked_out"
    EXPIRED = "expired"
    ALREADY_USED = "already_used"
    WRONG = "wrong"
    WRONG_AND_BURNED = "wrong_and_burned"  # the last allowed wrong guess at this code: the code is burned


@dataclass(frozen=True)
class ChallengeState:
    """The latest delivered code for a number and purpose."""

    expires_at: datetime
    consumed_at: datetime | None
    wrong_guesses: int


def judge_guess(
    challenge: ChallengeState | None, *, matches: bool, locked_until: datetime | None,
    now: datetime, limits: OtpLimits,
) -> GuessOutcome:
    """What a guess at the latest code means. Checked in this order on purpose: a locked
    number learns nothing about its codes, and a used or expired code is never compared."""
    if locked_until is not None and locked_until > now:
        return GuessOutcome.LOCKED_OUT
    if challenge is None:
        return GuessOutcome.NOT_REQUESTED
    if challenge.consumed_at is not None:
        return GuessOutcome.ALREADY_USED
    if challenge.expires_at <= now:
        return GuessOutcome.EXPIRED
    if matches:
        return GuessOutcome.ACCEPTED
    if challenge.wrong_guesses + 1 >= limits.max_wrong_guesses:
        return GuessOutcome.WRONG_AND_BURNED
    return GuessOutcome.WRONG


def wrong_guesses_left(challenge: ChallengeState, limits: OtpLimits) -> int:
    """Guesses left after the one just counted."""
    return max(limits.max_wrong_guesses - challenge.wrong_guesses - 1, 0)
