"""An injectable clock and Asia/Shanghai business dates.

Code asks a :class:`Clock` for the time; tests and the end-of-day batch pass a
:class:`FixedClock` to run any date.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved; thread-safe so a test server can share it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = instant.astimezone(UTC)


def business_date(instant: datetime) -> date:
    """The Asia/Shanghai calendar date of an instant (the lender's business date)."""
    if instant.tzinfo is None:
        raise ValueError("business_date needs a timezone-aware instant")
    return instant.astimezone(BUSINESS_TZ).date()


def start_of_business_day(day: date) -> datetime:
    """00:00 Asia/Shanghai of a business date, as a UTC instant."""
    return datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ).astimezone(UTC)


def as_utc(instant: datetime) -> datetime:
    """Treat a naive datetime read back from SQLite as UTC; convert aware ones to UTC."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def local_display(instant: datetime) -> str:
    """A human time in Beijing time, e.g. for "locked until 15:30" messages."""
    return as_utc(instant).astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M:%S")
