"""The login error catalog: every error renders in both languages, says what to do, and limits
say when to come back — in the message, in params and as Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from miaodai.core.errors import DomainError, ErrorSpec
from miaodai.identity.login_errors import (
    DEVICE_KEY_PROBLEMS,
    PHONE_REJECTIONS,
    SEND_REFUSALS,
    LoginErrors,
    locked_out,
    retry_later,
)
from miaodai.identity.otp import SendRefusal

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
SPECS = [value for value in vars(LoginErrors).values() if isinstance(value, ErrorSpec)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.code)
def test_every_login_error_is_bilingual_and_says_what_to_do(spec):
    params = {"attempts_left": 3, "ttl_minutes": 5, "step_up_ttl_seconds": 300, "session_id": 7, "limit": 5,
              "channel": "sms"}
    error = locked_out(spec, now=NOW, locked_until=NOW + timedelta(minutes=30))
    problem = DomainError(spec, params={**error.params, **params}).problem()
    assert problem["code"] == spec.code and 400 <= problem["status"] < 600 and problem["status"] != 500
    assert problem["message_zh"] and problem["message_en"] and "{" not in problem["message_en"]
    assert problem["action"]["zh"] and problem["action"]["en"] and "{" not in problem["action"]["en"]


def test_codes_are_unique_and_every_refusal_has_its_error():
    assert len({spec.code for spec in SPECS}) == len(SPECS)
    assert set(SEND_REFUSALS) == set(SendRefusal)
    assert len(set(PHONE_REJECTIONS.values())) == len(PHONE_REJECTIONS)
    assert len(set(DEVICE_KEY_PROBLEMS.values())) == len(DEVICE_KEY_PROBLEMS)


def test_a_limit_says_when_to_retry_in_beijing_time_and_as_retry_after():
    error = retry_later(LoginErrors.OTP_PHONE_HOURLY_LIMIT, now=NOW, retry_at=NOW + timedelta(minutes=10, seconds=0.2),
                        limit=5)
    assert error.headers == {"Retry-After": "601"}  # rounded up: retrying at 600 s would still be refused
    assert error.params["retry_after_seconds"] == 601
    assert "2026-11-22 10:10:00（北京时间）" in error.message_zh
    assert "after 2026-11-22 10:10:00 (Beijing time)" in error.message_en


def test_a_lockout_names_the_instant_it_ends():
    error = locked_out(LoginErrors.LOGIN_LOCKED, now=NOW, locked_until=NOW + timedelta(minutes=30))
    assert error.params["locked_until"] == "2026-11-22T02:30:00+00:00"
    assert error.headers == {"Retry-After": "1800"}
    assert "锁定至 2026-11-22 10:30:00（北京时间）" in error.message_zh
