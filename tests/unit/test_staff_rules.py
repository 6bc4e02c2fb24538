"""Pure staff-login rules: TOTP steps and replay, lockout counting, usernames and passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp

from miaodai.identity import staff_rules

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 11, 22, 2, 0, 15, tzinfo=UTC)


def test_the_current_code_matches_its_step():
    totp = pyotp.TOTP(SECRET)
    assert staff_rules.matching_totp_step(SECRET, totp.at(NOW), NOW) == totp.timecode(NOW)


def test_one_step_of_drift_either_way_is_accepted_but_not_two():
    totp = pyotp.TOTP(SECRET)
    step = totp.timecode(NOW)
    for drift in (-1, 1):
        assert staff_rules.matching_totp_step(SECRET, totp.generate_otp(step + drift), NOW) == step + drift
    for drift in (-2, 2):
        assert staff_rules.matching_totp_step(SECRET, totp.generate_otp(step + drift), NOW) is None


def test_malformed_codes_never_match():
    for code in ("", "12345", "1234567", "abcdef", "12 345"):
        assert staff_rules.matching_totp_step(SECRET, code, NOW) is None


def test_a_step_is_a_replay_unless_later_than_the_last_accepted():
    assert not staff_rules.is_replayed_step(100, None)
    assert staff_rules.is_replayed_step(100, 100)
    assert staff_rules.is_replayed_step(99, 100)
    assert not staff_rules.is_replayed_step(101, 100)


def test_the_fifth_failure_locks_for_fifteen_minutes_and_restarts_the_count():
    count = 0
    for _ in range(4):
        outcome = staff_rules.after_failure(count, NOW)
        assert outcome.locked_until is None
        count = outcome.failed_logins
    assert count == 4
    fifth = staff_rules.after_failure(count, NOW)
    assert fifth == staff_rules.FailureOutcome(0, NOW + timedelta(minutes=15))
    assert staff_rules.is_locked(fifth.locked_until, NOW + timedelta(minutes=14, seconds=59))
    assert not staff_rules.is_locked(fifth.locked_until, NOW + timedelta(minutes=15))


def test_usernames_and_passwords():
    assert staff_rules.normalise_username("  Risk.Lead ") == "risk.lead"
    assert staff_rules.is_valid_username("risk.lead")
    for bad in ("ab", "1admin", "admin user", "管理员", "a" * 65):
        assert not staff_rules.is_valid_username(bad)
    assert not staff_rules.password_is_acceptable("short")
    assert staff_rules.password_is_acceptable("twelve chars")
