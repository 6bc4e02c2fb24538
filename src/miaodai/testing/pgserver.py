"""Start and stop a private PostgreSQL server on a loopback port for tests and benchmarks.

Uses the Debian server binaries (``/usr/lib/postgresql/<ver>/bin``). PostgreSQL refuses
to run as root, so when we are root the data directory is handed to the ``postgres``
user and every server command runs through ``runuser -u postgres``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    override = os.environ.get("MIAODAI_PG_BINDIR")
    candidates = [Path(override)] if override else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; "
        "install them with `apt-get install postgresql` (the test suite needs a real server)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    bindir: Path
    datadir: Path
    port: int
    as_root: bool

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def start(self, *, durable: bool) -> None:
        self._run("initdb", "-D", str(self.datadir), "-U", SERVER_USER, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        options = [
            f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.datadir}",
            "-c max_connections=200", "-c shared_buffers=256MB",
        ]
        if not durable:  # tests: no need to survive a power cut
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        result = self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.datadir / "server.log"),
                           "-o", " ".join(options), "-w", "-t", "60", "start", check=False)
        if result.returncode != 0:
            log = (self.datadir / "server.log").read_text() if (self.datadir / "server.log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {result.stderr}\n{log}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop", check=False)

    def create_database(self, name: str, template: str | None = None) -> str:
        import psycopg

        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            clause = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{clause}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[PostgresServer]:
    """A fresh PostgreSQL cluster on a free loopback port, removed afterwards."""
    bindir = find_bindir()
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root but `runuser` is missing (util-linux)")
    base = Path(tempfile.mkdtemp(prefix="miaodai-pg-"))
    datadir = base / "data"
    datadir.mkdir()
    if as_root:
        shutil.chown(base, SERVER_USER)
        shutil.chown(datadir, SERVER_USER)
    datadir.chmod(0o700)
    server = PostgresServer(bindir, datadir, free_port(), as_root)
    try:
        server.start(durable=durable)
        _wait_ready(server)
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(server: PostgresServer, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(server.url().replace("+psycopg", ""), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
