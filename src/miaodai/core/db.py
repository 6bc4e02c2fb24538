"""Database engine, declarative base and the unit of work.

The same models and migrations run on SQLite (the embedded default, in WAL mode
with a busy timeout) and PostgreSQL (psycopg 3). Each use case runs in one
transaction opened with :meth:`Database.transaction`.

Where the two databases spell something differently, business code asks this module for the construct:
one small layer of constructs built for a dialect (``days_between``, ``milliseconds_between``,
``business_date_of``, ``not_indexed``, ``next_id``, ``dialect_insert`` for upserts, ``selects_may_write``);
locking clauses are SQLAlchemy's ``with_for_update``, which SQLite does not render.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from sqlalchemy import BigInteger, Date, DateTime, Enum, Integer, MetaData, create_engine, event, func, select, text
from sqlalchemy.dialects.postgresql import dml as pg_dml
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.schema import Table
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class days_between(FunctionElement[int]):  # noqa: N801 - used like a SQL function, as func.* is
    """``later - earlier`` in whole days, for two DATE expressions, on both databases.

    PostgreSQL subtracts dates to an integer; SQLite stores dates as ISO text and has no date arithmetic
    but ``julianday``. SQLAlchemy has no portable date difference, so this is the documented
    ``@compiles`` extension with one rendering per dialect.
    """

    type = Integer()
    name = "days_between"
    inherit_cache = True


@compiles(days_between)
def _days_between(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({later} - {earlier})"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


class milliseconds_between(FunctionElement[int]):  # noqa: N801 - used like a SQL function, as func.* is
    """``later - earlier`` to the nearest whole millisecond, for two UTC timestamp expressions, on both
    databases: PostgreSQL's exact ``EXTRACT(EPOCH FROM interval)``, SQLite's ``julianday`` difference (a
    double, good to ~50 µs at today's dates: rounding, not truncating, gives both the same answer)."""

    type = BigInteger()
    name = "milliseconds_between"
    inherit_cache = True


@compiles(milliseconds_between)
def _milliseconds_between(element: milliseconds_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(ROUND(EXTRACT(EPOCH FROM ({later} - {earlier})) * 1000) AS BIGINT)"


@compiles(milliseconds_between, "sqlite")
def _milliseconds_between_sqlite(element: milliseconds_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(ROUND((julianday({later}) - julianday({earlier})) * 86400000.0) AS INTEGER)"


class business_date_of(FunctionElement[date]):  # noqa: N801 - used like a SQL function, as func.* is
    """The Beijing business date (UTC+8, no daylight saving since 1991) of a UTC timestamp expression, on both
    databases: PostgreSQL's ``AT TIME ZONE``, SQLite's ``date()`` of the naive UTC text eight hours on."""

    type = Date()
    name = "business_date_of"
    inherit_cache = True


@compiles(business_date_of)
def _business_date_of(element: business_date_of, compiler: Any, **kw: Any) -> str:
    [moment] = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(({moment}) AT TIME ZONE 'Asia/Shanghai' AS DATE)"


@compiles(business_date_of, "sqlite")
def _business_date_of_sqlite(element: business_date_of, compiler: Any, **kw: Any) -> str:
    [moment] = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"date({moment}, '+8 hours')"


class not_indexed(FunctionElement[Any]):  # noqa: N801 - used like a SQL function, as func.* is
    """A column that SQLite must not read an index by, for a query whose other condition is the selective one:
    SQLite's unary ``+`` (a no-op on any value that disqualifies the term from index use; SQLite keeps no
    statistics on value ranges to see it by itself). PostgreSQL, which has them, gets the column as it is."""

    name = "not_indexed"
    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(not_indexed)
def _not_indexed(element: not_indexed, compiler: Any, **kw: Any) -> str:
    [column] = (compiler.process(clause, **kw) for clause in element.clauses)
    return str(column)


@compiles(not_indexed, "sqlite")
def _not_indexed_sqlite(element: not_indexed, compiler: Any, **kw: Any) -> str:
    [column] = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"+{column}"


class next_id(FunctionElement[int]):  # noqa: N801 - used like a SQL function, as func.* is
    """The id the next row of ``column``'s table will get, drawn ahead of its INSERT (which then gives it
    explicitly), so that a row inserted before it can name it.

    PostgreSQL draws it from the column's sequence (``nextval``): safe under any concurrency, and an id
    drawn by a transaction that rolls back is simply never used. SQLite has no sequences and numbers a row
    ``max(id) + 1`` on INSERT: this reads the same, which is safe only in ``Database.transaction()``,
    whose ``BEGIN IMMEDIATE`` holds the database's one write lock until the commit.
    """

    type = BigInteger()
    name = "next_id"
    inherit_cache = True

    @property
    def _from_objects(self) -> list[Any]:
        return []  # self-contained on both databases: the column names a sequence or a subquery's table


@compiles(next_id)
def _next_id(element: next_id, compiler: Any, **kw: Any) -> str:
    (column,) = element.clauses
    return f"nextval(pg_get_serial_sequence('{column.table.name}', '{column.name}'))"


@compiles(next_id, "sqlite")
def _next_id_sqlite(element: next_id, compiler: Any, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(select(func.coalesce(func.max(column), 0) + 1).scalar_subquery(), **kw)


def dialect_insert(dialect: str) -> Callable[[Any], pg_dml.Insert | sqlite_dml.Insert]:
    """The ``insert`` of ``dialect``'s SQLAlchemy dialect, for an upsert (``on_conflict_do_update`` /
    ``on_conflict_do_nothing``, ``excluded``): PostgreSQL's and SQLite's spell ``INSERT … ON CONFLICT`` alike,
    but SQLAlchemy's portable ``insert`` has no conflict clause."""
    return pg_dml.insert if dialect == "postgresql" else sqlite_dml.insert


def dialect_of(session: Session) -> str:
    """The name of the dialect a session's connection speaks: ``postgresql`` or ``sqlite``."""
    return session.get_bind().dialect.name


def has_row_locks(session: Session) -> bool:
    """Whether the database takes row and advisory locks (PostgreSQL). SQLite runs one writer at a time
    (``BEGIN IMMEDIATE``), so a lock there is the transaction itself, and lock statements are skipped."""
    return dialect_of(session) == "postgresql"


def advisory_xact_lock(session: Session, key: int) -> None:
    """Serialise transactions on ``key`` (a signed 64-bit integer) until this one ends; nothing on SQLite."""
    if has_row_locks(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


class SqlText:
    """The few places hand-written SQL text differs between the two databases (the end-of-day batch's
    set-based statements): boolean literals, two-argument min/max, whole days between dates, a date value,
    a date's month as a number."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.true, self.false = ("1", "0") if self.sqlite else ("true", "false")
        self.least, self.greatest = ("MIN", "MAX") if self.sqlite else ("LEAST", "GREATEST")

    def days(self, later: str, earlier: str) -> str:
        """Whole days from ``earlier`` to ``later`` (date expressions)."""
        if self.sqlite:
            return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"
        return f"({later} - {earlier})"

    def value(self, day: date) -> Any:
        return day.isoformat() if self.sqlite else day  # SQLite keeps dates as ISO text

    def month_index(self, day: str) -> str:
        """A date expression's month as one integer, year × 12 + month − 1 (months apart subtract)."""
        if self.sqlite:
            return f"(CAST(strftime('%Y', {day}) AS INTEGER) * 12 + CAST(strftime('%m', {day}) AS INTEGER) - 1)"
        return f"(CAST(EXTRACT(YEAR FROM {day}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {day}) AS INTEGER) - 1)"


def selects_may_write(dialect: str) -> bool:
    """Whether a SELECT may carry an ``INSERT … RETURNING`` as a common table expression, so that a write and
    a read share one round trip: PostgreSQL runs a data-modifying CTE once, to completion, whether or not the
    SELECT reads its rows; SQLite has no data-modifying CTEs (send the write as a statement of its own)."""
    return dialect == "postgresql"


def enum_column(cls: type[StrEnum]) -> Enum:
    """A StrEnum stored as its value in a VARCHAR(32) (no native enum type: one migration story on both databases)."""
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """A model's table, typed as one (``Model.__table__`` is typed as any FromClause) for Core statements."""
    return cast(Table, model.__table__)


def rows_changed(result: Result[Any]) -> int:
    """How many rows an INSERT, UPDATE or DELETE changed: the driver's rowcount (its result is a CursorResult,
    typed as any Result by ``Session.execute``)."""
    return cast(CursorResult[Any], result).rowcount


# A pooled connection idle longer than this is pinged before use (see _ping_after_idle).
PING_AFTER_IDLE_SECONDS = 10.0


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo=echo)
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20)
    _ping_after_idle(engine)
    return engine


def _autocommit_engine(engine: Engine, *, echo: bool) -> Engine:
    """What :meth:`Database.autocommit` runs on.

    On PostgreSQL, a pool of its own whose connections stay in autocommit mode. Switching a pooled
    connection's isolation level on every checkout and back on every checkin (an engine with
    ``execution_options(isolation_level=...)``) cost more CPU than the read it wrapped: about 60
    microseconds per use, where the credit application makes two of them. SQLite keeps one pool (an
    in-memory database exists once per pool) and switches per checkout, which costs little there.
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    autocommit = create_engine(engine.url, echo=echo, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=10)
    _ping_after_idle(autocommit)
    return autocommit


def _ping_after_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, but only for connections that sat idle in the pool.

    ``pool_pre_ping`` would ping on every checkout: one more round trip in every transaction (a tenth
    of a repayment's). A connection goes stale while it is idle (a server restart, a proxy's idle
    timeout), so one that was checked in less than ``PING_AFTER_IDLE_SECONDS`` ago is used as it is;
    an older one is pinged first, and a failed ping raises ``DisconnectionError``, on which the pool
    replaces the connection and tries again (SQLAlchemy's documented checkout-event recipe).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # a new connection, or one in use moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("the pooled connection was dead; the pool replaces it") from exc


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # Database.autocommit(): each statement on its own, no lock held between them
        # Take the write lock up front: a deferred transaction that later writes can
        # fail with "database is locked" instead of waiting its turn.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _refuse_unit_of_work(session: Session, _context: Any, _instances: Any) -> None:
    raise RuntimeError("Database.autocommit() sessions do not flush objects: use Database.transaction()")


class Database:
    """The engine and its session factory; the one way business code reaches the database."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self.autocommit_engine = _autocommit_engine(self.engine, echo=echo)
        self._autocommit_sessions = sessionmaker(self.autocommit_engine, expire_on_commit=False, autoflush=False)
        event.listen(self._autocommit_sessions, "before_flush", _refuse_unit_of_work)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Session]:
        """Statements that each stand alone: no BEGIN and COMMIT round trips around them.

        For reads on a hot path — under READ COMMITTED every statement of a transaction takes its own
        snapshot anyway, so a read-only transaction costs two round trips and buys nothing — and for a
        single self-contained UPDATE. Writes that belong together need :meth:`transaction`: the unit of
        work (``session.add`` + flush) is refused here.
        """
        with self._autocommit_sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        self.autocommit_engine.dispose()  # on SQLite the same pool again: harmless
