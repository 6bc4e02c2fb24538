"""One-time code rules: codes, keyed hashes, resend cooldown, caps, wrong guesses and lockout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from miaodai.core.settings import Settings
from miaodai.identity import otp
from miaodai.identity.otp import GuessOutcome, LastSend, SendHistory, SendRefusal

KEY = b"\x01" * 32
PHONE = "ab" * 32
LIMITS = otp.OtpLimits.from_settings(Settings(_env_file=None))
# 10:00 Beijing time on 22 November 2026.
NOW = datetime(2026, 11, 22, 2, 0, 0, tzinfo=UTC)


def history(**overrides) -> SendHistory:
    values = dict(locked_until=None, last_send=None, caps={})
    values.update(overrides)
    return SendHistory(**values)


HOUR_ENDS = NOW + timedelta(hours=1)


def cap(count: int, limit: int, resets_at: datetime = HOUR_ENDS) -> otp.CapUse:
    return otp.CapUse(count, limit, resets_at)


def minutes_ago(*minutes: float) -> list[datetime]:
    return [NOW - timedelta(minutes=m) for m in minutes]


def test_limits_come_from_the_settings_defaults():
    expected = otp.OtpLimits(
        ttl=timedelta(minutes=5), max_wrong_guesses=5, resend_cooldown=timedelta(seconds=60),
        max_per_phone_per_hour=5, max_per_phone_per_day=10, max_per_ip_per_hour=30,
        max_per_device_per_hour=10, max_wrong_per_ip_per_hour=30, max_wrong_per_device_per_hour=10,
        max_wrong_per_ip_per_phone_per_hour=5, max_wrong_per_phone_per_day=10,
    )
    assert expected == LIMITS


@given(st.integers(min_value=0, max_value=50))
def test_codes_are_six_digits(_):
    code = otp.generate_code()
    assert len(code) == 6 and code.isdigit()


def test_codes_are_not_repeated_in_a_small_sample():
    assert len({otp.generate_code() for _ in range(200)}) > 190


def test_code_hash_known_answer():
    assert otp.hash_code(KEY, phone_bidx=PHONE, purpose="login", code="123456") == (
        "25e1bcd9cc1aeb5a6a3eb376d3225103633db50d495a388ddd221508dd3b9d94"
    )


def test_a_code_hash_is_bound_to_its_purpose_number_and_key():
    login = otp.hash_code(KEY, phone_bidx=PHONE, purpose="login", code="123456")
    assert otp.hash_code(KEY, phone_bidx=PHONE, purpose="step_up", code="123456") == (
        "6cb4640073c96aa71bee43c9c33547140403ae44126c7fd90c2bd7bcf0c05a04"
    )
    assert otp.hash_code(KEY, phone_bidx="cd" * 32, purpose="login", code="123456") != login
    assert otp.hash_code(b"\x02" * 32, phone_bidx=PHONE, purpose="login", code="123456") != login
    assert otp.code_matches(KEY, phone_bidx=PHONE, purpose="login", guess="123456", stored_hash=login)
    assert not otp.code_matches(KEY, phone_bidx=PHONE, purpose="step_up", guess="123456", stored_hash=login)
    assert not otp.code_matches(KEY, phone_bidx=PHONE, purpose="login", guess="123457", stored_hash=login)


def test_a_first_code_is_allowed():
    assert otp.decide_send(history(), channel="sms", now=NOW, limits=LIMITS).allowed


def test_a_second_code_within_60_seconds_waits_for_the_cooldown():
    last = LastSend(NOW - timedelta(seconds=20), "sms", delivery_failed=False)
    decision = otp.decide_send(history(last_send=last, caps={SendRefusal.PHONE_HOURLY_CAP: cap(2, 5)}),
                               channel="sms", now=NOW, limits=LIMITS)
    assert decision == otp.SendDecision(SendRefusal.COOLDOWN, NOW + timedelta(seconds=40))


def test_the_cooldown_ends_after_exactly_60_seconds():
    last = LastSend(NOW - timedelta(seconds=60), "sms", delivery_failed=False)
    assert otp.decide_send(history(last_send=last), channel="sms", now=NOW, limits=LIMITS).allowed


def test_a_voice_code_right_after_a_failed_sms_skips_the_cooldown():
    failed_sms = LastSend(NOW - timedelta(seconds=1), "sms", delivery_failed=True)
    assert otp.decide_send(history(last_send=failed_sms), channel="voice", now=NOW, limits=LIMITS).allowed
    # ...but not another SMS, and not a voice code after a failed voice call.
    assert not otp.decide_send(history(last_send=failed_sms), channel="sms", now=NOW, limits=LIMITS).allowed
    failed_voice = LastSend(NOW - timedelta(seconds=1), "voice", delivery_failed=True)
    assert not otp.decide_send(history(last_send=failed_voice), channel="voice", now=NOW, limits=LIMITS).allowed


def test_a_cap_refuses_only_the_request_over_it_until_its_window_ends():
    at_cap = history(caps={SendRefusal.PHONE_HOURLY_CAP: cap(5, 5)})
    assert otp.decide_send(at_cap, channel="sms", now=NOW, limits=LIMITS).allowed
    over = history(caps={SendRefusal.PHONE_HOURLY_CAP: cap(6, 5)})
    assert otp.decide_send(over, channel="sms", now=NOW, limits=LIMITS) == otp.SendDecision(
        SendRefusal.PHONE_HOURLY_CAP, HOUR_ENDS)


def test_the_eleventh_code_of_the_day_waits_until_midnight_beijing_time():
    midnight = datetime(2026, 11, 22, 16, tzinfo=UTC)  # 23 Nov 00:00 in Beijing
    decision = otp.decide_send(history(caps={SendRefusal.PHONE_DAILY_CAP: cap(11, 10, midnight)}), channel="sms",
                               now=NOW, limits=LIMITS)
    assert decision == otp.SendDecision(SendRefusal.PHONE_DAILY_CAP, midnight)


def test_per_device_and_per_ip_hourly_caps():
    device = otp.decide_send(history(caps={SendRefusal.DEVICE_HOURLY_CAP: cap(11, 10)}), channel="sms", now=NOW,
                             limits=LIMITS)
    assert device == otp.SendDecision(SendRefusal.DEVICE_HOURLY_CAP, HOUR_ENDS)
    ip = otp.decide_send(history(caps={SendRefusal.IP_HOURLY_CAP: cap(31, 30)}), channel="sms", now=NOW,
                         limits=LIMITS)
    assert ip == otp.SendDecision(SendRefusal.IP_HOURLY_CAP, HOUR_ENDS)
    assert otp.decide_send(history(caps={SendRefusal.IP_HOURLY_CAP: cap(30, 30)}), channel="sms", now=NOW,
                           limits=LIMITS).allowed


def test_a_locked_number_gets_no_code_until_the_lock_ends():
    until = NOW + timedelta(minutes=12)
    assert otp.decide_send(history(locked_until=until), channel="sms", now=NOW, limits=LIMITS) == (
        otp.SendDecision(SendRefusal.LOCKED_OUT, until)
    )
    assert otp.decide_send(history(locked_until=NOW), channel="sms", now=NOW, limits=LIMITS).allowed


def test_when_several_limits_hold_the_one_that_lasts_longest_is_reported():
    last = LastSend(NOW - timedelta(seconds=30), "sms", delivery_failed=False)
    decision = otp.decide_send(
        history(last_send=last, caps={SendRefusal.PHONE_HOURLY_CAP: cap(6, 5, NOW + timedelta(minutes=5))}),
        channel="sms", now=NOW, limits=LIMITS,
    )
    assert decision == otp.SendDecision(SendRefusal.PHONE_HOURLY_CAP, NOW + timedelta(minutes=5))


def test_a_guessers_signal_is_stopped_once_it_has_had_its_wrong_codes():
    assert otp.guess_throttle({otp.GuessThrottle.IP_PHONE: cap(4, 5)}, NOW) is None
    throttles = {otp.GuessThrottle.IP_PHONE: cap(5, 5), otp.GuessThrottle.DEVICE: cap(10, 10, NOW + timedelta(1))}
    assert otp.guess_throttle(throttles, NOW) == (otp.GuessThrottle.DEVICE, NOW + timedelta(1))


def test_a_number_is_locked_after_its_days_wrong_codes_but_not_for_the_owners_devices():
    midnight = datetime(2026, 11, 22, 16, tzinfo=UTC)
    assert otp.number_locked(cap(9, 10, midnight), known_device=False) is None
    assert otp.number_locked(cap(10, 10, midnight), known_device=False) == midnight
    assert otp.number_locked(cap(10, 10, midnight), known_device=True) is None


def challenge(**overrides) -> otp.ChallengeState:
    values = dict(expires_at=NOW + timedelta(minutes=4), consumed_at=None, wrong_guesses=0)
    values.update(overrides)
    return otp.ChallengeState(**values)


def judge(state, *, matches=True, locked_until=None):
    return otp.judge_guess(state, matches=matches, locked_until=locked_until, now=NOW, limits=LIMITS)


def test_the_right_code_in_time_is_accepted():
    assert judge(challenge()) is GuessOutcome.ACCEPTED


def test_guesses_are_refused_in_order_lock_then_missing_then_used_then_expired():
    assert judge(challenge(), locked_until=NOW + timedelta(seconds=1)) is GuessOutcome.LOCKED_OUT
    assert judge(None) is GuessOutcome.NOT_REQUESTED
    assert judge(challenge(consumed_at=NOW, expires_at=NOW)) is GuessOutcome.ALREADY_USED
    assert judge(challenge(expires_at=NOW)) is GuessOutcome.EXPIRED


def test_four_wrong_guesses_count_down_and_the_fifth_burns_the_code():
    left = []
    for wrong_so_far in range(4):
        state = challenge(wrong_guesses=wrong_so_far)
        assert judge(state, matches=False) is GuessOutcome.WRONG
        left.append(otp.wrong_guesses_left(state, LIMITS))
    assert left == [4, 3, 2, 1]
    assert judge(challenge(wrong_guesses=4), matches=False) is GuessOutcome.WRONG_AND_BURNED


def test_a_right_code_after_wrong_guesses_still_works_while_some_remain():
    assert judge(challenge(wrong_guesses=4)) is GuessOutcome.ACCEPTED
