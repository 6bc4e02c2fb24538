"""Pure staff-login rules: TOTP steps and replay, the network throttle and review flag, usernames and passwords."""

from __future__ import annotations

from datetime import UTC, datetime

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


def test_failures_flag_an_account_for_review_every_fifth_and_never_lock_it():
    count, flagged = 0, []
    for _ in range(10):
        outcome = staff_rules.after_failure(count)
        count = outcome.failed_logins
        flagged.append(outcome.flag_for_review)
    assert count == 10 and flagged == [False] * 4 + [True] + [False] * 4 + [True]
    assert not hasattr(outcome, "locked_until")


def test_a_network_is_throttled_at_its_hours_failures_in_all_or_at_one_username():
    per_ip, per_name = staff_rules.FAILURES_PER_IP_PER_HOUR, staff_rules.FAILURES_PER_IP_PER_USERNAME_PER_HOUR
    assert not staff_rules.network_throttled(per_ip - 1, per_name - 1)
    assert staff_rules.network_throttled(per_ip, 0)
    assert staff_rules.network_throttled(per_ip - 1, per_name)


def test_usernames_and_passwords():
    assert staff_rules.normalise_username("  Risk.Lead ") == "risk.lead"
    assert staff_rules.is_valid_username("risk.lead")
    for bad in ("ab", "1admin", "admin user", "管理员", "a" * 65):
        assert not staff_rules.is_valid_username(bad)
    assert not staff_rules.password_is_acceptable("short")
    assert staff_rules.password_is_acceptable("twelve chars")
