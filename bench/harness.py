"""Run a uvicorn server in a subprocess and drive it with a bounded async load from this process; and
build the service's container on a fresh database of each backend (:func:`backend_container`), for the
benchmarks that time SQL on a large book rather than requests.

The load generator and the server share the machine's two cores, so every figure is
reported beside a ceiling measured with the same generator against a trivial app in
the same run (see docs/architecture.md §7): the ratio, not the absolute number, is what to compare.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx  # only for the start-up probe

from miaodai.testing.pgserver import free_port


@dataclass
class LoadResult:
    completed: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, float | int]:
        return {
            "per_second": round(self.rate, 1),
            "completed": self.completed,
            "errors": self.errors,
            "p50_ms": round(statistics.median(self.latencies_ms), 2) if self.latencies_ms else 0.0,
            "p99_ms": round(self.percentile(0.99), 2),
        }


@contextlib.contextmanager
def serve(app: str, env: dict[str, str], *, workers: int = 1, factory: bool = False,
          port: int | None = None) -> Iterator[str]:
    """Start `uvicorn app` on ``port`` (a free loopback port if None); yields its base URL; stops it afterwards.
    Pass the port when the app must know its own address (the payment channel's callback URL)."""
    port = port or free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    if factory:
        command.append("--factory")
    process = subprocess.Popen(command, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, process)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_up(base: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("server did not come up")


class Client:
    """A thin JSON client over one aiohttp session (httpx's async client was the bottleneck:
    ~450 req/s against a server that answers wrk at ~2,800)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def request(self, method: str, path: str, *, json: object = None,
                      headers: dict[str, str] | None = None) -> object:
        async with self._session.request(method, path, json=json, headers=headers) as response:
            body = await response.read()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {body[:300]!r}")
            return await response.json(content_type=None) if body else None

    async def get(self, path: str, **kwargs: object) -> object:
        return await self.request("GET", path, **kwargs)  # type: ignore[arg-type]

    async def post(self, path: str, **kwargs: object) -> object:
        return await self.request("POST", path, **kwargs)  # type: ignore[arg-type]


Task = Callable[[Client, int], Awaitable[object]]


async def _drive(base: str, task: Task, *, concurrency: int, seconds: float, max_ops: int) -> LoadResult:
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(max_ops))
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
        client = Client(session)

        async def worker() -> None:
            for n in counter:
                if time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                try:
                    await task(client, n)
                    latencies.append((time.perf_counter() - started) * 1000)
                except Exception as exc:  # counted, and reported beside the rate
                    errors.append(str(exc))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if errors:
        print(f"# {len(errors)} errors, first: {errors[0]}", file=sys.stderr)
    return LoadResult(len(latencies), len(errors), elapsed, latencies)


def run_load(base: str, task: Task, *, concurrency: int = 16, seconds: float = 10.0,
             max_ops: int = 1_000_000, warmup_seconds: float = 1.0) -> LoadResult:
    """Run ``task`` from ``concurrency`` coroutines for ``seconds`` (bounded by ``max_ops``)."""
    if warmup_seconds:
        asyncio.run(_drive(base, task, concurrency=concurrency, seconds=warmup_seconds, max_ops=max_ops))
    return asyncio.run(_drive(base, task, concurrency=concurrency, seconds=seconds, max_ops=max_ops))


async def _pace(base: str, task: Task, *, rate: float, seconds: float, first: int, max_ops: int) -> LoadResult:
    latencies: list[float] = []
    errors: list[str] = []
    count = min(max_ops, int(rate * seconds))
    connector = aiohttp.TCPConnector(limit=0)  # arrivals do not wait for each other
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
        client = Client(session)
        start = time.perf_counter()

        async def one(i: int) -> None:
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                await task(client, first + i)
                # From when it was due, not when it was sent: a late start is latency the user sees.
                latencies.append((time.perf_counter() - due) * 1000)
            except Exception as exc:
                errors.append(str(exc))

        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - start
    if errors:
        print(f"# {len(errors)} errors, first: {errors[0]}", file=sys.stderr)
    return LoadResult(len(latencies), len(errors), elapsed, latencies)


def run_paced(base: str, task: Task, *, rate: float, seconds: float = 10.0, first: int = 0,
              max_ops: int = 1_000_000) -> LoadResult:
    """Open-loop load: ``rate`` arrivals a second, whether or not earlier ones have finished (how
    users arrive), so latency at a given load is measured without coordinated omission. Task
    numbers start at ``first``."""
    return asyncio.run(_pace(base, task, rate=rate, seconds=seconds, first=first, max_ops=max_ops))


# -- a container per backend --------------------------------------------------------------------------


@contextlib.contextmanager
def backend_container(backend: str, clock: Any, *, name: str) -> Iterator[Any]:
    """The service's container (sandbox providers, no audit sealer) on a fresh, migrated database:
    ``sqlite`` (a file in a temporary directory) or ``postgresql`` (a durable server started for it). The
    database, its server and the directory are gone afterwards."""
    from miaodai.container import build_container
    from miaodai.core.settings import Environment, Settings
    from miaodai.migrate import upgrade
    from miaodai.testing.pgserver import running_postgres

    workdir = Path(tempfile.mkdtemp(prefix=f"miaodai-bench-{name}-{backend}-"))
    try:
        with contextlib.ExitStack() as stack:
            if backend == "sqlite":
                url = f"sqlite:///{workdir / 'bench.db'}"
            elif backend == "postgresql":
                url = stack.enter_context(running_postgres(durable=True)).create_database("miaodai")
            else:
                raise ValueError(f"unknown backend {backend!r}")
            upgrade(url)
            settings = Settings(env=Environment.TEST, database_url=url, keyring_file=workdir / "keyring.json",
                                contract_signing_key_file=workdir / "contract-signing-key.pem", sandbox=True,
                                audit_sealer_enabled=False, log_level="WARNING", log_json=True)
            container = build_container(settings, clock=clock)
            try:
                yield container
            finally:
                container.db.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def each_backend(backends: tuple[str, ...], bench: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
    """``bench(backend)`` for each backend in turn, each figure printed as one JSON line as soon as it is known."""
    lines = []
    for backend in backends:
        line = bench(backend)
        print(json.dumps(line), flush=True)
        lines.append(line)
    return lines
