"""Pure rules of staff login: usernames, password policy, TOTP steps and lockout (no I/O)."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp

LOCK_AFTER_FAILURES = 5
LOCK_DURATION = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
# Accept the previous and the next 30-second step too: phones and servers drift a little.
TOTP_WINDOW = 1
USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")


def normalise_username(username: str) -> str:
    return username.strip().lower()


def is_valid_username(username: str) -> bool:
    return bool(USERNAME_PATTERN.match(username))


def password_is_acceptable(password: str) -> bool:
    return len(password) >= MIN_PASSWORD_LENGTH


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def matching_totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The 30-second step whose code equals ``code`` (within the drift window), or None."""
    code = code.strip()
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def is_replayed_step(step: int, last_used_step: int | None) -> bool:
    """A code may be used once: its step must be later than the last accepted one."""
    return last_used_step is not None and step <= last_used_step


@dataclass(frozen=True)
class FailureOutcome:
    failed_logins: int
    locked_until: datetime | None


def after_failure(failed_logins: int, now: datetime) -> FailureOutcome:
    """Count one more failure; the fifth in a row locks the account and restarts the count."""
    count = failed_logins + 1
    if count >= LOCK_AFTER_FAILURES:
        return FailureOutcome(0, now + LOCK_DURATION)
    return FailureOutcome(count, None)
