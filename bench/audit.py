"""The audit viewer's queries on a 1,000,000-entry audit log, on SQLite and on PostgreSQL.

``uv run python -m bench audit`` builds the same sealed log on each backend and prints one JSON line per backend:
the time to build it (not a figure), each viewer query's time — one page of 50, the median of
``BENCH_AUDIT_RUNS`` runs (default 5) after one warm-up, each read in its own statement as the console runs it —
the time of a full ``verify_chain`` walk, and of a streamed CSV export of one week. ``BENCH_AUDIT_ENTRIES``
(default 1,000,000) sizes the log; ``BENCH_AUDIT_BACKENDS`` picks ``sqlite,postgresql`` (default both).

The log, written in bulk with real hashes (so the walk checks a true chain), over the 365 days to 2026-11-30,
time rising with the id: 40 % written by 100,000 borrowers about themselves or their loans (login, sessions,
consents, repayments), 25 % by the end-of-day batch (``eod``) about loans, 20 % by 50 staff members (reviews,
reveals ``pii.revealed`` at 0.2 %, ``staff.`` logins and logouts at 3 %), 15 % by ``system``/``anonymous``
(login codes about phone numbers, sealer and payment events).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import backend_container, each_backend

ENTRIES = int(os.environ.get("BENCH_AUDIT_ENTRIES", "1000000"))
RUNS = int(os.environ.get("BENCH_AUDIT_RUNS", "5"))
BACKENDS = tuple(os.environ.get("BENCH_AUDIT_BACKENDS", "sqlite,postgresql").split(","))
LAST = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
FIRST = LAST - timedelta(days=365)
CHUNK = 20_000
BORROWERS = 100_000
TARGET_MS = 100.0

BORROWER_ACTIONS = ("login.succeeded", "session.logged_out", "consent.granted", "loan.repaid", "loan.drawn",
                    "step_up.confirmed", "payments.card_bound")
EOD_ACTIONS = ("loan.accrued", "loan.installment_due", "loan.overdue", "loan.penalty_charged")
STAFF_ACTIONS = ("credit.review_decided", "customer.searched", "approval.proposed", "approval.approved",
                 "recon.exception_resolved", "loan.write_off")
SYSTEM_ACTIONS = ("otp.requested", "otp.wrong_guess", "payments.payout.succeeded", "payments.callback")


def _entry(n: int) -> dict[str, Any]:
    """The n-th entry (0-based): actor, action, subject and details, deterministic."""
    kind = n % 20
    borrower = (n * 7919) % BORROWERS + 1
    if kind < 8:
        action = BORROWER_ACTIONS[n % len(BORROWER_ACTIONS)]
        subject = f"loan:{borrower * 2 + n % 2}" if action.startswith("loan.") else f"borrower:{borrower}"
        return {"actor": f"borrower:{borrower}", "action": action, "subject": subject,
                "details": {"session_id": n, "device_id": borrower}}
    if kind < 13:
        return {"actor": "eod", "action": EOD_ACTIONS[n % len(EOD_ACTIONS)], "subject": f"loan:{borrower * 2}",
                "details": {"business_date": "2026-06-30", "amount_fen": n % 9973}}
    if kind < 17:
        staff = n % 50 + 1
        if n % 500 == 13:
            action, subject = "pii.revealed", f"borrower:{borrower}"
        elif n % 33 == 0:
            action, subject = ("staff.login_failed" if n % 2 else "staff.logout"), f"staff:{staff}"
        else:
            action, subject = STAFF_ACTIONS[n % len(STAFF_ACTIONS)], f"loan:{borrower * 2}"
        return {"actor": f"staff:{staff}", "action": action, "subject": subject,
                "details": {"reason": "case CS-20261130-0042", "ip": "10.1.*.*"}}
    action = SYSTEM_ACTIONS[n % len(SYSTEM_ACTIONS)]
    subject = f"phone:{(n * 104729) % 16**16:016x}" if action.startswith("otp.") else f"loan:{borrower * 2}"
    return {"actor": "anonymous" if action.startswith("otp.") else "system", "action": action, "subject": subject,
            "details": {"channel": "sms", "challenge_id": n}}


def build_log(container: Any, entries: int) -> dict[str, Any]:
    """``entries`` sealed entries with their chain, written in chunks of CHUNK; the chain head at the end."""
    from sqlalchemy import insert, update

    from miaodai.core.audit import GENESIS_HASH, AuditChainHead, AuditEntry, canonical_json, entry_hash
    from miaodai.core.db import table_of

    step = (LAST - FIRST) / entries
    prev = GENESIS_HASH
    table = table_of(AuditEntry)
    for start in range(0, entries, CHUNK):
        rows = []
        for n in range(start, min(start + CHUNK, entries)):
            at = FIRST + step * n
            fields = _entry(n)
            body = canonical_json({"occurred_at": at.isoformat(), **fields})
            digest = entry_hash(prev, n + 1, n + 1, body)
            rows.append({"id": n + 1, "occurred_at": at, "actor": fields["actor"], "action": fields["action"],
                         "subject": fields["subject"], "body": body, "seq": n + 1, "prev_hash": prev,
                         "entry_hash": digest, "sealed_at": at + timedelta(seconds=1)})
            prev = digest
        with container.db.transaction() as session:
            session.execute(insert(table), rows)
    with container.db.transaction() as session:
        session.execute(update(AuditChainHead).where(AuditChainHead.id == 1)
                        .values(last_seq=entries, last_hash=prev, updated_at=LAST))
        if container.db.dialect == "postgresql":  # the ids were given: move the sequence past them
            session.connection().exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('audit_entries', 'id'), {entries})")
    return {"entries": entries}


def _analyze(container: Any) -> None:
    with container.db.engine.connect() as conn:
        if container.db.dialect == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE audit_entries")
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def searches() -> dict[str, Any]:
    """name → (the filter, how many pages deep): the viewer's searches, from the broadest to the rarest."""
    from miaodai.identity.staff_audit import AuditFilter

    week = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 8, tzinfo=UTC))
    borrower = 4242
    subjects = (f"borrower:{borrower}", f"loan:{borrower * 2}", f"loan:{borrower * 2 + 1}",
                f"payment_method:{borrower}", f"credit_line:{borrower}")
    return {
        "newest": (AuditFilter(), 1),
        "newest_page_20": (AuditFilter(), 20),
        "actor_staff": (AuditFilter(actor="staff:7"), 1),
        "actor_staff_page_20": (AuditFilter(actor="staff:7"), 20),
        "actor_eod": (AuditFilter(actor="eod"), 1),
        "actor_borrower": (AuditFilter(actor=f"borrower:{borrower}"), 1),
        "action_prefix_staff": (AuditFilter(action_prefix="staff."), 1),
        "action_prefix_pii": (AuditFilter(action_prefix="pii."), 1),
        "action_prefix_loan": (AuditFilter(action_prefix="loan."), 1),
        "action_exact_write_off": (AuditFilter(action_prefix="loan.write_off"), 1),
        "week": (AuditFilter(since=week[0], until=week[1]), 1),
        "week_actor_staff": (AuditFilter(actor="staff:7", since=week[0], until=week[1]), 1),
        "week_action_pii": (AuditFilter(action_prefix="pii.", since=week[0], until=week[1]), 1),
        "borrower": (AuditFilter(subjects=subjects, subjects_actor=f"borrower:{borrower}"), 1),
        "borrower_week": (AuditFilter(subjects=subjects, subjects_actor=f"borrower:{borrower}",
                                      since=week[0], until=week[1]), 1),
        "nothing_matches": (AuditFilter(actor="staff:999"), 1),
    }


def time_searches(container: Any) -> dict[str, float]:
    """Each search's page (ms): the median of RUNS runs after a warm-up; a deep page is reached by its cursor."""
    from miaodai.identity.staff_audit import audit_search

    figures = {}
    for name, (where, depth) in searches().items():
        before = None
        for _ in range(depth - 1):  # walk to the page's cursor once (not timed)
            before = audit_search(container.db, where, limit=50, before_id=before).next_before_id
        samples = []
        for n in range(RUNS + 1):
            started = time.perf_counter()
            audit_search(container.db, where, limit=50, before_id=before)
            if n:
                samples.append((time.perf_counter() - started) * 1000)
        figures[name] = round(statistics.median(samples), 2)
    return figures


def _timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, this process's CPU seconds, the result): on a busy machine the CPU time is the cost."""
    started, cpu = time.perf_counter(), time.process_time()
    result = call()
    return round(time.perf_counter() - started, 2), round(time.process_time() - cpu, 2), result


def export_week(container: Any) -> int:
    """The console's CSV export of one week of the whole log, streamed to nowhere; returns the rows written."""
    from miaodai.identity.staff_audit import AuditFilter, audit_entries
    from miaodai.web.console.audit import _csv

    where = AuditFilter(since=datetime(2026, 6, 1, tzinfo=UTC), until=datetime(2026, 6, 8, tzinfo=UTC))
    return sum(chunk.count("\n") for chunk in _csv(audit_entries(container.db, where))) - 1


def bench_backend(backend: str) -> dict[str, Any]:
    from miaodai.core.audit import verify_chain
    from miaodai.core.clock import FixedClock

    clock = FixedClock(LAST + timedelta(hours=1))
    with backend_container(backend, clock, name="audit") as container:
        build_seconds, _, log = _timed(lambda: build_log(container, ENTRIES))
        _analyze(container)
        pages = time_searches(container)
        verify_seconds, verify_cpu, report = _timed(
            lambda: verify_chain(container.db, clock, unsealed_bound=timedelta(seconds=10)))
        assert report.intact and report.sealed == ENTRIES, str(report.first_break)
        export_seconds, export_cpu, exported = _timed(lambda: export_week(container))
    return {"bench": "audit", "backend": backend, **log, "build_seconds": build_seconds, "runs": RUNS,
            "page_ms": pages, "slowest_page_ms": max(pages.values()), "target_ms": TARGET_MS,
            "verify_seconds": verify_seconds, "verify_cpu_seconds": verify_cpu,
            "verify_entries_per_cpu_second": round(ENTRIES / max(verify_cpu, 0.01)),
            "export_week_rows": exported, "export_week_seconds": export_seconds,
            "export_week_cpu_seconds": export_cpu}


def main() -> list[dict[str, Any]]:
    return each_backend(BACKENDS, bench_backend)


if __name__ == "__main__":
    main()
