"""Daily roll-ups (日汇总) behind the dashboards: the catch-up loop, the mark of the last day rolled up, and the
split of a date range into the rolled-up days and the live tail.

A roll-up is keyed by the Beijing day an immutable event happened (an application made, an order becoming
final, a callback received), so once that day is over its rows never change. The end-of-day batch rolls up
every closed day not yet rolled up (:func:`catch_up`): per day, in one transaction, delete that day's rows,
insert them again from the base table, and move the mark (``dashboard_rollup_marks``) — safe to run again
and after a crash (a day is rolled up wholly or not at all). A figure over a range reads the roll-up's rows
for the days up to the mark and the base table, live, for the days after it (:func:`split`), so it is exact
and current. Each domain owns its roll-up tables and their queries; this module only keeps the marks.

Readers take the mark first and read the roll-up only up to it: a day rolled up by a concurrent batch after
the mark was read is read live, once, never twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import Date, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from miaodai.core.clock import BUSINESS_TZ
from miaodai.core.db import Base, Database, UTCDateTime, dialect_of

# A day is rolled up only this long after it ended: a row stamped just before midnight by a transaction that
# commits just after it (an application decided at 23:59:59.9, an order settled then) is in before the roll-up.
SETTLE_MARGIN = timedelta(minutes=1)


class RollupMark(Base):
    """The last day a roll-up holds (every day up to it, none after)."""

    __tablename__ = "dashboard_rollup_marks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    through: Mapped[date] = mapped_column(Date)
    rolled_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DailyRollup(Protocol):
    """One domain's roll-up: its name (the mark's key), the first day with anything to roll up, and the
    statements that (re)write one day's rows in the caller's transaction (returning the rows written)."""

    name: str

    def first_day(self, session: Session) -> date | None: ...

    def roll_day(self, session: Session, day: date) -> int: ...


def instant(day: date) -> datetime:
    """The start of a Beijing business date, as an aware instant (timestamps are stored in UTC)."""
    return datetime.combine(day, time(0), tzinfo=BUSINESS_TZ)


def last_closed_day(now: datetime) -> date:
    """The last Beijing business date that ended at least :data:`SETTLE_MARGIN` before ``now``."""
    return (now - SETTLE_MARGIN).astimezone(BUSINESS_TZ).date() - timedelta(days=1)


def rolled_through(session: Session, name: str) -> date | None:
    """The last day the roll-up ``name`` holds, None before its first roll-up."""
    return session.execute(select(RollupMark.through).where(RollupMark.name == name)).scalar_one_or_none()


@dataclass(frozen=True)
class Split:
    """A range ``since``–``until`` cut at a roll-up's mark: the days the roll-up answers (``rolled``: the
    range's days up to the mark, or None) and the days read live (``live``: after the mark, or None)."""

    rolled: tuple[date, date] | None
    live: tuple[date, date] | None


def split(since: date, until: date, through: date | None) -> Split:
    if through is None or through < since:
        return Split(None, (since, until))
    if through >= until:
        return Split((since, until), None)
    return Split((since, through), (through + timedelta(days=1), until))


@dataclass
class CatchUp:
    days: int = 0
    rows: int = 0


def catch_up(db: Database, rollup: DailyRollup, *, through: date, now: datetime) -> CatchUp:
    """Roll up every day after the mark (or from the first day with anything in it) through ``through``,
    capped at the last closed day; one transaction per day: delete, insert, move the mark."""
    through = min(through, last_closed_day(now))
    with db.transaction() as session:
        mark = rolled_through(session, rollup.name)
        start = mark + timedelta(days=1) if mark is not None else rollup.first_day(session)
    done = CatchUp()
    if start is None:
        return done
    day = start
    while day <= through:
        with db.transaction() as session:
            done.rows += rollup.roll_day(session, day)
            _mark(session, rollup.name, day, now)
        done.days += 1
        day += timedelta(days=1)
    return done


def _mark(session: Session, name: str, day: date, now: datetime) -> None:
    row = session.get(RollupMark, name)
    if row is None:
        session.add(RollupMark(name=name, through=day, rolled_at=now))
    else:
        row.through, row.rolled_at = day, now
    session.flush()


def catch_up_all(db: Database, rollups: Sequence[DailyRollup], *, through: date, now: datetime) -> dict[str, int]:
    """:func:`catch_up` for each roll-up; the figures for the batch's record: days and rows per roll-up."""
    figures: dict[str, int] = {}
    for rollup in rollups:
        done = catch_up(db, rollup, through=through, now=now)
        figures[f"{rollup.name}_days"] = done.days
        figures[f"{rollup.name}_rows"] = done.rows
    return figures


def date_value(session: Session, day: date) -> Any:
    """A date as a bound value for hand-written SQL (SQLite keeps dates as ISO text)."""
    return day.isoformat() if dialect_of(session) == "sqlite" else day
