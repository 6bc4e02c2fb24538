"""Pooled PostgreSQL connections: a connection killed while idle in the pool is replaced before use,
and a connection in steady use is not pinged at all (no extra round trip per transaction)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from miaodai.core import db as db_module
from miaodai.core.db import make_engine

PINNED_FIXTURES = ("backend",)


@pytest.fixture
def backend() -> str:
    return "postgresql"


def _server_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_killed_while_idle_is_replaced_before_use(database_url, monkeypatch):
    engine = make_engine(database_url)
    try:
        first = _server_pid(engine)  # now idle in the pool
        other = make_engine(database_url)
        try:
            with other.connect() as conn:  # as a server restart or an idle timeout would
                assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
        finally:
            other.dispose()
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle "long enough"
        assert _server_pid(engine) != first  # the dead connection was pinged, dropped and replaced
    finally:
        engine.dispose()


def test_a_connection_used_moments_ago_is_not_pinged(database_url, monkeypatch):
    engine = make_engine(database_url)
    pings: list[object] = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(conn) or real_ping(conn))
    try:
        pids = {_server_pid(engine) for _ in range(3)}
        assert len(pids) == 1 and pings == []  # the same connection each time, never pinged
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert _server_pid(engine) in pids and len(pings) == 1  # idle "long enough": pinged, alive, kept
    finally:
        engine.dispose()
