"""The end-of-day batch on a large book: one date over ``BENCH_EOD_LOANS`` loans (default 1,000,000) on
PostgreSQL, beside one plain ``UPDATE`` of the same loan rows measured in the same run.

``uv run python -m bench eod`` (or ``make bench``) prints one JSON line:
  {"bench": "eod", "loans": ..., "eod_seconds": ..., "steps": {...}, "plain_update_seconds": ...,
   "ratio_to_plain_update": ..., "lock_pass_seconds": ..., "locking_share": ..., "target_seconds": 120, ...}
``lock_pass_seconds`` is one pass of the batch's chunk lock alone (miaodai.loans.locking) over the book;
five steps take it, so ``locking_share`` = 5 × that / the batch's time.

The book is built with set-based SQL (not timed): one demo borrower and line hold every loan (the batch
never reads borrowers or lines), 12-month equal-installment schedules taken from the real schedule module
for five principal sizes, start dates spread over the last 30 days so about 1/30 of the book falls due
on the date, and 5 % of the loans overdue by 4 to 104 days (unpaid, posted due), so the penalty,
status, reminder and auto-debit steps have real work. The server is durable (fsync on), like production.
"""

# ruff: noqa: S608 - the SQL here is built from module constants only; values are bound parameters

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any

LOANS = int(os.environ.get("BENCH_EOD_LOANS", "1000000"))
CHUNK = int(os.environ.get("BENCH_EOD_CHUNK", "50000"))
PRINCIPALS = (300_000, 500_000, 1_000_000, 2_000_000, 5_000_000)  # fen
ANNUAL_RATE = Decimal("0.1548")
FEE_RATE = Decimal("0.001")
OVERDUE_EVERY = 20  # one loan in 20 has unpaid installments past due
TARGET_SECONDS = 120


def _templates(start: date) -> list[tuple[int, int, int, int, int]]:
    """(class, period, principal, interest, fee) of a real 12-month schedule per principal size."""
    from miaodai.loans.schedule import LoanTerms, RepaymentMethod, build_schedule

    rows = []
    for cls, principal in enumerate(PRINCIPALS):
        schedule = build_schedule(LoanTerms(principal_fen=principal, annual_rate=ANNUAL_RATE,
                                            method=RepaymentMethod.EQUAL_INSTALLMENT, start_date=start,
                                            term_months=12, monthly_fee_rate=FEE_RATE))
        rows += [(cls, i.period, i.principal_fen, i.interest_fen, i.fee_fen) for i in schedule.installments]
    return rows


def build_book(container: Any, day: date, loans: int) -> dict[str, Any]:
    """``loans`` loans on the book at the close of ``day``; returns their counts."""
    from sqlalchemy import select, text

    from miaodai.demo import seed_demo
    from miaodai.loans.models import CreditLine, LoanProduct

    seed_demo(container)
    with container.db.transaction() as session:
        line = session.execute(select(CreditLine).order_by(CreditLine.id)).scalars().first()
        product_id = session.execute(select(LoanProduct.id)).scalars().first()
        session.execute(text("CREATE TABLE bench_template (cls int, period int, principal bigint, interest bigint, "
                             "fee bigint)"))
        session.execute(text("INSERT INTO bench_template VALUES (:c, :p, :pr, :i, :f)"),
                        [dict(zip(("c", "p", "pr", "i", "f"), row, strict=True))
                         for row in _templates(day)])
        # Current loans start 1–31 days before the day after `day` (so 1/31 fall due on it); overdue ones
        # started 35–134 days before, so their first one to four installments are 4–104 days past due.
        session.execute(text(f"""
            INSERT INTO loans (loan_no, borrower_id, credit_line_id, product_id, status, principal_fen, method,
                term_months, annual_rate, monthly_fee_rate, day_count, penalty_annual_rate, late_fee_fen,
                grace_days, cost_cap, allocation_order, apr, total_interest_fen, total_fee_fen, start_date,
                principal_outstanding_fen, overpayment_fen, days_past_due, accrued_interest_fen, payout_attempts,
                request_key, requested_at, signed_at, disbursed_at, version)
            SELECT 'BENCH' || g, :borrower, :line, :product,
                CASE WHEN g % {OVERDUE_EVERY} = 0 THEN 'overdue' ELSE 'active' END,
                t.principal, 'equal_installment', 12, 0.1548, 0.001, 'ACT/360', 0.2322, 2000, 3, 0.24,
                'penalty,fee,interest,principal', 0.177, t.interest, t.fee,
                CAST(:tomorrow AS date) - CASE WHEN g % {OVERDUE_EVERY} = 0 THEN 35 + (g / {OVERDUE_EVERY}) % 100
                                               ELSE 1 + g % 31 END,
                t.principal, 0, 0, 0, 1, 'bench-' || g, :now, :now, :now, 1
            FROM generate_series(1, :n) g
            JOIN (SELECT cls, SUM(principal) AS principal, SUM(interest) AS interest, SUM(fee) AS fee
                  FROM bench_template GROUP BY cls) t ON t.cls = g % {len(PRINCIPALS)}
        """), {"borrower": line.borrower_id, "line": line.id, "product": product_id, "n": loans,
               "tomorrow": day + timedelta(days=1), "now": container.clock.now()})
    with container.db.transaction() as session:
        session.execute(text("""
            INSERT INTO loan_installments (loan_id, period, due_date, principal_fen, interest_fen, fee_fen,
                penalty_fen, principal_paid_fen, interest_paid_fen, fee_paid_fen, penalty_paid_fen, posted_due,
                late_fee_charged)
            SELECT l.id, t.period, CAST(l.start_date + make_interval(months => t.period) AS date),
                t.principal, t.interest, t.fee, 0, 0, 0, 0, 0,
                CAST(l.start_date + make_interval(months => t.period) AS date) <= :day, false
            FROM loans l JOIN bench_template t
                ON t.cls = CAST(substr(l.loan_no, 6) AS bigint) % :classes
            WHERE l.loan_no LIKE 'BENCH%'
        """), {"day": day, "classes": len(PRINCIPALS)})
        # Overdue loans: days past due as of the morning after `day`.
        session.execute(text("""
            UPDATE loans SET days_past_due = CAST(:tomorrow AS date) - o.oldest
            FROM (SELECT loan_id, MIN(due_date) AS oldest FROM loan_installments WHERE due_date <= :day
                  GROUP BY loan_id) o
            WHERE o.loan_id = loans.id AND loans.status = 'overdue'
        """), {"day": day, "tomorrow": day + timedelta(days=1)})
        session.execute(text("DROP TABLE bench_template"))
    with container.db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    with container.db.transaction() as session:
        counts = session.execute(text(
            "SELECT (SELECT COUNT(*) FROM loans), (SELECT COUNT(*) FROM loan_installments), "
            "(SELECT COUNT(*) FROM loans WHERE status = 'overdue'), "
            "(SELECT COUNT(*) FROM loan_installments WHERE due_date = :tomorrow)"
        ), {"tomorrow": day + timedelta(days=1)}).one()
    return {"loans": counts[0], "installments": counts[1], "overdue_loans": counts[2],
            "installments_falling_due": counts[3]}


def plain_update_seconds(container: Any) -> float:
    """One plain UPDATE of every loan on the book, committed: the floor for touching each row once."""
    from sqlalchemy import text

    started = time.perf_counter()
    with container.db.transaction() as session:
        session.execute(text("UPDATE loans SET accrued_interest_fen = accrued_interest_fen + 1 "
                             "WHERE status IN ('active', 'overdue')"))
    return time.perf_counter() - started


def lock_pass_seconds(container: Any, day: date) -> float:
    """One pass of the batch's loan lock alone (``lock_loan_range`` over each chunk, a transaction per
    chunk, committed): what the locking protocol adds to each of the five steps that take it."""
    from miaodai.loans.eod import LOCKING, _Batch
    from miaodai.loans.locking import lock_loan_range

    assert len(LOCKING) == 5
    ranges = _Batch(container, day, CHUNK, None).ranges
    started = time.perf_counter()
    for low, high in ranges:
        with container.db.transaction() as session:
            lock_loan_range(session, low, high)
    return time.perf_counter() - started


def main() -> dict[str, Any]:
    from miaodai.container import build_container
    from miaodai.core.clock import BUSINESS_TZ, FixedClock
    from miaodai.core.settings import Environment, Settings
    from miaodai.loans.eod import run_eod
    from miaodai.migrate import upgrade
    from miaodai.testing.pgserver import running_postgres

    # BENCH_EOD_DAY: the business date closed; a month's last day adds the month-end snapshot to the batch.
    day = date.fromisoformat(os.environ.get("BENCH_EOD_DAY", "2026-11-20"))
    clock = FixedClock(datetime.combine(day + timedelta(days=1), clock_time(1, 0), tzinfo=BUSINESS_TZ))
    workdir = Path(tempfile.mkdtemp(prefix="miaodai-bench-eod-"))
    try:
        with running_postgres(durable=True) as server:
            url = server.create_database("miaodai")
            upgrade(url)
            settings = Settings(env=Environment.TEST, database_url=url, keyring_file=workdir / "keyring.json",
                                contract_signing_key_file=workdir / "contract-signing-key.pem", sandbox=True,
                                audit_sealer_enabled=False, log_level="WARNING", log_json=True)
            container = build_container(settings, clock=clock)
            try:
                started = time.perf_counter()
                book = build_book(container, day, LOANS)
                build_seconds = time.perf_counter() - started

                marks: dict[str, float] = {}
                last = [time.perf_counter()]

                def progress(step: str, done: int, total: int) -> None:
                    if done == total:
                        now = time.perf_counter()
                        marks[step] = round(now - last[0], 2)
                        last[0] = now

                started = time.perf_counter()
                report = run_eod(container, day, chunk=CHUNK, progress=progress)
                eod_seconds = time.perf_counter() - started
                update_seconds = plain_update_seconds(container)
                lock_seconds = lock_pass_seconds(container, day)
            finally:
                container.db.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    line = {"bench": "eod", **book, "chunk": CHUNK, "build_seconds": round(build_seconds, 1),
            "eod_seconds": round(eod_seconds, 2), "steps": marks,
            "plain_update_seconds": round(update_seconds, 2),
            "ratio_to_plain_update": round(eod_seconds / update_seconds, 2) if update_seconds else None,
            "lock_pass_seconds": round(lock_seconds, 2), "locking_share": round(5 * lock_seconds / eod_seconds, 3),
            "target_seconds": TARGET_SECONDS, "figures": report.steps}
    print(json.dumps(line), flush=True)
    return line


if __name__ == "__main__":
    main()
