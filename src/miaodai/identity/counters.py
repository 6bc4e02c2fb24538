"""Atomic counters behind every abuse cap: SMS codes per network, device and number; wrong codes; the bank's
binding codes; staff login failures. One mechanism, so each cap holds under concurrency on both databases.

A counter is one row per (kind, key, fixed window) in ``rate_counters``. :func:`bump` raises any number of
them in ONE statement, ``INSERT … VALUES (…), (…) ON CONFLICT (kind, key, window_start) DO UPDATE SET
n = rate_counters.n + excluded.n RETURNING kind, n`` (SQLAlchemy's PostgreSQL and SQLite dialect inserts),
and returns each count *after* the increment. The upsert takes the row's lock until the transaction ends, so
two requests released together are counted one after the other and the second sees the first: a caller that
refuses when the returned count is over the cap, and lets the refusal roll its transaction back, admits
exactly the cap. A delta of 0 reads a count under the same lock without raising it (a wrong code is counted
only once it is known to be wrong, while the row stays locked in between).

Windows are fixed: the clock hour, or the Beijing business day. A refused caller is told the window's end.
Rows are taken in a fixed order of kind (:data:`KIND_ORDER`) so two transactions never wait on each other
in a circle. Keys that are personal data (phone numbers, device ids, addresses) are the callers' HMAC blind
indexes, never the clear value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import TextClause, bindparam, delete, select, text
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date, start_of_business_day
from miaodai.core.db import dialect_insert, table_of
from miaodai.identity.models import RateCounter


class Span(StrEnum):
    HOUR = "hour"
    DAY = "day"  # the Beijing business day


class Kind(StrEnum):
    """Every counter there is; the value is stored, so never rename one."""

    SMS_IP_HOUR = "sms.ip.h"
    SMS_DEVICE_HOUR = "sms.device.h"
    SMS_PHONE_HOUR = "sms.phone.h"
    SMS_PHONE_DAY = "sms.phone.d"
    WRONG_IP_HOUR = "wrong.ip.h"
    WRONG_DEVICE_HOUR = "wrong.device.h"
    WRONG_IP_PHONE_HOUR = "wrong.ip_phone.h"
    WRONG_PHONE_DAY = "wrong.phone.d"
    BIND_BORROWER_DAY = "bind.borrower.d"
    BIND_PHONE_DAY = "bind.phone.d"
    STAFF_IP_HOUR = "staff.ip.h"
    STAFF_IP_USER_HOUR = "staff.ip_user.h"
    CREDIT_APPLICATION_DAY = "credit.application.d"  # a borrower's credit applications that asked the bureau
    REVEAL_STAFF_HOUR = "reveal.staff.h"  # personal data a staff member revealed (backoffice.reveal)
    REVEAL_STAFF_DAY = "reveal.staff.d"


SPANS: dict[Kind, Span] = {
    Kind.SMS_IP_HOUR: Span.HOUR, Kind.SMS_DEVICE_HOUR: Span.HOUR, Kind.SMS_PHONE_HOUR: Span.HOUR,
    Kind.SMS_PHONE_DAY: Span.DAY, Kind.WRONG_IP_HOUR: Span.HOUR, Kind.WRONG_DEVICE_HOUR: Span.HOUR,
    Kind.WRONG_IP_PHONE_HOUR: Span.HOUR, Kind.WRONG_PHONE_DAY: Span.DAY, Kind.BIND_BORROWER_DAY: Span.DAY,
    Kind.BIND_PHONE_DAY: Span.DAY, Kind.STAFF_IP_HOUR: Span.HOUR, Kind.STAFF_IP_USER_HOUR: Span.HOUR,
    Kind.CREDIT_APPLICATION_DAY: Span.DAY, Kind.REVEAL_STAFF_HOUR: Span.HOUR, Kind.REVEAL_STAFF_DAY: Span.DAY,
}
# The order rows are locked in: attacker signals before the victim's own keys.
KIND_ORDER: dict[Kind, int] = {kind: rank for rank, kind in enumerate(Kind)}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def window_of(span: Span, now: datetime) -> Window:
    if span is Span.HOUR:
        start = now.replace(minute=0, second=0, microsecond=0)
        return Window(start, start + timedelta(hours=1))
    day = business_date(now)
    return Window(start_of_business_day(day), start_of_business_day(day + timedelta(days=1)))


def pair_key(*parts: str) -> str:
    """One key for a pair of keys (e.g. a network's guesses at one number): a hash of blind indexes."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Bump:
    kind: Kind
    key: str
    delta: int = 1


@dataclass(frozen=True)
class Count:
    """A counter's value after the bump, and when its window (and so any refusal it causes) ends."""

    n: int
    resets_at: datetime

    def over(self, cap: int) -> bool:
        """True once the count exceeds the cap: this request is the one too many."""
        return self.n > cap

    def reached(self, cap: int) -> bool:
        """True once the count has reached the cap (for counts read with delta 0, before the next one)."""
        return self.n >= cap


def bump(session: Session, bumps: Sequence[Bump], now: datetime) -> dict[Kind, Count]:
    """Raise the counters by their deltas in one statement and return each one's value afterwards.

    One key per kind in a call. Runs inside the caller's transaction; the rows stay locked until it ends.
    """
    if not bumps:
        return {}
    ordered = sorted(bumps, key=lambda b: KIND_ORDER[b.kind])
    if len({b.kind for b in ordered}) != len(ordered):
        raise ValueError("one key per kind in a bump")
    windows = {b.kind: window_of(SPANS[b.kind], now) for b in ordered}
    params: dict[str, Any] = {}
    for i, b in enumerate(ordered):
        params.update({f"kind_{i}": b.kind.value, f"key_{i}": b.key, f"start_{i}": windows[b.kind].start,
                       f"end_{i}": windows[b.kind].end, f"delta_{i}": b.delta})
    found = {Kind(kind): n for kind, n in session.execute(_upsert(len(ordered)), params).all()}
    return {kind: Count(found[kind], windows[kind].end) for kind in windows}


@cache
def _upsert(rows: int) -> TextClause:
    """:func:`bump`'s statement for ``rows`` counters, built once: a multi-row upsert whose values are bind
    parameters (``kind_0``, ``key_0``, ``start_0``, ``end_0``, ``delta_0``, ...), the same SQL on SQLite and
    PostgreSQL. As text, so SQLAlchemy compiles it once: it never caches a multi-row ``insert().values([...])``
    (no cache key), and compiling that one again cost about 3 ms of CPU a bump, for every SMS code sent and
    every code checked."""
    table = table_of(RateCounter)
    c = table.c
    names = ("kind", "key", "start", "end", "delta")
    types = (c.kind.type, c.key.type, c.window_start.type, c.window_end.type, c.n.type)
    rows_sql = ", ".join("(" + ", ".join(f":{name}_{i}" for name in names) + ")" for i in range(rows))
    binds = [bindparam(f"{name}_{i}", type_=type_)
             for i in range(rows) for name, type_ in zip(names, types, strict=True)]
    # The table's name and numbered placeholders only: every value is a bound parameter.
    sql = (f'INSERT INTO {table.name} (kind, "key", window_start, window_end, n) VALUES {rows_sql} '  # noqa: S608
           f'ON CONFLICT (kind, "key", window_start) DO UPDATE SET n = {table.name}.n + excluded.n RETURNING kind, n')
    return text(sql).bindparams(*binds)


def one_bump(dialect: str) -> Any:
    """:func:`bump` of one counter as a statement built once, to send as it is or to put into a caller's own
    statement (a data-modifying CTE on PostgreSQL, ``core.db.selects_may_write``): bind parameters
    :func:`one_bump_params`; returns the counter's value after the increment (``n``)."""
    values = dialect_insert(dialect)(RateCounter).values(
        kind=bindparam("counter_kind"), key=bindparam("counter_key"), window_start=bindparam("counter_start"),
        window_end=bindparam("counter_end"), n=bindparam("counter_delta"))
    return values.on_conflict_do_update(
        index_elements=[RateCounter.kind, RateCounter.key, RateCounter.window_start],
        set_={"n": RateCounter.n + values.excluded.n},
    ).returning(RateCounter.n)


def one_bump_params(kind: Kind, key: str, now: datetime, delta: int = 1) -> dict[str, Any]:
    window = window_of(SPANS[kind], now)
    return {"counter_kind": kind.value, "counter_key": key, "counter_start": window.start,
            "counter_end": window.end, "counter_delta": delta}


def peek(session: Session, kind: Kind, key: str, now: datetime) -> Count:
    """A counter's value in the current window, read without a lock or a write (0 when it has no row): for a
    cheap early refusal before slow work; the decision that counts is made under :func:`bump`'s lock."""
    window = window_of(SPANS[kind], now)
    n = session.execute(select(RateCounter.n).where(
        RateCounter.kind == kind.value, RateCounter.key == key, RateCounter.window_start == window.start,
    )).scalar_one_or_none()
    return Count(n or 0, window.end)


def purge_expired(session: Session, now: datetime, *, keep: timedelta = timedelta(days=2)) -> int:
    """Delete counters whose window ended more than ``keep`` ago; returns how many went."""
    result = session.execute(delete(RateCounter).where(RateCounter.window_end < now - keep))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
