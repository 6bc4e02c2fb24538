"""The dashboards' SQL aggregates on a 1,000,000-loan book, on SQLite and on PostgreSQL.

``uv run python -m bench dashboards`` (or ``make bench``) builds the same book on each backend and prints one
JSON line per backend: the time to build it (not a figure), the time of one month-end snapshot of the whole
book (what the end-of-day batch adds on the last day of a month), and each dashboard query's time, the
median of ``BENCH_DASHBOARD_RUNS`` runs (default 5) after one warm-up, over a year and over 30 days. Before
the figures are timed the book's daily roll-ups are written by the function the end-of-day batch calls
(:func:`miaodai.core.rollups.catch_up_all` over ``container.daily_rollups``, timed: ``rollup_seconds``), so
the figures read them up to 2026-11-30 and the base tables after; ``live_*_ms`` times each figure once more
read from the base tables alone (``rolled=False``: what they cost without the roll-ups), one run after the
timed ones, unless ``BENCH_DASHBOARD_LIVE=0``.
``BENCH_DASHBOARD_LOANS`` (default 1,000,000) sizes the book; ``BENCH_DASHBOARD_BACKENDS`` picks
``sqlite,postgresql`` (default both).

The book, built with portable set-based SQL (so the very same statements run on both databases) on top of
the demo data (one borrower, line, product and card hold everything; the dashboards never read them):

* loans disbursed over the 365 days to 2026-11-30, five principal sizes: 10 % paid off, 1 % written off, 5 %
  overdue (1–150 days past due), the rest current; loans' installments are not built (no dashboard reads them);
* eleven month ends of history (2025-12-31 … 2026-10-31) written as the batch would have: 5 % of the loans
  roll current → M1 → M2 → M3 → M3+ month by month, 2 % go M1 in their third month and cure, paid-off
  loans leave after three months, written-off ones after six; then the batch's own month-end snapshot of
  2026-11-30 over the live book (timed);
* 1,000,000 credit applications over the same days (60 % approved, 30 % declined with one of seven reasons,
  10 % review; decision times 5–304 ms; scores 480–679 by the champion);
* a payout order per loan and a collection order for every second one (0.1 % failed, 0.02 % still
  processing, half of those unknown), a callback per payout (lags 0.2–12 s), 300 open reconciliation
  exceptions; payoffs for paid-off loans and due repayments for a third of the loans.
"""

# ruff: noqa: S608 - the SQL here is built from module constants only; values are bound parameters

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

from bench.harness import backend_container, each_backend

LOANS = int(os.environ.get("BENCH_DASHBOARD_LOANS", "1000000"))
RUNS = int(os.environ.get("BENCH_DASHBOARD_RUNS", "5"))
BACKENDS = tuple(os.environ.get("BENCH_DASHBOARD_BACKENDS", "sqlite,postgresql").split(","))
LIVE = os.environ.get("BENCH_DASHBOARD_LIVE", "1") != "0"
LAST_MONTH_END = date(2026, 11, 30)
FIRST_DAY = LAST_MONTH_END - timedelta(days=364)
PRINCIPALS = (300_000, 500_000, 1_000_000, 2_000_000, 5_000_000)  # fen
REASONS = ("CREDIT_DTI_TOO_HIGH", "CREDIT_BUREAU_OVERDUE", "CREDIT_SCORE_LOW", "CREDIT_TOO_MANY_INQUIRIES",
           "CREDIT_PHONE_TENURE", "CREDIT_SHARED_DEVICE", "CREDIT_STUDENT")
LAGS_MS = (200, 500, 800, 1500, 3000, 300, 400, 12000)  # callback lag by variant
CHUNK = 50_000
TARGET_MS = 300.0  # "well under a second"


def _helper_tables(metadata: Any) -> dict[str, Any]:
    from sqlalchemy import Column, Date, Integer, Table

    from miaodai.core.db import UTCDateTime

    return {
        "n": Table("bench_n", metadata, Column("n", Integer, primary_key=True)),
        "days": Table("bench_days", metadata, Column("n", Integer, primary_key=True), Column("day", Date),
                      Column("at", UTCDateTime())),
        "times": Table("bench_times", metadata, Column("n", Integer, primary_key=True),
                       Column("created", UTCDateTime()), Column("finished", UTCDateTime()),
                       Column("received", UTCDateTime())),
        "principal": Table("bench_principal", metadata, Column("cls", Integer, primary_key=True),
                           Column("principal", Integer)),
        "months": Table("bench_months", metadata, Column("as_of", Date, primary_key=True), Column("month", Integer)),
    }


def _month_ends() -> list[date]:
    ends = []
    month = FIRST_DAY.replace(day=1)
    while month < LAST_MONTH_END.replace(day=1):
        following = (month + timedelta(days=32)).replace(day=1)
        ends.append(following - timedelta(days=1))
        month = following
    return ends  # the month ends before the last one


def build_book(container: Any, loans: int) -> dict[str, Any]:
    """The book described above; returns its row counts."""
    from sqlalchemy import Date, MetaData, bindparam, insert, select, text

    from miaodai.core.db import SqlText, UTCDateTime
    from miaodai.demo import seed_demo
    from miaodai.loans.models import CreditLine, LoanProduct
    from miaodai.payments.models import PaymentMethod

    seed_demo(container)
    s = SqlText(container.db.dialect)
    metadata = MetaData()
    tables = _helper_tables(metadata)
    noon = clock_time(4, 0)  # 12:00 in Beijing
    with container.db.transaction() as session:
        line = session.execute(select(CreditLine).order_by(CreditLine.id)).scalars().first()
        product_id = session.execute(select(LoanProduct.id)).scalars().first()
        method_id = session.execute(select(PaymentMethod.id)).scalars().first()
        champion = container.credit_policy.active(session).champion.model_id
        metadata.create_all(session.connection())
        session.execute(insert(tables["n"]), [{"n": n} for n in range(1000)])
        days = [FIRST_DAY + timedelta(days=n) for n in range(365)]
        session.execute(insert(tables["days"]), [
            {"n": n, "day": d, "at": datetime.combine(d, noon, tzinfo=UTC)} for n, d in enumerate(days)])
        times = []
        for n in range(365 * len(LAGS_MS)):
            created = datetime.combine(days[n // len(LAGS_MS)], noon, tzinfo=UTC) + timedelta(minutes=n % 60)
            finished = created + timedelta(seconds=1)
            times.append({"n": n, "created": created, "finished": finished,
                          "received": finished + timedelta(milliseconds=LAGS_MS[n % len(LAGS_MS)])})
        session.execute(insert(tables["times"]), times)
        session.execute(insert(tables["principal"]), [{"cls": c, "principal": p} for c, p in enumerate(PRINCIPALS)])
        session.execute(insert(tables["months"]), [{"as_of": m, "month": m.year * 12 + m.month - 1}
                                                   for m in _month_ends()])
    now = container.clock.now()
    ids = {"borrower": line.borrower_id, "line": line.id, "product": product_id, "method": method_id,
           "model": champion, "n": loans}
    g = f"(SELECT a.n * 1000 + b.n AS g FROM bench_n a CROSS JOIN bench_n b WHERE a.n * 1000 + b.n < {loans}) g"

    def run(sql: str, **params: Any) -> int:
        statement = text(sql).bindparams(bindparam("now", type_=UTCDateTime())) if ":now" in sql else text(sql)
        with container.db.transaction() as session:
            return session.execute(statement, {**ids, **params, "now": now} if ":now" in sql
                                   else {**ids, **params}).rowcount

    run(f"""
        INSERT INTO loans (loan_no, borrower_id, credit_line_id, product_id, status, principal_fen, method,
            term_months, annual_rate, monthly_fee_rate, day_count, penalty_annual_rate, late_fee_fen, grace_days,
            cost_cap, allocation_order, apr, total_interest_fen, total_fee_fen, start_date,
            principal_outstanding_fen, overpayment_fen, days_past_due, accrued_interest_fen, payout_attempts,
            request_key, requested_at, signed_at, disbursed_at, closed_at, version)
        SELECT 'BENCH' || g.g, :borrower, :line, :product,
            CASE WHEN g.g % 10 = 0 THEN 'paid_off' WHEN g.g % 100 = 1 THEN 'written_off'
                 WHEN g.g % 20 = 3 THEN 'overdue' ELSE 'active' END,
            p.principal, 'equal_installment', 12, 0.1548, 0.001, 'ACT/360', 0.2322, 2000, 3, 0.24,
            'penalty,fee,interest,principal', 0.177, p.principal / 10, p.principal / 100, d.day,
            CASE WHEN g.g % 10 = 0 THEN 0 ELSE p.principal * (12 - g.g % 12) / 12 END, 0,
            CASE WHEN g.g % 20 = 3 THEN 1 + (g.g / 20) % 150 WHEN g.g % 100 = 1 THEN 120 ELSE 0 END, 0, 1,
            'bench-' || g.g, :now, :now, :now,
            CASE WHEN g.g % 10 = 0 OR g.g % 100 = 1 THEN c.at END, 1
        FROM {g} JOIN bench_days d ON d.n = g.g % 365 JOIN bench_days c ON c.n = (g.g / 7) % 365
        JOIN bench_principal p ON p.cls = g.g % 5
    """)
    decision = "CASE WHEN g.g % 10 < 6 THEN 'approved' WHEN g.g % 10 < 9 THEN 'declined' ELSE '{review}' END"
    reason = " ".join(f"WHEN {i} THEN '{code}'" for i, code in enumerate(REASONS))
    run(f"""
        INSERT INTO credit_applications (borrower_id, product_id, created_at, application_date, decision,
            ruleset_version, ruleset_sha256, model_id, model_sha256, score, pd, grade, bureau_status, findings,
            reasons, score_reasons, snapshot_enc, timings, status, decision_ms, reason_code, decided_at)
        SELECT :borrower, :product, d.at, d.day, {decision.format(review='review')}, 'bench', 'x', :model, 'x',
            480 + (g.g * 31) % 200, 0.05, 'B', 'ok', '[]', '[]', '[]', 'x', '{{}}',
            {decision.format(review='in_review')}, 5 + (g.g % 1000) * 7919 % 300,
            CASE WHEN g.g % 10 BETWEEN 6 AND 8 THEN CASE (g.g / 10) % 7 {reason} END END, d.at
        FROM {g} JOIN bench_days d ON d.n = g.g % 365
    """)
    bench_loans = "FROM loans l JOIN bench_times t ON t.n = l.id % 2920 WHERE l.loan_no LIKE 'BENCH%'"
    for kind, purpose, prefix, extra in (("payout", "disbursement", "BP", ""),
                                         ("collection", "repayment", "BC", " AND l.id % 2 = 0")):
        run(f"""
            INSERT INTO payment_orders (order_no, business_key, kind, purpose, channel, borrower_id, loan_id,
                product_id, attempt, payment_method_id, amount_fen, status, code, created_at, sent_at, finished_at,
                settled_at, checks)
            SELECT '{prefix}' || l.id, 'loan:' || l.id || '-{kind}', '{kind}', '{purpose}', 'sandbox', :borrower,
                l.id, l.product_id, 1, :method, l.principal_fen,
                CASE WHEN l.id % 1000 = 7 THEN 'failed' WHEN l.id % 5000 = 11 THEN 'processing' ELSE 'succeeded' END,
                CASE WHEN l.id % 10000 = 11 THEN 'SYSTEMERROR' END, t.created, t.created,
                CASE WHEN l.id % 5000 = 11 THEN NULL ELSE t.finished END,
                CASE WHEN l.id % 5000 = 11 THEN NULL ELSE t.finished END, 0
            {bench_loans}{extra}
        """)
    run(f"""
        INSERT INTO payment_callbacks (channel, received_at, verified, notify_id, order_no, outcome, body_sha256)
        SELECT 'sandbox', t.received, {s.true}, 'n' || l.id, 'BP' || l.id, 'applied', 'x'
        {bench_loans} AND l.id % 5000 <> 11
    """)
    with container.db.transaction() as session:
        run_id = session.execute(text(
            "INSERT INTO recon_runs (channel, business_date, file_sha256, started_at, actor, counts) "
            "VALUES ('sandbox', :day, 'x', :now, 'bench', '{}') RETURNING id").bindparams(
                bindparam("now", type_=UTCDateTime()), bindparam("day", type_=Date())),
            {"day": LAST_MONTH_END, "now": now}).scalar_one()
    run("""
        INSERT INTO recon_exceptions (run_id, channel, business_date, order_no, kind, our_status, channel_status,
            our_amount_fen, channel_amount_fen, evidence, status, created_at)
        SELECT :run, 'sandbox', d.day, 'BX' || b.n,
            CASE b.n % 4 WHEN 0 THEN 'missing_ours' WHEN 1 THEN 'missing_channel' WHEN 2 THEN 'amount_mismatch'
                 ELSE 'status_mismatch' END, 'succeeded', 'succeeded', 10000 + b.n, 10000, '{}', 'open', d.at
        FROM bench_n b JOIN bench_days d ON d.n = 364 - b.n % 60 WHERE b.n < 300
    """, run=run_id)
    run("""
        INSERT INTO loan_repayments (loan_id, idempotency_key, kind, amount_fen, channel, received_on, posted_at,
            allocation)
        SELECT l.id, 'bench-rep-' || l.id, CASE WHEN l.status = 'paid_off' THEN 'payoff' ELSE 'due' END,
            l.principal_fen / 12, 'sandbox', d.day, :now, '{}'
        FROM loans l JOIN bench_days d ON d.n = (l.id * 13) % 365
        WHERE l.loan_no LIKE 'BENCH%' AND (l.status = 'paid_off' OR l.id % 3 = 0)
    """)
    # Month-end history: k months on book at a month end; dpd by the loan's pattern (see the docstring).
    dpd = ("CASE WHEN (g % 20 = 3 OR g % 100 = 1) AND {k} > 0 THEN " + s.least + "(30 * {k} - 25, 200) "
           "WHEN g % 50 = 7 AND {k} = 2 THEN 10 ELSE 0 END")
    bucket = ("CASE WHEN {d} = 0 THEN 'current' WHEN {d} <= 30 THEN 'M1' WHEN {d} <= 60 THEN 'M2' "
              "WHEN {d} <= 90 THEN 'M3' ELSE 'M3+' END")
    start = s.month_index("start_date")
    history = f"""
        INSERT INTO loan_month_ends (as_of, loan_id, product_id, vintage, months_on_book, status, days_past_due,
            bucket, prev_bucket, principal_outstanding_fen)
        SELECT as_of, id, product_id, (sm / 12) * 100 + sm % 12 + 1, k,
            CASE WHEN dpd > 0 THEN 'overdue' ELSE 'active' END, dpd, {bucket.format(d='dpd')},
            CASE WHEN k = 0 THEN NULL ELSE {bucket.format(d='prev')} END, principal_outstanding_fen
        FROM (SELECT as_of, id, product_id, sm, k, principal_outstanding_fen,
                     {dpd.format(k='k')} AS dpd, {dpd.format(k='(k - 1)')} AS prev
              FROM (SELECT m.as_of, l.id, l.product_id, l.sm, l.g, m.month - l.sm AS k, l.principal_outstanding_fen
                    FROM (SELECT id, product_id, start_date, principal_outstanding_fen, {start} AS sm,
                                 CAST(substr(loan_no, 6) AS INTEGER) AS g
                          FROM loans WHERE loan_no LIKE 'BENCH%' AND id BETWEEN :low AND :high) l
                    JOIN bench_months m ON m.as_of >= l.start_date) x
              WHERE NOT (g % 10 = 0 AND k >= 3) AND NOT (g % 100 = 1 AND k >= 6)) y
    """
    with container.db.transaction() as session:
        low, high = session.execute(text("SELECT MIN(id), MAX(id) FROM loans")).one()
    for chunk_low in range(low, high + 1, 4 * CHUNK):
        run(history, low=chunk_low, high=chunk_low + 4 * CHUNK - 1)
    from miaodai.loans.eod import roll_up_month_end

    for month_end in _month_ends():
        with container.db.transaction() as session:
            roll_up_month_end(session, month_end)
    with container.db.transaction() as session:
        metadata.drop_all(session.connection())
    _analyze(container)
    with container.db.transaction() as session:
        counts = session.execute(text(
            "SELECT (SELECT COUNT(*) FROM loans), (SELECT COUNT(*) FROM loan_month_ends), "
            "(SELECT COUNT(*) FROM credit_applications), (SELECT COUNT(*) FROM payment_orders), "
            "(SELECT COUNT(*) FROM payment_callbacks), (SELECT COUNT(*) FROM loan_repayments)")).one()
    return {"loans": counts[0], "month_end_rows_before": counts[1], "applications": counts[2],
            "payment_orders": counts[3], "callbacks": counts[4], "repayments": counts[5]}


def _analyze(container: Any) -> None:
    with container.db.engine.connect() as conn:
        if container.db.dialect == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def month_end_snapshot_seconds(container: Any) -> tuple[float, int]:
    """The batch's own month-end snapshot of the live book (``_Batch.month_end_snapshot``), timed."""
    from miaodai.loans.eod import _Batch

    started = time.perf_counter()
    rows = _Batch(container, LAST_MONTH_END, CHUNK, None).month_end_snapshot()
    return time.perf_counter() - started, rows


def queries(container: Any, *, rolled: bool = True) -> dict[str, Callable[[Any, Any], object]]:
    from miaodai.credit import dashboards as credit
    from miaodai.loans import portfolio
    from miaodai.payments import dashboards as money

    now = container.clock.now()
    with container.db.transaction() as session:
        model = container.credit_policy.active(session).champion
    return {
        "applications_by_day": lambda session, f: credit.applications_by_day(session, f, rolled=rolled),
        "decline_reasons": lambda session, f: credit.decline_reasons(session, f, rolled=rolled),
        "decision_time": lambda session, f: credit.decision_time(session, f, rolled=rolled),
        "score_distribution": lambda session, f: credit.score_distribution(session, f, model, rolled=rolled),
        "book_by_bucket": portfolio.book_by_bucket,
        "vintage_curves": portfolio.vintage_curves,
        "roll_rates": portfolio.roll_rates,
        "early_and_write_offs": portfolio.early_and_write_offs,
        "orders_by_state": lambda session, f: money.orders_by_state(session, f, now=now, rolled=rolled),
        "callback_lag": lambda session, f: money.callback_lag(session, f, rolled=rolled),
        "recon_open": lambda session, f: money.recon_open(session, f, now=now),
    }


ROLLED = ("applications_by_day", "decline_reasons", "decision_time", "score_distribution", "orders_by_state",
          "callback_lag")  # the figures with a daily roll-up


def time_queries(container: Any, filters: Any, *, rolled: bool = True, runs: int = RUNS,
                 only: tuple[str, ...] | None = None) -> dict[str, float]:
    """Each dashboard's median time (ms) over ``runs`` runs after one warm-up, each in its own session."""
    figures = {}
    for name, query in queries(container, rolled=rolled).items():
        if only is not None and name not in only:
            continue
        samples = []
        for n in range(runs + 1):
            with container.db.autocommit() as session:
                started = time.perf_counter()
                query(session, filters)
                if n:
                    samples.append((time.perf_counter() - started) * 1000)
        figures[name] = round(statistics.median(samples), 1)
    return figures


def rollup_seconds(container: Any) -> tuple[float, dict[str, int]]:
    """The end-of-day batch's roll-up step over the whole book (every day to 2026-11-30), timed."""
    from miaodai.core.rollups import catch_up_all

    started = time.perf_counter()
    figures = catch_up_all(container.db, container.daily_rollups, through=LAST_MONTH_END, now=container.clock.now())
    return time.perf_counter() - started, figures


def bench_backend(backend: str) -> dict[str, Any]:
    from sqlalchemy import select

    from miaodai.core.charts import Filters
    from miaodai.core.clock import BUSINESS_TZ, FixedClock
    from miaodai.loans.models import LoanProduct

    clock = FixedClock(datetime.combine(LAST_MONTH_END + timedelta(days=1), clock_time(1, 0), tzinfo=BUSINESS_TZ))
    with backend_container(backend, clock, name="dashboards") as container:
        started = time.perf_counter()
        book = build_book(container, LOANS)
        build_seconds = time.perf_counter() - started
        snapshot_seconds, snapshot_rows = month_end_snapshot_seconds(container)
        rolled_seconds, rolled = rollup_seconds(container)
        _analyze(container)
        with container.db.transaction() as session:
            product_id = session.execute(select(LoanProduct.id)).scalars().first()
        whole_year = Filters(FIRST_DAY, LAST_MONTH_END, product_id)
        last_30 = Filters(LAST_MONTH_END - timedelta(days=29), LAST_MONTH_END, product_id)
        year = time_queries(container, whole_year)
        month = time_queries(container, last_30)
        live = {}
        if LIVE:
            live = {"live_year_ms": time_queries(container, whole_year, rolled=False, runs=1, only=ROLLED),
                    "live_last_30_days_ms": time_queries(container, last_30, rolled=False, runs=1, only=ROLLED)}
    return {"bench": "dashboards", "backend": backend, **book, "build_seconds": round(build_seconds, 1),
            "month_end_snapshot_seconds": round(snapshot_seconds, 2), "month_end_snapshot_loans": snapshot_rows,
            "rollup_seconds": round(rolled_seconds, 1), "rollup": rolled,
            "runs": RUNS, "year_ms": year, "last_30_days_ms": month, **live,
            "slowest_ms": max([*year.values(), *month.values()]), "target_ms": TARGET_MS}


def main() -> list[dict[str, Any]]:
    return each_backend(BACKENDS, bench_backend)


if __name__ == "__main__":
    main()
