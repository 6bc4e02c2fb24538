"""Loan figures: schedules quoted per second (pure code) and repayments posted per second (PostgreSQL).

Each figure is one JSON line on stdout, in the style of :mod:`bench.onboarding`:
  {"bench": "...", "per_second": ..., "ceiling": "...", "ceiling_per_second": ..., "ratio": ...}

* ``schedules`` — :func:`miaodai.loans.quotes.quote` (the schedule, its IRR APR and the cost-cap check)
  for each repayment method in turn, one process, one thread. The ceiling is the same equal-installment
  arithmetic in plain floats with no APR (what Python itself costs for a 12-row schedule): the ratio says
  what the exact Decimal arithmetic and the IRR cost on top.
* ``repayments`` — :func:`miaodai.loans.repayment_service.post_repayment` called directly (no HTTP) from
  ``BENCH_CONCURRENCY`` processes (default 2 = the cores; the service runs one worker process per core),
  each posting small ``due`` repayments with unique keys round-robin over its own borrower's loans (its
  own loan rows and credit line: no lock shared between processes). The ceiling is pgbench TPC-B on the
  same durable server with the same client count. Set-up (borrowers, lines, drawdowns, signatures,
  payouts) is not timed. After the run the book is checked and the SQL statements of one posting are
  counted. ``BENCH_PROFILE=1`` also prints a cProfile of a one-thread run on stderr.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "2"))
LOANS_PER_WORKER = int(os.environ.get("BENCH_LOANS_PER_WORKER", "20"))
PROFILE = os.environ.get("BENCH_PROFILE", "") not in ("", "0")

# The demo line's rate and the demo product's service fee: what a borrower would be quoted.
ANNUAL_RATE = Decimal("0.1548")
MONTHLY_FEE_RATE = Decimal("0.001")
LOAN_PRINCIPAL_FEN = 5_000_00  # 5,000 yuan, 12 months equal installments: ~48,500 fen due each month
REPAYMENT_FEN = 2_00  # 2 yuan: about 240 postings settle one installment (fee, interest, then principal)
ACTOR = "system:bench"


def emit(name: str, per_second: float, ceiling_name: str, ceiling_per_second: float, **extra: Any) -> None:
    line = {"bench": name, "per_second": round(per_second, 1), **extra, "ceiling": ceiling_name,
            "ceiling_per_second": round(ceiling_per_second, 1),
            "ratio": round(per_second / ceiling_per_second, 3) if ceiling_per_second else None}
    print(json.dumps(line), flush=True)


# -- schedules ------------------------------------------------------------------------------------


def _terms_factory(method: str) -> Callable[[int], Any]:
    from miaodai.loans.schedule import LoanTerms, RepaymentMethod

    start = datetime(2026, 1, 31).date()  # a month end: the short-month rule is exercised too
    monthly = method != "bullet"

    def terms(n: int) -> LoanTerms:
        # The principal varies so no two quotes are the same sum (nothing here caches, but be honest).
        return LoanTerms(principal_fen=1_000_000 + n % 997 * 100, annual_rate=ANNUAL_RATE,
                         method=RepaymentMethod(method), start_date=start,
                         term_months=12 if monthly else None, term_days=None if monthly else 90,
                         monthly_fee_rate=MONTHLY_FEE_RATE)

    return terms


def _count_for(seconds: float, step: Callable[[int], object]) -> tuple[int, float]:
    """Call ``step(n)`` for ``seconds``; returns (calls, elapsed). Checks the time every 16 calls."""
    n = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(16):
            step(n)
            n += 1
        now = time.perf_counter()
        if now >= deadline:
            return n, now - started


def _float_schedule(principal: float, annual_rate: float, fee_rate: float, periods: int) -> list[tuple[float, ...]]:
    """The ceiling: 12 equal-installment rows in floats, rounded to the fen, no APR."""
    r = annual_rate / 12
    growth = (1 + r) ** periods
    payment = round(principal * r * growth / (growth - 1), 2)
    fee = round(principal * fee_rate, 2)
    balance, rows = principal, []
    for period in range(1, periods + 1):
        interest = round(balance * r, 2)
        paid = balance if period == periods else payment - interest
        balance -= paid
        rows.append((period, paid, interest, fee, balance))
    return rows


def bench_schedules(seconds: float = SECONDS) -> dict[str, Any]:
    from miaodai.loans.quotes import quote

    methods = ("equal_installment", "equal_principal", "interest_first", "bullet")
    share = seconds / len(methods)
    per_method: dict[str, float] = {}
    total, elapsed = 0, 0.0
    for method in methods:
        terms = _terms_factory(method)
        quote(terms(0))  # warm imports and caches outside the timing
        count, took = _count_for(share, lambda n, terms=terms: quote(terms(n)))
        per_method[method] = round(count / took, 1)
        total, elapsed = total + count, elapsed + took
    ceiling, ceiling_took = _count_for(min(share, 2.0), lambda n: _float_schedule(10_000 + n % 997, 0.1548, 0.001, 12))
    line = {"per_method": per_method, "completed": total, "seconds": round(elapsed, 2)}
    emit("schedules", total / elapsed, "float_amortization_no_apr", ceiling / ceiling_took, **line)
    return line


# -- repayments -----------------------------------------------------------------------------------


@dataclass
class WorkerResult:
    completed: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


def _settings(url: str, workdir: Path) -> Any:
    from miaodai.core.settings import Environment, Settings

    return Settings(env=Environment.TEST, database_url=url, keyring_file=workdir / "keyring.json",
                    contract_signing_key_file=workdir / "contract-signing-key.pem", sandbox=True,
                    audit_sealer_enabled=False, log_level="WARNING", log_json=True,
                    sandbox_channel_store=workdir / "sandbox-channel.db", sandbox_channel_settle_seconds=0,
                    sandbox_latency_seconds=0)


def create_loans(container: Any, workers: int, loans_per_worker: int) -> list[list[int]]:
    """One verified borrower with its own credit line per worker, and ``loans_per_worker`` active loans each,
    drawn, signed and paid out through the loan services (as the API would). Returns loan ids per worker."""
    from bench.identities import identity_for
    from miaodai import demo
    from miaodai.identity.sessions import AuthContext, find_or_add_device
    from miaodai.loans import loan_service
    from miaodai.loans.schedule import RepaymentMethod
    from miaodai.payments import orders
    from miaodai.payments.bins import sandbox_number
    from miaodai.payments.methods import record_demo_card

    demo.seed_demo(container)  # the demo product and the consent documents' text
    clock = container.clock
    loans: list[list[int]] = []
    for w in range(workers):
        # The seed's own helpers: a borrower past onboarding (identity, four consents) and a granted line.
        name, id_number = identity_for(900_000 + w)
        who = demo.DemoBorrower(f"+86139{w:08d}", name, id_number, line_fen=LOAN_PRINCIPAL_FEN * loans_per_worker)
        with container.db.transaction() as session:
            borrower_id = demo._ensure_borrower(session, container, who, clock.now())
            assert borrower_id is not None, "a fresh database has no bench borrowers yet"
            demo._add_line(session, container, borrower_id, who, clock.now())
            record_demo_card(session, container, borrower_id, sandbox_number("622202", 19, f"66{w:08d}"), who.phone,
                             now=clock.now(), actor=ACTOR)
            device = find_or_add_device(session, container.vault, borrower_id=borrower_id,
                                        device_key=f"bench-device-{w}", label="bench", now=clock.now())
            session.flush()
            auth = AuthContext(borrower_id=borrower_id, session_id=0, device_id=device.id, step_up_at=clock.now())
        line_id = loan_service.line_service.borrower_lines(container, borrower_id)[0].id
        ids = []
        for k in range(loans_per_worker):
            loan, _ = loan_service.request_drawdown(container, auth, loan_service.DrawdownRequest(
                line_id=line_id, principal_fen=LOAN_PRINCIPAL_FEN, method=RepaymentMethod.EQUAL_INSTALLMENT,
                term_months=12, term_days=None, request_key=f"bench-{w}-{k}"))
            contract, _text = loan_service.open_contract(container, auth, loan.id)
            loan_service.sign(container, auth, loan.id, read_sha256=contract.sha256,
                              code=_signing_code(container, borrower_id, contract))
            orders.send_loan_payout(container, loan.id)  # the sandbox channel (settling at once) pays it
            paid = orders.check(container, orders.loan_payouts(container, loan.id)[0][0].id)
            assert paid.status.value == "succeeded", paid.status
            ids.append(loan.id)
        loans.append(ids)
    return loans


def _signing_code(container: Any, borrower_id: int, contract: Any, code: str = "246810") -> str:
    """A code for signing ``contract``, stored as the send path stores it (keyed hash bound to the contract's
    number and SHA-256, delivered): set-up signs many loans at one instant, where the resend cooldown and the
    hourly cap would refuse real sends. The signing redeems it exactly as it redeems a code sent by SMS."""
    from miaodai.identity import otp
    from miaodai.identity.login_service import _bound, _code_key
    from miaodai.identity.models import Borrower, DeliveryStatus, OtpChallenge, OtpChannel, OtpPurpose
    from miaodai.loans import contract_service

    now = container.clock.now()
    with container.db.transaction() as session:
        phone_bidx = session.get_one(Borrower, borrower_id).phone_bidx
        purpose = _bound(OtpPurpose.CONTRACT_SIGN, contract_service.binding_of(contract))
        session.add(OtpChallenge(
            phone_bidx=phone_bidx, purpose=OtpPurpose.CONTRACT_SIGN, channel=OtpChannel.SMS,
            code_hash=otp.hash_code(_code_key(container), phone_bidx=phone_bidx, purpose=purpose, code=code),
            created_at=now, expires_at=now + timedelta(seconds=container.settings.otp_ttl_seconds), wrong_guesses=0,
            delivery=DeliveryStatus.SENT, ip_bidx="bench", device_key_bidx="bench"))
    return code


def _post_loop(container: Any, loan_ids: list[int], prefix: str, deadline: float, result: WorkerResult) -> None:
    """Post small due repayments round-robin over ``loan_ids`` until ``deadline`` (perf_counter)."""
    from miaodai.loans.repayment_service import RepaymentRequest, post_repayment

    n = 0
    received_at = container.clock.now()
    while time.perf_counter() < deadline:
        request = RepaymentRequest(loan_id=loan_ids[n % len(loan_ids)], amount_fen=REPAYMENT_FEN,
                                   idempotency_key=f"{prefix}-{n}", channel="sandbox", received_at=received_at)
        n += 1
        started = time.perf_counter()
        try:
            posted = post_repayment(container, request, actor=ACTOR)
            assert posted.created
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.completed += 1
        except Exception as exc:  # counted and reported beside the rate
            result.errors.append(repr(exc))


def _posting_process(url: str, workdir: str, now: datetime, loan_ids: list[int], prefix: str, start_at: float,
                     seconds: float, warmup: float) -> tuple[WorkerResult, float]:
    """One service process (as one uvicorn worker is): its own container and connection pool. Posts for
    ``warmup`` seconds, waits for the common start (``start_at``, wall clock), then posts for ``seconds``."""
    from miaodai.container import build_container
    from miaodai.core.clock import FixedClock

    container = build_container(_settings(url, Path(workdir)), clock=FixedClock(now))
    try:
        _post_loop(container, loan_ids, f"{prefix}-warmup", time.perf_counter() + warmup, WorkerResult())
        time.sleep(max(0.0, start_at - time.time()))
        result = WorkerResult()
        started = time.perf_counter()
        _post_loop(container, loan_ids, prefix, started + seconds, result)
        return result, time.perf_counter() - started
    finally:
        container.db.dispose()


def run_posting(url: str, workdir: Path, now: datetime, loans: list[list[int]], seconds: float,
                tag: str) -> tuple[int, int, float, list[float]]:
    """One process per client posts for ``seconds``; returns (completed, errors, elapsed, latencies).

    Processes, not threads: the service runs one worker process per core, and threads would share one
    interpreter lock and measure Python's GIL rather than the service."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    warmup = min(1.0, seconds / 5)
    start_at = time.time() + warmup + 5.0  # room for the workers to start and warm up
    with ProcessPoolExecutor(len(loans), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_posting_process, url, str(workdir), now, ids, f"{tag}-{i}", start_at, seconds, warmup)
                   for i, ids in enumerate(loans)]
        outcomes = [future.result() for future in futures]
    results = [result for result, _ in outcomes]
    elapsed = max(took for _, took in outcomes)
    errors = [e for r in results for e in r.errors]
    if errors:
        print(f"# repayments: {len(errors)} errors, first: {errors[0]}", file=sys.stderr)
    latencies = [x for r in results for x in r.latencies_ms]
    return sum(r.completed for r in results), len(errors), elapsed, latencies


@contextmanager
def counting_statements(engine: Any) -> Iterator[list[str]]:
    from sqlalchemy import event

    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def statement_profile(container: Any, loan_ids: list[int], posts: int = 20, tag: str = "count") -> dict[str, Any]:
    """The SQL one posting sends (counted over ``posts`` postings in one thread), by its first words.

    Cursor executions only: BEGIN and COMMIT (sent by the driver) and the pool's pre-ping come on top."""
    from miaodai.loans.repayment_service import RepaymentRequest, post_repayment

    received_at = container.clock.now()
    with counting_statements(container.db.engine) as seen:
        for n in range(posts):
            post_repayment(container, RepaymentRequest(
                loan_id=loan_ids[n % len(loan_ids)], amount_fen=REPAYMENT_FEN, idempotency_key=f"{tag}-{n}",
                channel="sandbox", received_at=received_at), actor=ACTOR)
    kinds: dict[str, int] = {}
    for statement in seen:
        words = statement.split()
        key = " ".join(words[:3] if words[0] in ("INSERT", "DELETE") else words[:1])
        if words[0] == "SELECT":  # named by its first column's table ("loans.id," -> loans) or function
            first = words[1].split("(")[0]
            key = f"SELECT {first.split('.')[0]}"
        elif words[0] == "UPDATE":
            key = f"UPDATE {words[1]}"
        kinds[key] = kinds.get(key, 0) + 1
    return {"statements_per_repayment": round(len(seen) / posts, 1),
            "statement_kinds_per_repayment": {k: round(v / posts, 2) for k, v in sorted(kinds.items())}}


def profile_posting(container: Any, loan_ids: list[int], seconds: float) -> None:
    """cProfile of one thread posting for ``seconds``, top functions by cumulative and own time, on stderr."""
    result = WorkerResult()
    profiler = cProfile.Profile()
    profiler.enable()
    _post_loop(container, loan_ids, "profile", time.perf_counter() + seconds, result)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    print(f"# cProfile: {result.completed} postings in one thread over {seconds:.1f}s", file=out)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    print(out.getvalue(), file=sys.stderr)


def bench_repayments(seconds: float = SECONDS, clients: int = CONCURRENCY) -> dict[str, Any]:
    from bench.onboarding import pgbench_tps
    from miaodai.container import build_container
    from miaodai.core.clock import BUSINESS_TZ, FixedClock
    from miaodai.ledger.service import check_book, trial_balance
    from miaodai.loans.accounting import mismatched_loans
    from miaodai.loans.schedule import add_months
    from miaodai.migrate import upgrade
    from miaodai.testing.pgserver import running_postgres

    workdir = Path(tempfile.mkdtemp(prefix="miaodai-bench-loans-"))
    try:
        with running_postgres(durable=True) as server:
            url = server.create_database("miaodai")
            upgrade(url)
            # A fixed clock: the loans start today at 10:00 Beijing time, and every repayment arrives on the
            # first due date, so it pays the installment then due (fee → interest → principal) and not only held.
            today = datetime.now(BUSINESS_TZ).replace(hour=10, minute=0, second=0, microsecond=0)
            clock = FixedClock(today)
            container = build_container(_settings(url, workdir), clock=clock)
            try:
                setup_started = time.perf_counter()
                loans = create_loans(container, clients, LOANS_PER_WORKER)
                setup_seconds = time.perf_counter() - setup_started
                first_due = add_months(today.date(), 1)
                clock.advance(timedelta(days=(first_due - today.date()).days))
                completed, errors, elapsed, latencies = run_posting(url, workdir, clock.now(), loans, seconds, "bench")
                rate = completed / elapsed if elapsed else 0.0
                counted = statement_profile(container, [i for ids in loans for i in ids])
                if PROFILE:
                    profile_posting(container, loans[0], min(seconds, 5.0))
                with container.db.transaction() as session:
                    book_sound = (trial_balance(session).balanced and check_book(session) == []
                                  and list(mismatched_loans(session)) == [])
            finally:
                container.db.dispose()
            tps = pgbench_tps(server, clients=clients)
        latencies.sort()
        line = {"completed": completed, "errors": errors, "clients": clients,
                "loans": sum(len(ids) for ids in loans),
                "p50_ms": round(latencies[len(latencies) // 2], 2) if latencies else 0.0,
                "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2)
                if latencies else 0.0,
                "setup_seconds": round(setup_seconds, 1), "book_sound": book_sound, **counted}
        emit("repayments", rate, "pgbench_tpcb", tps, **line)
        return {"per_second": rate, "ceiling_per_second": tps, **line}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    bench_schedules()
    bench_repayments()


if __name__ == "__main__":
    main()
