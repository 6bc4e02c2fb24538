"""Two threads at the worst moment, for the race tests on PostgreSQL: one held at its commit with everything
written and locked (:class:`HoldAtCommit`, the ``hold`` fixture), the other run in a :class:`Worker`, and
:func:`lock_waits` to see that it waits for a lock the first holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from miaodai.core.errors import DomainError

WAIT = 20.0  # seconds: bounded waits for a thread to arrive or to be seen blocked


class HoldAtCommit:
    """Stops the thread that arms it at its next transaction's commit, everything flushed (written, locks held,
    nothing committed) until released: the worst moment for whoever comes second."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.reached = threading.Event()
        self.go = threading.Event()

    def armed(self, target: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            self.local.armed = True
            return target()
        return run

    def before_commit(self, session: Session) -> None:
        if getattr(self.local, "armed", False) and not self.reached.is_set():
            session.flush()
            self.reached.set()
            assert self.go.wait(WAIT * 3), "never released"


@pytest.fixture
def hold() -> Iterator[HoldAtCommit]:
    hooks = HoldAtCommit()
    event.listen(Session, "before_commit", hooks.before_commit)
    try:
        yield hooks
    finally:
        hooks.go.set()  # a failed test never leaves a thread held
        event.remove(Session, "before_commit", hooks.before_commit)


class Worker(threading.Thread):
    """Runs ``target`` in its own thread: its result, or the code of the DomainError it raised."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work, self.outcome, self.error = target, None, None

    def run(self) -> None:
        try:
            self.outcome = self.work()
        except DomainError as refused:
            self.outcome = refused.code
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            self.error = exc

    def result(self) -> Any:
        self.join(WAIT * 3)
        assert not self.is_alive(), "still running"
        if self.error is not None:
            raise self.error
        return self.outcome


def lock_waits(container: Any, pattern: str = "FOR (NO KEY )?UPDATE") -> bool:
    """Whether a session of this PostgreSQL database waits for a lock in a statement matching ``pattern`` (a
    POSIX regular expression; by default any row-locking read), polled for at most WAIT seconds."""
    watcher = create_engine(container.db.engine.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    deadline = time.monotonic() + WAIT
    try:
        with watcher.connect() as conn:
            while time.monotonic() < deadline:
                if conn.execute(text(
                        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query ~ :pattern"), {"pattern": pattern}).scalar_one():
                    return True
                time.sleep(0.02)
        return False
    finally:
        watcher.dispose()
