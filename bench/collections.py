"""Repayments collected end to end: ``POST /v1/loans/{id}/repayments`` → the sandbox channel → its signed
callback → the ledger, on a durable PostgreSQL, beside pgbench TPC-B on the same server in the same run.

``uv run python -m bench collections`` prints two JSON lines:
  {"bench": "collections", "per_second": ..., ..., "ceiling": "pgbench_tpcb", "ceiling_per_second": ..., "ratio": ...}
  {"bench": "collections_paced", "offered_per_second": ..., "completion_p50_ms": ..., ...}

* Set-up (not timed): ``BENCH_CONCURRENCY`` borrowers (default 32), each with a bound card the channel
  always pays from and a share of ``BENCH_COLLECTION_LOANS`` active loans (default two each), drawn, signed
  and paid out through the loan services (:func:`bench.loans.create_loans`) under a clock set one month
  back, so every loan's first installment is due today and each collection pays into it (fee → interest →
  principal) rather than only being held. Each borrower gets a session token.
* The service runs under uvicorn (``BENCH_WORKERS``, default 2) with its payments worker every
  ``BENCH_COLLECTION_WORKER_INTERVAL`` seconds (0.05) and its public URL on the served port, so the
  sandbox channel's callbacks come back over HTTP as a real channel's would. The channel settles
  ``BENCH_COLLECTION_SETTLE_SECONDS`` (1) after accepting — to the whole second, so 0 to 1 s later; with
  0 it would answer "succeeded" to the submit itself and the callback would only ever be a duplicate,
  which is not the path this bench is for.
* ``BENCH_CONCURRENCY`` clients each keep one collection in flight: take a free loan, post a small due
  repayment (2 yuan, its own Idempotency-Key), wait until the order is final, give the loan back
  (:class:`Collector`). Closed over completion, not only over the 202: clients that post as fast as they
  are answered pile callbacks up behind their requests (in a first version, 24 accepted/s against 3
  collected/s and a backlog 30 s deep). ``busy_409`` counts PAYMENT_REPAYMENT_IN_PROGRESS answers (a loan
  still collecting), which the loan pool keeps at zero.
* The figure, ``per_second``: collection orders that reached ``succeeded`` **with their repayment posted**
  during the measured ``BENCH_SECONDS`` window, over the window — not the 202s (``accepted_per_second``).
  A warm-up first fills the pipeline, so the window sees steady state. Completion latency comes from the
  database at the end, not from the clients: ``settled_at − created_at`` of each order accepted in the
  window, both stamped by the service's clock at the moment itself (the clients learn it up to 50 ms
  late, from a look-up of their orders every 50 ms). ``after_channel`` is ``settled_at − finished_at`` (the
  channel's completion time): our side of it — the callback's delivery, verification and posting —
  without the sandbox's made-up settling delay. ``settled_by`` says which answer settled each order (the
  callback, a query after a lost callback, or the submit's own answer), ``callbacks`` what became of
  each callback received.
* ``service_cpu_ms_per_collection`` / ``postgresql_cpu_ms_per_collection``: the CPU (user + system) the
  uvicorn processes and the PostgreSQL server used during the window, over the collections completed in
  it — what a collection costs, which unlike the rate hardly depends on what else the machine runs.
* The closed-loop clients keep the service saturated, so the first line's completion latency includes
  the queue. ``collections_paced`` then offers repayments open-loop at half the rate just collected for
  another ``BENCH_SECONDS``: its completion latency is what a borrower waits at a realistic load (as
  ``credit_application_http_paced`` does).
* After the run: the remaining collections are allowed to finish, ``miaodai payments recover`` makes one
  final pass, and the book is checked — trial balance zero, no findings, no loan whose sub-ledger
  disagrees with its installments, every succeeded order posted exactly once as the Repayment keyed
  ``order:<order_no>`` for its amount (and no such Repayment without one), nothing left in flight.
  ``book_sound`` says so. The bench exits non-zero when it does not hold, or when a client met an error
  answer other than 409, or an order that failed or was not final within a minute (``errors``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from bench.harness import Client, LoadResult, run_load, run_paced, serve

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))  # collections in flight
LOANS = int(os.environ.get("BENCH_COLLECTION_LOANS", str(2 * CONCURRENCY)))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
SETTLE_SECONDS = float(os.environ.get("BENCH_COLLECTION_SETTLE_SECONDS", "1"))
WORKER_INTERVAL = float(os.environ.get("BENCH_COLLECTION_WORKER_INTERVAL", "0.05"))
COLLECTION_FEN = 2_00  # 2 yuan: ~240 collections settle one loan's first installment
IN_PROGRESS = "PAYMENT_REPAYMENT_IN_PROGRESS"
BUSY_BACKOFF_SECONDS = 0.1  # after a 409, before the client's next request
WATCH_SECONDS = 0.05  # how often the clients' orders are looked up while they wait
FINAL_WITHIN_SECONDS = 60.0  # a collection not final by then is stuck: a bug
DRAIN_SECONDS = 60.0  # how long the collections still in flight after the window may take to finish


def start_a_month_back(today: date) -> date:
    """The latest start date whose first monthly due date is today (after a short month, a day or two
    before), so a loan started then has an installment due now."""
    from miaodai.loans.schedule import add_months

    return max(d for d in (today - timedelta(days=k) for k in range(27, 32)) if add_months(d, 1) <= today)


def open_sessions(container: Any, borrower_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """A session per borrower, opened now (the real clock the service runs on): their request headers."""
    from miaodai.identity.sessions import find_or_add_device, open_session

    now = datetime.now(UTC)
    headers = {}
    with container.db.transaction() as session:
        for borrower_id in borrower_ids:
            device = find_or_add_device(session, container.vault, borrower_id=borrower_id,
                                        device_key=f"bench-collect-{borrower_id}", label="bench", now=now)
            token, _ = open_session(session, borrower_id=borrower_id, device_id=device.id,
                                    pepper=container.settings.session_pepper, now=now, ttl=timedelta(hours=6))
            headers[borrower_id] = {"Authorization": f"Bearer {token}"}
    return headers


def prepare(url: str, workdir: Path, borrowers: int, loans: int) -> list[tuple[int, dict[str, str]]]:
    """Borrowers with cards and active loans paid out, and their tokens: (loan id, headers) in the order the
    clients take them — round-robin across borrowers, so consecutive requests touch different borrowers."""
    from sqlalchemy import select

    from bench.loans import _settings, create_loans
    from miaodai.container import build_container
    from miaodai.core.clock import BUSINESS_TZ, FixedClock, business_date
    from miaodai.loans.models import Loan

    start = start_a_month_back(business_date(datetime.now(UTC)))
    clock = FixedClock(datetime.combine(start, clock_time(10, 0), tzinfo=BUSINESS_TZ))
    # The set-up's own channel store: its payouts' callbacks name no live server and are never delivered.
    container = build_container(_settings(url, workdir), clock=clock)
    try:
        loan_ids = create_loans(container, borrowers, -(-loans // borrowers))
        with container.db.autocommit() as session:
            owner = dict(session.execute(select(Loan.id, Loan.borrower_id)
                                         .where(Loan.id.in_([i for ids in loan_ids for i in ids]))).all())
        headers = open_sessions(container, sorted(set(owner.values())))
    finally:
        container.db.dispose()
    by_turn = [loan_id for turn in itertools.zip_longest(*loan_ids) for loan_id in turn if loan_id is not None]
    return [(loan_id, headers[owner[loan_id]]) for loan_id in by_turn[:loans]]


def collection_env(url: str, workdir: Path, port: int) -> dict[str, str]:
    from bench.onboarding import service_env

    return {**service_env(url, workdir), "MIAODAI_SANDBOX_LATENCY_SECONDS": "0",
            "MIAODAI_SANDBOX_CHANNEL_SETTLE_SECONDS": str(SETTLE_SECONDS),
            "MIAODAI_SANDBOX_CHANNEL_STORE": str(workdir / "service-channel.db"),
            "MIAODAI_PAYMENTS_WORKER_ENABLED": "true",
            "MIAODAI_PAYMENTS_WORKER_INTERVAL_SECONDS": str(WORKER_INTERVAL),
            "MIAODAI_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}


class Collector:
    """The clients' task: take a loan no collection of ours is running on, post a due repayment with a new
    Idempotency-Key, wait until the order is final, and give the loan back — so each client has one
    collection in flight and the load is bounded by how fast collections finish, not only by how fast
    they are accepted (unbounded, the callbacks queue behind the requests and the backlog only grows).

    Finality is watched in the database, one query every 50 ms for every order awaited, not by each
    client polling the API (which would add its own load). A 409 (the loan still collecting) or any
    other error answer is counted; the second kind, or an order not final within a minute, is a bug.
    """

    def __init__(self, plan: list[tuple[int, dict[str, str]]], finals: Callable[[list[str]], dict[str, str]]) -> None:
        self._free = deque(plan)
        self._finals = finals
        self._keys = itertools.count()
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self.accept_ms: list[float] = []
        self.busy = self.unexpected = 0

    async def __call__(self, client: Client, _n: int) -> None:
        while not self._free:  # only when open-loop arrivals outrun the loans
            await asyncio.sleep(0.01)
        loan_id, headers = self._free.popleft()
        try:
            await self._collect(client, loan_id, headers)
        finally:
            self._free.append((loan_id, headers))

    async def _collect(self, client: Client, loan_id: int, headers: dict[str, str]) -> None:
        key = f"bench-collect-{next(self._keys)}"  # not _n: each run numbers from 0, and keys never repeat
        started = time.perf_counter()
        try:
            order = await client.post(f"/v1/loans/{loan_id}/repayments", json={"amount_fen": COLLECTION_FEN},
                                      headers={**headers, "Idempotency-Key": key})
        except Exception as exc:
            if ": 409 " in str(exc) and IN_PROGRESS in str(exc):
                self.busy += 1
                await asyncio.sleep(BUSY_BACKOFF_SECONDS)
            else:
                self.unexpected += 1
            raise
        self.accept_ms.append((time.perf_counter() - started) * 1000)
        try:
            status = await asyncio.wait_for(self._final(order["order_no"]), FINAL_WITHIN_SECONDS)  # type: ignore[index]
        except TimeoutError:
            self.unexpected += 1
            raise
        if status != "succeeded":
            self.unexpected += 1
            raise RuntimeError(f"collection {order['order_no']} {status}")  # type: ignore[index]

    def _final(self, order_no: str) -> asyncio.Future[str]:
        loop = asyncio.get_running_loop()
        if self._watcher is None or self._watcher.get_loop() is not loop:  # each run has its own event loop
            self._waiting = {}
            self._watcher = loop.create_task(self._watch())
        return self._waiting.setdefault(order_no, loop.create_future())

    async def _watch(self) -> None:
        while True:
            if self._waiting:
                for order_no, status in (await asyncio.to_thread(self._finals, list(self._waiting))).items():
                    waiter = self._waiting.pop(order_no)
                    if not waiter.done():  # cancelled: its client gave up waiting
                        waiter.set_result(status)
            await asyncio.sleep(WATCH_SECONDS)


def final_statuses(container: Any) -> Callable[[list[str]], dict[str, str]]:
    """For :class:`Collector`: which of these orders are final, and how they ended."""
    from sqlalchemy import select

    from miaodai.payments.models import OrderStatus, PaymentOrder

    def finals(order_nos: list[str]) -> dict[str, str]:
        with container.db.autocommit() as session:
            rows = session.execute(select(PaymentOrder.order_no, PaymentOrder.status).where(
                PaymentOrder.order_no.in_(order_nos),
                PaymentOrder.status.in_((OrderStatus.SUCCEEDED, OrderStatus.FAILED)))).all()
        return {order_no: status.value for order_no, status in rows}

    return finals


@dataclass
class Phase:
    """One measured run: what the clients saw, its wall-clock window (the service stamps orders with the
    same clock), the 409s in it and the accept latencies of its POSTs."""

    result: LoadResult
    window: tuple[datetime, datetime]
    busy: int
    accept_ms: list[float]
    cpu_seconds: dict[str, float]  # CPU used during the run, by the service and by PostgreSQL

    @property
    def seconds(self) -> float:
        return (self.window[1] - self.window[0]).total_seconds()


def measured(collect: Collector, seconds: float, run: Callable[[], LoadResult],
             processes: dict[str, int]) -> Phase:
    """The window is the run's ``seconds`` from its start: after it no client starts a collection, and the
    ones still finishing settle outside it. ``processes`` names the process trees whose CPU is counted."""
    busy, accepted, started = collect.busy, len(collect.accept_ms), datetime.now(UTC)
    cpu_before = {name: process_tree_cpu(pid) for name, pid in processes.items()}
    result = run()
    cpu = {name: process_tree_cpu(pid) - cpu_before[name] for name, pid in processes.items()}
    return Phase(result, (started, started + timedelta(seconds=seconds)), collect.busy - busy,
                 collect.accept_ms[accepted:], cpu)


def process_tree_cpu(root: int) -> float:
    """User + system CPU seconds used so far by a process and its descendants, including the exited ones
    their parents reaped (Linux ``/proc``). Unlike the rate, it hardly moves with what else runs on the
    machine, so runs on a busy machine still compare."""
    parent, used = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # from field 3 (state): ppid, ..., utime, stime, cutime, cstime
        parent[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = sum(int(f) for f in fields[11:15])
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, ppid in parent.items() if ppid in frontier and pid not in tree]
        tree.update(children)
        frontier = children
    return sum(used.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def server_pid(port: int) -> int:
    """The uvicorn process serving ``port`` (its workers are its children)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"uvicorn" in args and b"--port" in args and args[args.index(b"--port") + 1] == str(port).encode():
                return int(entry.name)
    raise RuntimeError(f"no uvicorn on port {port}")


def in_flight(container: Any) -> int:
    from sqlalchemy import func, select

    from miaodai.payments.channel import OrderKind
    from miaodai.payments.models import OrderStatus, PaymentOrder

    with container.db.autocommit() as session:
        return session.execute(select(func.count()).select_from(PaymentOrder).where(
            PaymentOrder.kind == OrderKind.COLLECTION.value,
            PaymentOrder.status.in_((OrderStatus.CREATED, OrderStatus.PROCESSING)))).scalar_one()


def wait_idle(container: Any, limit: float = DRAIN_SECONDS) -> None:
    """Until no collection is at the channel (or ``limit`` seconds): the service's own worker finishes them."""
    deadline = time.monotonic() + limit
    while in_flight(container) and time.monotonic() < deadline:
        time.sleep(0.2)


def final_pass(container: Any, env: dict[str, str]) -> dict[str, Any]:
    """One ``miaodai payments recover`` pass (as an operator would run it) while the service still answers
    callbacks, after the service's worker has had its time; what is left in flight after it."""
    wait_idle(container)
    ran = subprocess.run([sys.executable, "-m", "miaodai.cli", "payments", "recover"], env={**os.environ, **env},
                         check=True, capture_output=True, text=True, timeout=120)
    return {"final_pass": json.loads(ran.stdout.strip().splitlines()[-1]), "left_in_flight": in_flight(container)}


def p50_p99(values_ms: list[float]) -> tuple[float, float]:
    if not values_ms:
        return 0.0, 0.0
    return (round(statistics.median(values_ms), 1),
            round(LoadResult(len(values_ms), 0, 1.0, values_ms).percentile(0.99), 1))


def collection_orders(container: Any) -> list[Any]:
    """Every collection order with the amount of the Repayment keyed ``order:<order_no>`` (None if absent;
    the key is unique, so there is at most one)."""
    from sqlalchemy import literal, select

    from miaodai.loans.models import Repayment
    from miaodai.payments.channel import OrderKind
    from miaodai.payments.models import PaymentOrder

    with container.db.autocommit() as session:
        return list(session.execute(
            select(PaymentOrder.id, PaymentOrder.status, PaymentOrder.amount_fen, PaymentOrder.created_at,
                   PaymentOrder.finished_at, PaymentOrder.settled_at, Repayment.amount_fen.label("posted_fen"))
            .outerjoin(Repayment, Repayment.idempotency_key == literal("order:") + PaymentOrder.order_no)
            .where(PaymentOrder.kind == OrderKind.COLLECTION.value)).all())


def window_figures(orders: list[Any], phase: Phase) -> dict[str, Any]:
    """Collected per second in the phase's window (succeeded and posted, settled inside it), and the
    completion times of the orders accepted in it."""
    from miaodai.payments.models import OrderStatus

    start, end = phase.window
    done = [o for o in orders if o.status is OrderStatus.SUCCEEDED and o.posted_fen is not None]
    accepted = [o for o in done if start <= o.created_at < end]
    collected = sum(1 for o in done if start <= o.settled_at < end)
    completion = p50_p99([(o.settled_at - o.created_at).total_seconds() * 1000 for o in accepted])
    after_channel = p50_p99([(o.settled_at - o.finished_at).total_seconds() * 1000 for o in accepted])
    accept = p50_p99(phase.accept_ms)
    cpu_ms = {f"{name}_cpu_ms_per_collection": round(used * 1000 / collected, 1) if collected else None
              for name, used in phase.cpu_seconds.items()}
    return {"per_second": collected / phase.seconds if phase.seconds else 0.0, "completed": collected,
            "window_seconds": round(phase.seconds, 2),
            "accepted_per_second": round(len(phase.accept_ms) / phase.seconds, 1) if phase.seconds else 0.0,
            "accept_p50_ms": accept[0], "accept_p99_ms": accept[1],
            "completion_p50_ms": completion[0], "completion_p99_ms": completion[1],
            "after_channel_p50_ms": after_channel[0], "after_channel_p99_ms": after_channel[1],
            "busy_409": phase.busy, **cpu_ms}


def posting_findings(container: Any, orders: list[Any]) -> dict[str, Any]:
    """Each collection order against the ledger; which answer settled each one (the first event that said
    "succeeded": the callback, a query after a lost callback, or the submit's own answer); and what became of
    the callbacks received (applied, duplicate, rejected...)."""
    from sqlalchemy import func, literal, select

    from miaodai.loans.models import Repayment
    from miaodai.payments.channel import OrderKind
    from miaodai.payments.models import ChannelCallback, OrderStatus, PaymentOrder, PaymentOrderEvent

    with container.db.autocommit() as session:
        orphans = session.execute(select(Repayment.id).where(
            Repayment.idempotency_key.like("order:%"),
            ~select(PaymentOrder.id).where(literal("order:") + PaymentOrder.order_no == Repayment.idempotency_key,
                                           PaymentOrder.status == OrderStatus.SUCCEEDED).exists())).all()
        answers = session.execute(
            select(PaymentOrderEvent.order_id, PaymentOrderEvent.event)
            .join(PaymentOrder, PaymentOrder.id == PaymentOrderEvent.order_id)
            .where(PaymentOrder.kind == OrderKind.COLLECTION.value,
                   PaymentOrderEvent.status == OrderStatus.SUCCEEDED.value)
            .order_by(PaymentOrderEvent.id)).all()
        callbacks = dict(session.execute(select(ChannelCallback.outcome, func.count())
                                         .group_by(ChannelCallback.outcome)).all())
    first: dict[int, str] = {}
    for order_id, event in answers:
        first.setdefault(order_id, event)
    succeeded = [o for o in orders if o.status is OrderStatus.SUCCEEDED]
    return {"orders": len(orders), "succeeded": len(succeeded),
            "failed": sum(1 for o in orders if o.status is OrderStatus.FAILED),
            "succeeded_not_posted_once": sum(1 for o in succeeded if o.posted_fen != o.amount_fen),
            "repayments_without_succeeded_order": len(orphans),
            "settled_by": dict(sorted(Counter(first.values()).items())), "callbacks": dict(sorted(callbacks.items()))}


def book_findings(container: Any) -> dict[str, Any]:
    from miaodai.ledger.service import check_book, trial_balance
    from miaodai.loans.accounting import mismatched_loans

    with container.db.transaction() as session:
        return {"trial_balance_zero": trial_balance(session).balanced, "book_findings": len(check_book(session)),
                "mismatched_loans": len(list(mismatched_loans(session)))}


def bench_collections(seconds: float = SECONDS, clients: int = CONCURRENCY) -> dict[str, Any]:
    from bench.loans import _settings, emit
    from bench.onboarding import pgbench_tps
    from miaodai.container import build_container
    from miaodai.migrate import upgrade
    from miaodai.testing.pgserver import free_port, running_postgres

    workdir = Path(tempfile.mkdtemp(prefix="miaodai-bench-collections-"))
    try:
        with running_postgres(durable=True) as server:
            url = server.create_database("miaodai")
            upgrade(url)
            port = free_port()
            env = collection_env(url, workdir, port)  # writes the keyring the set-up encrypts cards with
            setup_started = time.perf_counter()
            plan = prepare(url, workdir, clients, LOANS)
            setup_seconds = time.perf_counter() - setup_started
            reader = build_container(_settings(url, workdir))  # reads and checks; moves no money
            try:
                collect = Collector(plan, final_statuses(reader))
                with serve("miaodai.app:asgi", env, workers=WORKERS, factory=True, port=port) as base:
                    postmaster = int((server.datadir / "postmaster.pid").read_text().split()[0])
                    processes = {"service": server_pid(port), "postgresql": postmaster}
                    run_load(base, collect, concurrency=clients, seconds=max(2.0, SETTLE_SECONDS + 1),
                             warmup_seconds=0)  # fills the pipeline: callbacks coming back as requests go out
                    closed = measured(collect, seconds, lambda: run_load(base, collect, concurrency=clients,
                                                                         seconds=seconds, warmup_seconds=0),
                                      processes)
                    wait_idle(reader)
                    capacity = window_figures(collection_orders(reader), closed)["per_second"]
                    offered = max(1.0, round(capacity / 2, 1))
                    paced = measured(collect, seconds, lambda: run_paced(base, collect, rate=offered,
                                                                         seconds=seconds), processes)
                    drained = final_pass(reader, env)
                orders = collection_orders(reader)
                checks = {**posting_findings(reader, orders), **drained, **book_findings(reader)}
            finally:
                reader.db.dispose()
            tps = pgbench_tps(server, clients=clients)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    book_sound = (checks["trial_balance_zero"] and checks["book_findings"] == 0 and checks["mismatched_loans"] == 0
                  and checks["succeeded_not_posted_once"] == 0 and checks["repayments_without_succeeded_order"] == 0
                  and checks["left_in_flight"] == 0)
    figures = window_figures(orders, closed)
    line = {**figures, "clients": clients, "loans": len(plan), "errors": collect.unexpected, **checks,
            "settle_seconds": SETTLE_SECONDS, "worker_interval_seconds": WORKER_INTERVAL,
            "setup_seconds": round(setup_seconds, 1), "book_sound": book_sound}
    emit("collections", line.pop("per_second"), "pgbench_tpcb", tps, **line)
    at_half = window_figures(orders, paced)
    emit("collections_paced", at_half.pop("per_second"), "pgbench_tpcb", tps, offered_per_second=offered,
         **at_half, errors=paced.result.errors - paced.busy)
    if not book_sound or collect.unexpected:
        raise SystemExit(f"collections: the book or the answers are not sound: {line}")
    return line


def main() -> None:
    bench_collections()
