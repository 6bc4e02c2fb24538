"""Pure rules of staff login: usernames, password policy, TOTP steps, the network throttle and the review
flag (no I/O).

Failed logins are counted against the network they come from (all usernames, and each username from it),
never by locking the account: five wrong passwords for someone else's username must not keep its owner
out. A throttled network gets the same answer whatever username it tried; the owner, with the right
password and a fresh TOTP code from a network that is not throttled, gets in, and an account with a run of
failures is flagged for the security team to review (docs/api.md, "Wrong codes and lockouts").
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime

import pyotp

# Failed logins a network may make in a clock hour: at all, and at one username.
FAILURES_PER_IP_PER_HOUR = 20
FAILURES_PER_IP_PER_USERNAME_PER_HOUR = 5
# Failures in a row on one account (from any network) that flag it for review.
REVIEW_AFTER_FAILURES = 5
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


def network_throttled(ip_failures: int, ip_username_failures: int) -> bool:
    """Whether a network has had its failed logins this hour (counts before this attempt): its next attempt is
    refused unjudged, whatever username it names."""
    return ip_failures >= FAILURES_PER_IP_PER_HOUR or ip_username_failures >= FAILURES_PER_IP_PER_USERNAME_PER_HOUR


@dataclass(frozen=True)
class FailureOutcome:
    failed_logins: int
    flag_for_review: bool  # this failure completes a run that the security team should look at


def after_failure(failed_logins: int) -> FailureOutcome:
    """Count one more failure in a row on an account; the fifth flags it for review (and so does every fifth
    after it). The account stays open to its owner: nothing here locks it."""
    count = failed_logins + 1
    return FailureOutcome(count, count % REVIEW_AFTER_FAILURES == 0)
