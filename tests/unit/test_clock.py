"""Business dates are Asia/Shanghai dates; the clock is injectable."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from miaodai.core.clock import FixedClock, business_date, local_display, start_of_business_day


def test_utc_evening_is_already_tomorrow_in_beijing():
    assert business_date(datetime(2026, 11, 22, 16, 30, tzinfo=UTC)) == date(2026, 11, 23)
    assert business_date(datetime(2026, 11, 22, 15, 59, 59, tzinfo=UTC)) == date(2026, 11, 22)


def test_start_of_business_day_is_midnight_beijing():
    assert start_of_business_day(date(2026, 11, 23)) == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)


def test_fixed_clock_moves_only_when_told():
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.now() == clock.now()
    clock.advance(timedelta(minutes=5))
    assert clock.now() == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 1, 1))


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        business_date(datetime(2026, 1, 1))


def test_local_display_is_beijing_time():
    assert local_display(datetime(2026, 11, 22, 7, 30, tzinfo=UTC)) == "2026-11-22 15:30:00"
