"""One-time login codes: generation, keyed hashing and the rate-limit decisions. Pure, no I/O.

The login service gathers what the database knows about recent codes into a
:class:`SendHistory` or :class:`ChallengeState` and asks these functions what to do,
so every limit and its retry time is decided (and unit-tested) in one place.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from miaodai.core.clock import business_date, start_of_business_day
from miaodai.core.settings import Settings

CODE_DIGITS = 6
HOUR = timedelta(hours=1)


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
    max_wrong_guesses: int
    resend_cooldown: timedelta
    max_per_phone_per_hour: int
    max_per_phone_per_day: int
    max_per_ip_per_hour: int
    max_per_device_per_hour: int
    lockout: timedelta

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
            lockout=timedelta(minutes=settings.otp_lockout_minutes),
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
class SendHistory:
    """Recent codes as the store sees them. Each list holds at most the cap's worth of the
    most recent timestamps inside its window (that is all a decision needs)."""

    locked_until: datetime | None
    last_send: LastSend | None
    phone_sends_last_hour: Sequence[datetime]
    phone_sends_today: int
    device_sends_last_hour: Sequence[datetime]
    ip_sends_last_hour: Sequence[datetime]


@dataclass(frozen=True)
class SendDecision:
    refusal: SendRefusal | None = None
    retry_at: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def window_cap_retry_at(recent: Sequence[datetime], cap: int, window: timedelta) -> datetime | None:
    """When a sliding-window cap frees up again, or None if it is not reached.

    With ``cap`` sends inside the window, one more is allowed once the cap-th most
    recent of them leaves the window.
    """
    if len(recent) < cap:
        return None
    newest_first = sorted(recent, reverse=True)
    return newest_first[cap - 1] + window


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
    tomorrow = start_of_business_day(business_date(now) + timedelta(days=1))
    candidates: list[tuple[SendRefusal, datetime | None]] = [
        (SendRefusal.LOCKED_OUT, history.locked_until),
        (SendRefusal.COOLDOWN, cooldown_ends_at(history.last_send, channel, limits.resend_cooldown)),
        (SendRefusal.PHONE_HOURLY_CAP,
         window_cap_retry_at(history.phone_sends_last_hour, limits.max_per_phone_per_hour, HOUR)),
        (SendRefusal.PHONE_DAILY_CAP,
         tomorrow if history.phone_sends_today >= limits.max_per_phone_per_day else None),
        (SendRefusal.DEVICE_HOURLY_CAP,
         window_cap_retry_at(history.device_sends_last_hour, limits.max_per_device_per_hour, HOUR)),
        (SendRefusal.IP_HOURLY_CAP,
         window_cap_retry_at(history.ip_sends_last_hour, limits.max_per_ip_per_hour, HOUR)),
    ]
    active = [(refusal, at) for refusal, at in candidates if at is not None and at > now]
    if not active:
        return SendDecision()
    refusal, retry_at = max(active, key=lambda item: item[1])  # max() keeps the first of equals
    return SendDecision(refusal, retry_at)


class GuessOutcome(StrEnum):
    ACCEPTED = "accepted"
    NOT_REQUESTED = "not_requested"
    LOCKED_OUT = "locked_out"
    EXPIRED = "expired"
    ALREADY_USED = "already_used"
    WRONG = "wrong"
    WRONG_AND_BURNED = "wrong_and_burned"  # the last allowed wrong guess: code burned, number locked


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
