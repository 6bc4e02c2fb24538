"""Fixtures shared by every test.

Integration tests run once per database backend: the embedded SQLite and a real
PostgreSQL server that this file starts on a loopback port (and stops at the end).
``--backends sqlite`` narrows the run while developing; CI runs both, and a missing
PostgreSQL fails the run rather than skipping it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from miaodai.app import create_app
from miaodai.container import Container, build_container
from miaodai.core.clock import BUSINESS_TZ, FixedClock
from miaodai.core.db import Database
from miaodai.core.logging import configure_logging
from miaodai.core.settings import Environment, Settings
from miaodai.migrate import upgrade
from miaodai.testing.pgserver import PostgresServer, PostgresUnavailable, running_postgres

BACKENDS = ("sqlite", "postgresql")
# Property tests assert properties, never speed: no per-example deadline and no "too slow" health check, which
# a loaded CI machine (one pytest worker per core, PostgreSQL and a browser beside them) would trip at random.
hypothesis_settings.register_profile("miaodai", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("miaodai")
# A Sunday morning in Beijing; tests move the clock explicitly.
T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=BUSINESS_TZ)
_db_counter = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A module may pin the backend with its own fixture, listed in a module-level PINNED_FIXTURES.
    if "backend" in metafunc.fixturenames and "backend" not in getattr(metafunc.module, "PINNED_FIXTURES", ()):
        chosen = [b.strip() for b in metafunc.config.getoption("--backends").split(",") if b.strip()]
        metafunc.parametrize("backend", chosen)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One cluster per process: each pytest-xdist worker starts its own, in its own temporary directory, on a
    port that was free when chosen. Another worker's server or live app may take that port before the server
    binds it, so a server that fails to start is started again, on a new port, twice at most."""
    with contextlib.ExitStack() as stack:
        for attempt in range(3):
            try:
                server = stack.enter_context(running_postgres())
                break
            except PostgresUnavailable:
                if attempt == 2:
                    raise
        yield server


@pytest.fixture(scope="session")
def pg_template(pg_server: PostgresServer) -> str:
    url = pg_server.create_database("miaodai_template")
    upgrade(url)
    return "miaodai_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of the given backend for one test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "miaodai.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"t{next(_db_counter)}"
    url = server.create_database(name, template=request.getfixturevalue("pg_template"))
    yield url
    server.drop_database(name)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env=Environment.TEST,
        database_url=database_url,
        keyring_file=tmp_path / "keyring.json",
        contract_signing_key_file=tmp_path / "contract-signing-key.pem",
        sandbox_channel_store=tmp_path / "sandbox-channel.db",
        sandbox=True,
        audit_sealer_enabled=False,
        payments_worker_enabled=False,  # tests move the channel's time and callbacks themselves
        log_json=True,
    )


@pytest.fixture
def container(settings: Settings, clock: FixedClock) -> Iterator[Container]:
    built = build_container(settings, clock=clock, db=Database(settings.database_url))
    yield built
    built.db.dispose()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def fast_staff_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for tests that create staff accounts (the rules do not depend on the cost)."""
    from argon2 import PasswordHasher

    from miaodai.identity import staff_service

    monkeypatch.setattr(staff_service, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Each test ends with the root logger's handlers and level as it found them (pytest's own aside).

    A CLI command run through CliRunner configures logging onto the runner's stderr, which is closed when the
    command returns: every later test of the process then printed a "Logging error" traceback for each record
    (3 ms a record instead of 0.7 on the loaded machine; 1,624 of them in one retry storm), and which tests ran
    first in a pytest-xdist worker decided it."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if not _is_pytests(h)]
    level = root.level
    yield
    for handler in [h for h in root.handlers if not _is_pytests(h) and h not in ours]:
        root.removeHandler(handler)
    for handler in ours:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def _is_pytests(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("_pytest")


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything the service logs during the test, as the JSON lines production writes (DEBUG and up),
    for tests that prove personal data never reaches the logs."""
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    yield stream
    logging.getLogger().handlers.clear()
