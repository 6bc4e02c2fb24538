"""Credit decisions: in-process (features + rules + score) and over HTTP on PostgreSQL.

* ``credit_decision_in_process``: the pure decision for synthetic applicants (their sandbox bureau
  reports built beforehand — outside calls excluded), with the default ruleset and champion model:
  p50/p99 in microseconds. Budget: p99 under 1 ms.
* ``credit_application_http``: ``POST /v1/credit/applications`` from ``BENCH_CREDIT_CONCURRENCY`` (32)
  clients against the service on PostgreSQL with zero-latency sandboxes, each application a different
  verified borrower (``BENCH_CREDIT_APPLICANTS``, 3000, prepared over HTTP first and each seen by the
  service moments before the rounds, as when applying from the app right after verifying), beside a bare FastAPI
  endpoint doing one INSERT on the same server in the same run. Both servers stay up and are driven in
  ``BENCH_CREDIT_ROUNDS`` (3) alternating closed-loop rounds of up to ``BENCH_CREDIT_ROUND_SECONDS`` (4 s;
  ours also end when their share of the applicants is used); the ratio is the median of the rounds'
  ratios, with their range. Target: a quarter of it, p99 under 100 ms.
* ``credit_application_http_paced``: the same requests arriving open-loop at half the capacity just
  measured. Closed-loop clients queue behind one another (p50 ≈ 32 / throughput), so the closed-loop
  p99 says how long the queue is, not how long a decision takes; this one says what a borrower
  waits at a realistic load.
* ``credit_application_cpu`` (``python -m bench credit_cpu``): CPU time per application, the figure that
  decides the HTTP ratio on a 2-core machine and that other load on the machine barely moves. The real
  app runs in this process on the PostgreSQL the bench starts, driven through ASGI one application at
  a time (``BENCH_CREDIT_CPU_APPLICATIONS``, 400, after 50 to warm up, in ``BENCH_CREDIT_CPU_ROUNDS``
  rounds, 5, each figure the median of the rounds); reported: this process's CPU
  (``getrusage``: every thread, user + system, system also alone), the PostgreSQL server's CPU (its
  processes' utime + stime),
  SQL statements and commits per application — and the same for the ceiling's one-INSERT endpoint
  driven the same way, whose CPU over ours is the ratio the HTTP bench can reach at best when CPU-bound.
  ``BENCH_CREDIT_CPU_SQL=1`` lists the statements (per application) on stderr; ``BENCH_CREDIT_CPU_WAIT=1``
  pauses 5 s before the measured run and prints the pid, to attach a sampling profiler (``uvx py-spy``).
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import json
import json as _json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import Client, LoadResult, Task, run_load, run_paced, serve
from bench.identities import identity_for
from bench.onboarding import client_address, login, phone_for, service_env

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONCURRENCY = int(os.environ.get("BENCH_CREDIT_CONCURRENCY", "32"))
ROUNDS = int(os.environ.get("BENCH_CREDIT_ROUNDS", "3"))
ROUND_SECONDS = float(os.environ.get("BENCH_CREDIT_ROUND_SECONDS", "4"))
# uvicorn workers for both servers: 4, as docs/operations.md runs the service on PostgreSQL. A worker's
# threads take turns at one GIL, and at each turn the next thread must be woken: with two workers on two
# cores both servers left a third of the machine idle (measured from /proc: 1.3-1.5 of 2 cores busy).
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
FORM = {"occupation": "employee", "education": "bachelor", "loan_purpose": "daily_consumption"}


def bench_in_process(n: int = 20_000) -> None:
    from datetime import date

    from miaodai.credit.bureau import synthetic_report
    from miaodai.credit.features import (
        ApplicationInput,
        Education,
        InternalHistory,
        LoanPurpose,
        Occupation,
        build_features,
    )
    from miaodai.credit.registry import ActivePolicy, default_ruleset, default_scorecard
    from miaodai.credit.rules import BureauStatus, Facts
    from miaodai.credit.service import decide
    from miaodai.demo import DEMO_PRODUCT

    policy = ActivePolicy(default_ruleset(), default_scorecard(), None)
    reports = [synthetic_report(identity_for(i)[1]) for i in range(n)]
    application = ApplicationInput(1_500_000, Occupation.EMPLOYEE, Education.BACHELOR, LoanPurpose.TRAVEL)
    internal = InternalHistory()
    today = date(2026, 11, 22)
    timings = []
    decisions: dict[str, int] = {}
    for report in reports:
        started = time.perf_counter_ns()
        features = build_features(application=application, age=35, report=report, phone_tenure_months=40,
                                   internal=internal)
        facts = Facts(identity_verified=True, missing_consents=(), blocked_on=(), bureau_status=BureauStatus.OK,
                      bureau_current_overdue_fen=report.current_overdue_fen, bureau_written_off=report.written_off,
                      bureau_fraud_list_hit=report.fraud_list_hit,
                      internet_consumer_credit_fen=report.internet_consumer_credit_fen,
                      monthly_repayment_fen=report.monthly_repayment_fen, application_date=today)
        verdict = decide(policy, features, facts, product=DEMO_PRODUCT, monthly_income_fen=1_500_000)
        timings.append((time.perf_counter_ns() - started) / 1000)
        decisions[verdict.decision.value] = decisions.get(verdict.decision.value, 0) + 1
    ordered = sorted(timings)
    print(json.dumps({
        "bench": "credit_decision_in_process", "decisions": n, "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[int(0.99 * n)], 1), "max_us": round(ordered[-1], 1), "budget_p99_us": 1000,
        "ratio_to_budget": round(ordered[int(0.99 * n)] / 1000, 3), "outcomes": decisions,
    }), flush=True)


async def _verified(client: Client, n: int) -> dict[str, str]:
    """A borrower logged in, with the four consents and a verified identity: their request headers."""
    device = f"bench-credit-device-{n:08d}"
    token = await login(client, phone_for(n, 35), device)
    headers = {"Authorization": f"Bearer {token}", "X-Device-Id": device, "X-Forwarded-For": client_address(n)}
    for kind in ("privacy_policy", "user_agreement", "credit_bureau_query", "carrier_data"):
        await client.post("/v1/consents", json={"kind": kind, "version": "1.0"}, headers=headers)
    name, id_number = identity_for(200_000 + n)
    await client.post("/v1/kyc/identity", json={"name": name, "id_number": id_number}, headers=headers)
    await client.post("/v1/kyc/face", json={"liveness_token": "sandbox-pass"}, headers=headers)
    return headers


def bench_http() -> None:
    from bench.onboarding import ceiling_env, pgbench_tps
    from miaodai.migrate import upgrade
    from miaodai.testing.pgserver import running_postgres

    workdir = Path(tempfile.mkdtemp(prefix="miaodai-bench-credit-"))
    try:
        with running_postgres(durable=True) as server:
            print(json.dumps({"bench": "pgbench_tpcb", "per_second": pgbench_tps(server)}), flush=True)
            url = server.create_database("miaodai")
            upgrade(url)
            env = {**service_env(url, workdir), "MIAODAI_SANDBOX_LATENCY_SECONDS": "0"}
            _seed_product(env)
            # Both servers up for the whole run (an idle one costs nothing), measured in alternating rounds:
            # a burst of other load on the machine, or the database's own checkpoints, falls on both alike.
            with serve("bench.ceiling_app:app", ceiling_env(server), workers=WORKERS) as ceiling_base, \
                    serve("miaodai.app:asgi", env, workers=WORKERS, factory=True) as base:
                window = _bench_http_rounds(ceiling_base, base)
            _print_timings(url, window)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _bench_http_rounds(ceiling_base: str, base: str) -> tuple[datetime, datetime]:
    """The alternating rounds and the paced run; returns when the closed-loop rounds began and ended."""
    prepared: dict[int, dict[str, str]] = {}

    async def prepare(client: Client, n: int) -> None:
        prepared[n] = await _verified(client, n)

    wanted = int(os.environ.get("BENCH_CREDIT_APPLICANTS", "3000"))
    run_load(base, prepare, concurrency=16, seconds=900, max_ops=wanted, warmup_seconds=0)
    keys = sorted(prepared)
    used = 0  # every application is a different borrower's first: applicants are used once

    def applications(first: int) -> Task:
        async def apply(client: Client, n: int) -> None:
            income = 800_000 + (n % 20) * 100_000
            await client.post("/v1/credit/applications", json={**FORM, "monthly_income_fen": income},
                              headers=prepared[keys[first + n]])
        return apply

    def insert(client: Client, n: int) -> Awaitable[object]:
        return client.post("/insert")

    # Every applicant was seen moments ago, as when a borrower applies from the app right after verifying:
    # the session's once-a-minute touch of last_seen_at does not fire. (Without this pass, applicants
    # prepared over a minute before their round paid a second durable commit each, and the rounds'
    # rates rose with the age of their applicants, not with the code.)
    async def seen(client: Client, n: int) -> None:
        await client.get("/v1/me", headers=prepared[keys[n]])

    run_load(base, seen, concurrency=CONCURRENCY, seconds=120, max_ops=len(keys), warmup_seconds=0)
    # Warm both (connections, prepared statements, the parsed policy), then the measured rounds.
    run_load(ceiling_base, insert, concurrency=CONCURRENCY, seconds=1, warmup_seconds=0)
    # Every worker's pooled connections must have opened and prepared their statements (psycopg prepares
    # on a connection's fifth use of one): a tenth of the applicants, at least 200, for that.
    warm = run_load(base, applications(0), concurrency=CONCURRENCY, seconds=30,
                    max_ops=max(min(200, len(keys) // 4), len(keys) // 10), warmup_seconds=0)
    used += warm.completed + warm.errors
    per_round = (len(keys) - used) * 3 // 4 // ROUNDS  # the last quarter for the paced run
    ceilings: list[LoadResult] = []
    ours: list[LoadResult] = []
    began = datetime.now(UTC)
    for _ in range(ROUNDS):
        ceilings.append(run_load(ceiling_base, insert, concurrency=CONCURRENCY, seconds=ROUND_SECONDS,
                                 warmup_seconds=0))
        ours.append(run_load(base, applications(used), concurrency=CONCURRENCY, seconds=ROUND_SECONDS,
                             max_ops=per_round, warmup_seconds=0))
        used += ours[-1].completed + ours[-1].errors
    ended = datetime.now(UTC)
    ceiling, mine = _merged(ceilings), _merged(ours)
    ratios = sorted(o.rate / c.rate for c, o in zip(ceilings, ours, strict=True) if c.rate)
    print(json.dumps({"bench": "ceiling_fastapi_insert_commit", "concurrency": CONCURRENCY, "rounds": ROUNDS,
                      **ceiling.summary(), "round_rates": [round(c.rate, 1) for c in ceilings]}), flush=True)
    print(json.dumps({"bench": "credit_application_http", "concurrency": CONCURRENCY, "rounds": ROUNDS,
                      **mine.summary(), "round_rates": [round(o.rate, 1) for o in ours],
                      "prepared_applicants": len(keys), "ceiling": "ceiling_fastapi_insert_commit",
                      "ceiling_per_second": round(ceiling.rate, 1),
                      "ratio": round(statistics.median(ratios), 3) if ratios else None,
                      "ratio_range": [round(ratios[0], 3), round(ratios[-1], 3)] if ratios else None,
                      "target_ratio": 0.25, "target_p99_ms": 100}), flush=True)
    # 32 clients that each wait for their answer queue behind one another (latency = 32 / throughput);
    # users arrive on their own. Latency at half the measured capacity:
    rate = max(1.0, round(mine.rate / 2))
    paced = run_paced(base, applications(used), rate=rate, seconds=SECONDS, max_ops=len(keys) - used)
    print(json.dumps({"bench": "credit_application_http_paced", "offered_per_second": rate,
                      **paced.summary(), "target_p99_ms": 100}), flush=True)
    return began, ended


def _print_timings(url: str, window: tuple[datetime, datetime]) -> None:
    """Where a decision's time went under the closed-loop load: the steps' timings each application stores
    (read, bureau, carrier, decide, store up to the INSERT, total up to the INSERT), p50 and p99."""
    from sqlalchemy import select

    from miaodai.core.db import Database
    from miaodai.credit.models import CreditApplication

    db = Database(url)
    try:
        with db.autocommit() as session:
            rows = session.execute(select(CreditApplication.timings).where(
                CreditApplication.created_at.between(*window))).scalars().all()
    finally:
        db.dispose()
    steps: dict[str, list[float]] = collections.defaultdict(list)
    for row in rows:
        for step, ms in json.loads(row).items():
            steps[step].append(ms)
    print(json.dumps({"bench": "credit_application_http_timings", "applications": len(rows), **{
        step: {"p50_ms": round(statistics.median(v), 2), "p99_ms": round(sorted(v)[int(0.99 * (len(v) - 1))], 2)}
        for step, v in steps.items()}}), flush=True)


def _merged(results: list[LoadResult]) -> LoadResult:
    """Rounds as one run: their operations, errors, time and latencies added up."""
    return LoadResult(sum(r.completed for r in results), sum(r.errors for r in results),
                      sum(r.seconds for r in results), [ms for r in results for ms in r.latencies_ms])


class AsgiClient:
    """The harness ``Client``'s interface over a direct ASGI call: no sockets, no HTTP parser, next to no
    client-side CPU, so the process's CPU time is the app's."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def request(self, method: str, path: str, *, json: object = None,
                      headers: dict[str, str] | None = None) -> object:
        body = b"" if json is None else _json.dumps(json).encode()
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        if json is not None:
            raw += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": raw, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status, chunks = 0, []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        answer = b"".join(chunks)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {answer[:300]!r}")
        return _json.loads(answer) if answer else None

    async def get(self, path: str, **kwargs: Any) -> object:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> object:
        return await self.request("POST", path, **kwargs)


def _server_cpu_seconds(datadir: Path) -> float:
    """User + system CPU of the PostgreSQL server: the postmaster and its live children (pooled backends
    and background processes) plus what its exited children used."""
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster:
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # own + reaped children
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


@dataclass
class _Counts:
    statements: int = 0
    commits: int = 0
    texts: list[str] | None = None  # with BENCH_CREDIT_CPU_SQL set: each statement's first words


def _count_on(*engines: Any) -> _Counts:
    from sqlalchemy import event

    counts = _Counts(texts=[] if os.environ.get("BENCH_CREDIT_CPU_SQL") else None)

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        counts.statements += 1
        if counts.texts is not None:
            counts.texts.append(" ".join(sql.split())[:150])

    def commit(*_: Any) -> None:
        counts.commits += 1

    # A database's autocommit engine may share the main engine's pool and events (SQLite): listen once.
    for engine in {id(engine.pool): engine for engine in engines}.values():
        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "commit", commit)
    return counts


def _cpu_per_op(loop: asyncio.AbstractEventLoop, task: Callable[[int], Awaitable[object]], ops: range,
                datadir: Path, counts: _Counts) -> dict[str, float]:
    """Run ``task`` for each op one after the other; CPU (ms) and statements per op."""
    statements, commits = counts.statements, counts.commits
    if counts.texts is not None:
        counts.texts.clear()
    server, usage, wall = _server_cpu_seconds(datadir), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()

    async def run() -> None:
        for n in ops:
            await task(n)

    loop.run_until_complete(run())
    wall, after = time.perf_counter() - wall, resource.getrusage(resource.RUSAGE_SELF)
    server = _server_cpu_seconds(datadir) - server
    user, system = after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime
    cpu, n = user + system, len(ops)
    if counts.texts is not None:
        for text, times in collections.Counter(counts.texts).most_common():
            print(f"# {times / n:6.2f} {text}", file=sys.stderr)
    return {"app_cpu_ms": round(cpu * 1000 / n, 3), "app_system_cpu_ms": round(system * 1000 / n, 3),
            "db_cpu_ms": round(server * 1000 / n, 3),
            "total_cpu_ms": round((cpu + server) * 1000 / n, 3), "wall_ms": round(wall * 1000 / n, 3),
            "statements": round((counts.statements - statements) / n, 2),
            "commits": round((counts.commits - commits) / n, 2)}


def bench_cpu() -> None:
    """CPU time and statements per application in process (see the module's docstring)."""
    from bench.onboarding import ceiling_env
    from miaodai.app import create_app
    from miaodai.core.logging import configure_logging
    from miaodai.core.settings import Settings
    from miaodai.migrate import upgrade
    from miaodai.testing.pgserver import running_postgres

    measured = int(os.environ.get("BENCH_CREDIT_CPU_APPLICATIONS", "400"))
    rounds = int(os.environ.get("BENCH_CREDIT_CPU_ROUNDS", "5"))
    per_round, warmup = max(1, measured // rounds), 50
    workdir = Path(tempfile.mkdtemp(prefix="miaodai-bench-credit-cpu-"))
    loop = asyncio.new_event_loop()
    try:
        with running_postgres(durable=True) as server:
            env = ceiling_env(server)
            saved = dict(os.environ)
            os.environ.update(env)
            try:
                import bench.ceiling_app as ceiling

                ceiling_app = importlib.reload(ceiling)  # its database is read from the environment at import
            finally:
                os.environ.clear()
                os.environ.update(saved)
            ceiling_client = AsgiClient(ceiling_app.app)
            ceiling_counts = _count_on(ceiling_app._db.engine)  # type: ignore[union-attr]

            url = server.create_database("miaodai")
            upgrade(url)
            env = {**service_env(url, workdir), "MIAODAI_SANDBOX_LATENCY_SECONDS": "0"}
            _seed_product(env)
            settings = Settings(**{k.removeprefix("MIAODAI_").lower(): v for k, v in env.items()},
                                sandbox_channel_store=workdir / "sandbox-channel.db",
                                audit_sealer_enabled=False, payments_worker_enabled=False)
            configure_logging(settings.log_level, json=settings.log_json)  # as miaodai.app:asgi does
            app = create_app(settings)
            client = AsgiClient(app)
            counts = _count_on(app.state.container.db.engine, app.state.container.db.autocommit_engine)
            total = warmup + per_round * rounds
            gate = asyncio.Semaphore(16)

            async def verified(n: int) -> dict[str, str]:
                async with gate:
                    return await _verified(client, n)

            async def prepare() -> list[dict[str, str]]:
                return await asyncio.gather(*(verified(n) for n in range(total)))

            prepared = loop.run_until_complete(prepare())

            def insert(n: int) -> Awaitable[object]:
                return ceiling_client.post("/insert")

            def apply(n: int) -> Awaitable[object]:
                income = 800_000 + (n % 20) * 100_000
                return client.post("/v1/credit/applications", json={**FORM, "monthly_income_fen": income},
                                   headers=prepared[n])

            _cpu_per_op(loop, insert, range(warmup), server.datadir, ceiling_counts)
            _cpu_per_op(loop, apply, range(warmup), server.datadir, counts)
            if os.environ.get("BENCH_CREDIT_CPU_WAIT"):  # time to attach a profiler (py-spy) to this process
                print(json.dumps({"pid": os.getpid(), "waiting_seconds": 5}), flush=True)
                time.sleep(5)
            # Rounds that alternate the two, so a burst of other load on the machine falls on both alike.
            ceilings, ours = [], []
            for r in range(rounds):
                ceilings.append(_cpu_per_op(loop, insert, range(per_round), server.datadir, ceiling_counts))
                first = warmup + r * per_round
                ours.append(_cpu_per_op(loop, apply, range(first, first + per_round), server.datadir, counts))
            ceiling_app._db.dispose()  # type: ignore[union-attr]
            app.state.container.db.dispose()
    finally:
        loop.close()
        shutil.rmtree(workdir, ignore_errors=True)
    ceiling_figures, our_figures = _median_of(ceilings), _median_of(ours)
    print(json.dumps({"bench": "ceiling_fastapi_insert_commit_cpu", "requests": per_round * rounds,
                      "rounds": rounds, **ceiling_figures}), flush=True)
    ratios = sorted(c["total_cpu_ms"] / o["total_cpu_ms"] for c, o in zip(ceilings, ours, strict=True))
    print(json.dumps({"bench": "credit_application_cpu", "applications": per_round * rounds, "rounds": rounds,
                      **our_figures, "total_cpu_ms_range": [min(o["total_cpu_ms"] for o in ours),
                                                            max(o["total_cpu_ms"] for o in ours)],
                      "ceiling": "ceiling_fastapi_insert_commit_cpu",
                      "cpu_ratio": round(statistics.median(ratios), 3),
                      "cpu_ratio_range": [round(ratios[0], 3), round(ratios[-1], 3)],
                      "target_ratio": 0.25}), flush=True)


def _median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds."""
    return {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]}


def _seed_product(env: dict[str, str]) -> None:
    """The demo product (what applications default to), created the way an operator would."""
    import subprocess

    subprocess.run([sys.executable, "-m", "miaodai.cli", "demo", "seed"], env={**os.environ, **env}, check=True,
                   capture_output=True, timeout=120)


def main() -> None:
    bench_in_process()
    bench_http()
