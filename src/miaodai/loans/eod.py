"""The end-of-day batch (日终批处理): set-based SQL in chunks of loans, idempotent and resumable per date.

``run_eod(ports, D)`` is the close of business of date D. It prepares the morning of D + 1, step
by step, each step over the loans on the book (active and overdue) in chunks of ids, one transaction
per chunk:

1. ``penalty``      overdue charges for D on every installment unpaid past its grace days: penalty
                    interest on the overdue principal and the late fee, within the loan's cost cap — the
                    SQL twin of :func:`miaodai.loans.repayment_math.overdue_charge_parts` (same integer
                    half-up rounding, see :func:`miaodai.core.money.sql_round_half_up_div`), posted
                    Dr penalty receivable / Cr penalty income, one entry per installment.
2. ``accrue``       interest earned on day D (principal outstanding × rate / basis) into each loan's
                    accrual register (a memo: income reaches the ledger when an installment falls due).
3. ``fall_due``     installments due on D + 1 (and any missed before) become receivable: their unpaid
                    interest and fee, Dr receivable / Cr income; the accrual register starts again.
4. ``apply_held``   money held for a borrower (an overpayment) pays what just fell due. Few loans hold
                    money, so this step goes loan by loan through the repayment service's rules.
5. ``status``       days past due as of D + 1 (D + 1 − the oldest unpaid due date) and the status:
                    ``overdue`` with any unpaid installment due on or before D, ``active`` otherwise.
                    On the last day of a month, then, the month-end snapshot of every loan on the book
                    (``loan_month_ends``: bucket now and at the previous month end, for vintages and roll rates).
6. ``reminders``    reminders for D + 1 queued (due in 3 days, due tomorrow, due today, newly overdue);
                    :func:`send_reminders` hands them to the SMS provider.
7. ``expire_instructions`` auto-debit instructions of days before D still ``pending``: their day is
                    over and auto-debit only starts the current day's, so none will ever be tried. Never
                    tried (no debit made) → ``expired``; tried, but the retry later that day never
                    started → ``failed`` (its ``last_code`` keeps the channel's answer).
8. ``instructions`` auto-debit (代扣) instructions for D + 1: what falls due then and what is overdue.
9. ``rollups``      the dashboards' daily roll-ups (``ports.daily_rollups``, each domain's own): every closed
                    day up to D not yet rolled up, one transaction per day and roll-up (delete the day's rows,
                    insert them again, move the roll-up's mark; :func:`miaodai.core.rollups.catch_up`).

Every step is guarded so running it again changes nothing (``penalty_through < D``, ``accrued_through
< D``, ``posted_due``, journal keys, unique reminder and instruction keys, only ``pending`` instructions
expire), so a crash mid-step is
resumed by running the date again; ``eod_runs`` records the last step finished. A date runs only after
the previous one completed (no skipping), never twice, and never before the day is over.

Raw UPDATEs of loans bump ``version`` like the ORM does, so a writer holding a stale copy of the row
fails instead of overwriting the batch.

**Locking.** The steps that change money or state (penalty, accrue, fall_due, apply_held, status) lock
their chunk's loans (every id of the chunk, in order) as the first statement of each chunk
transaction and read only afterwards, the protocol every online posting follows too
(:mod:`miaodai.loans.locking`): a repayment, collection, reversal, write-off or refund of one of
those loans runs wholly before or wholly after the chunk, never in between. Reminders, instructions
and expiry change no money; they read committed rows and take no loan lock (auto-debit never takes
more than is owed when it runs).

**Audit.** The transaction that marks a step done in ``eod_runs`` also records the step in the audit
chain (actor ``eod``, action ``eod.<step>``, subject ``eod:<date>``) with its figures: counts and fen
sums of what it changed (a step resumed after a crash records what the resumed run changed, with
``"resumed": true``; the chunks committed before the crash are in the journal under their own keys).
"""

# ruff: noqa: S608 - the SQL here is assembled from constants only; every value is a bound parameter

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date as business_date_of
from miaodai.core.db import SqlText, dialect_of, rows_changed
from miaodai.core.errors import DomainError
from miaodai.core.money import Money, sql_round_half_up_div
from miaodai.core.ports import Platform
from miaodai.core.rollups import catch_up_all
from miaodai.identity.models import PHONE_FIELD, Borrower, OtpChannel
from miaodai.identity.ports import IdentityPorts
from miaodai.ledger.accounts import Account
from miaodai.ledger.bulk import post_many
from miaodai.loans import repayment_service
from miaodai.loans.errors import LoanErrors
from miaodai.loans.locking import lock_loan_range
from miaodai.loans.models import EodRun, Loan, LoanInstallment, Reminder
from miaodai.loans.ports import EodPorts
from miaodai.loans.write_off import MINIMUM_DAYS_PAST_DUE

STEPS = ("penalty", "accrue", "fall_due", "apply_held", "status", "reminders", "expire_instructions",
         "instructions", "rollups")
DEFAULT_CHUNK = 50_000
ON_BOOK = "('active', 'overdue')"
BUCKETS = ("current", "M1", "M2", "M3", "M3+")

LOCKING = ("penalty", "accrue", "fall_due", "apply_held", "status")  # the steps that lock their chunk's loans
AUDIT_ACTOR = "eod"

Progress = Callable[[str, int, int], None]  # (step, chunks done, chunks in all)


@dataclass
class EodReport:
    business_date: date
    already_done: bool = False
    resumed_after: str = ""  # the last step a crashed run had finished, if any
    steps: dict[str, dict[str, int]] = field(default_factory=dict)


def ppm(column: str) -> str:
    """A NUMERIC(9,6) rate as whole millionths, so rate arithmetic stays in integers."""
    return f"CAST(ROUND({column} * 1000000) AS BIGINT)"


def basis(loan: str) -> str:
    return f"(CASE {loan}.day_count WHEN 'ACT/365' THEN 365 ELSE 360 END)"


def daily_interest_sql(balance: str, rate_column: str, days: str, loan: str) -> str:
    """SQL twin of :func:`miaodai.loans.schedule.daily_interest`: round(balance × rate × days / basis)."""
    return sql_round_half_up_div(f"({balance}) * {ppm(rate_column)} * ({days})", f"{basis(loan)} * 1000000")


# -- running a date -----------------------------------------------------------------------------------


def run_eod(ports: EodPorts, day: date, *, chunk: int = DEFAULT_CHUNK,
            progress: Progress | None = None) -> EodReport:
    """Close business date ``day``. Refuses a date out of order or not yet over; a completed date is a no-op."""
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    report = EodReport(day)
    started = _start(ports, day)
    if started is None:
        report.already_done = True
        return report
    run, resumed = started
    report.resumed_after = run.step
    done = set(STEPS[: STEPS.index(run.step) + 1]) if run.step else set()
    stats: dict[str, dict[str, int]] = json.loads(run.stats or "{}")
    batch = _Batch(ports, day, chunk, progress)
    for n, step in enumerate(STEPS):
        if step in done:
            continue
        stats[step] = getattr(batch, step)()
        with ports.db.transaction() as session:
            row = session.get(EodRun, day)
            assert row is not None
            row.step = step
            row.stats = json.dumps(stats, sort_keys=True)
            details: dict[str, Any] = {"business_date": day.isoformat(), "step": n + 1, **stats[step]}
            if resumed and n == (STEPS.index(run.step) + 1 if run.step else 0):  # the step a crash cut short
                details["resumed"] = True
            ports.audit.record(session, actor=AUDIT_ACTOR, action=f"eod.{step}",
                               subject=f"eod:{day.isoformat()}", details=details)
            if step == STEPS[-1]:
                row.status = "completed"
                row.finished_at = ports.clock.now()
    report.steps = stats
    return report


def _start(ports: Platform, day: date) -> tuple[EodRun, bool] | None:
    """The run to continue and whether it is resumed after a crash, or None if the date already completed."""
    today = business_date_of(ports.clock.now())
    with ports.db.transaction() as session:
        existing = session.get(EodRun, day)
        if existing is not None:
            return None if existing.status == "completed" else (existing, True)
        if day >= today:
            raise DomainError(LoanErrors.EOD_DAY_NOT_OVER, params={"requested": day.isoformat(),
                                                                  "today": today.isoformat()})
        unfinished = session.scalars(select(EodRun).where(EodRun.status != "completed")).first()
        if unfinished is not None:
            raise DomainError(LoanErrors.EOD_UNFINISHED, params={"pending_date": unfinished.business_date.isoformat()})
        last = session.scalar(select(func.max(EodRun.business_date)))
        if last is not None and day != last + timedelta(days=1):
            expected = last + timedelta(days=1)
            raise DomainError(LoanErrors.EOD_OUT_OF_ORDER, params={
                "requested": day.isoformat(), "expected": expected.isoformat()})
        run = EodRun(business_date=day, status="running", step="", started_at=ports.clock.now(), stats="{}")
        session.add(run)
    return run, False


class _Batch:
    """The steps of one date. Each returns its figures; each is safe to run again."""

    def __init__(self, ports: EodPorts, day: date, chunk: int, progress: Progress | None) -> None:
        self.ports = ports
        self.db = ports.db
        self.sql = SqlText(self.db.dialect)
        self.day = day
        self.tomorrow = day + timedelta(days=1)
        self.chunk = chunk
        self.progress = progress
        self.now = ports.clock.now()
        self.params = {"day": self.sql.value(day), "tomorrow": self.sql.value(self.tomorrow),
                       "day_text": day.isoformat()}

    # -- plumbing --

    @cached_property
    def ranges(self) -> list[tuple[int, int]]:
        """Id ranges of ``chunk`` ids covering the loans on the book when the run starts (no step adds any)."""
        with self.db.transaction() as session:
            low, high = session.execute(text(
                f"SELECT MIN(id), MAX(id) FROM loans WHERE status IN {ON_BOOK}")).one()
        if low is None:
            return []
        return [(start, min(start + self.chunk - 1, high)) for start in range(low, high + 1, self.chunk)]

    def _each_chunk(self, step: str, work: Callable[[Session, dict[str, Any]], int]) -> int:
        """``work`` over each chunk in its own transaction; a step in :data:`LOCKING` first locks the
        chunk's loans (see :mod:`miaodai.loans.locking`), so everything it reads is read under the lock."""
        ranges = self.ranges
        total = 0
        lock = step in LOCKING
        for n, (low, high) in enumerate(ranges, 1):
            with self.db.transaction() as session:
                if lock:
                    lock_loan_range(session, low, high)
                total += work(session, {**self.params, "low": low, "high": high})
            if self.progress:
                self.progress(step, n, len(ranges))
        if not ranges and self.progress:
            self.progress(step, 0, 0)
        return total

    def _on_book(self, loan: str = "l") -> str:
        return f"{loan}.id BETWEEN :low AND :high AND {loan}.status IN {ON_BOOK}"

    # -- steps --

    def penalty(self) -> dict[str, int]:
        s = self.sql
        principal = "(i.principal_fen - i.principal_paid_fen)"
        overdue_days = s.days(":day", "i.due_date")
        first_day_catch_up = "CASE WHEN n = l.grace_days + 1 THEN n ELSE 1 END"  # all days since due, once
        # Inner: the installment's overdue principal and days; then the day's raw charges; then the cap.
        raw = (
            f"SELECT i.id AS installment_id, i.loan_id, i.period, i.penalty_fen AS charged, "
            f"CASE WHEN n = l.grace_days + 1 THEN l.late_fee_fen ELSE 0 END AS fee, "
            f"{daily_interest_sql('p', 'l.penalty_annual_rate', first_day_catch_up, 'l')} AS penalty, "
            f"{daily_interest_sql('p', 'l.cost_cap', 'n', 'l')} AS cap "
            f"FROM (SELECT i.*, {principal} AS p, {overdue_days} AS n FROM loan_installments i "
            f"WHERE i.paid_off_on IS NULL AND i.due_date < :day AND i.loan_id BETWEEN :low AND :high) i "
            f"JOIN loans l ON l.id = i.loan_id "
            f"WHERE {self._on_book()} AND i.n > l.grace_days AND i.p > 0 "
            f"AND (i.penalty_through IS NULL OR i.penalty_through < :day)"
        )
        room = f"{s.greatest}(0, cap - charged)"
        capped = (
            "SELECT installment_id, loan_id, period, "
            f"{s.least}(penalty, {room}) AS penalty, {s.least}(fee, {s.greatest}(0, {room} - penalty)) AS fee, "
            f"penalty + fee AS asked FROM ({raw}) r"
        )
        counts = {"installments": 0, "entries": 0, "penalty_fen": 0, "late_fee_fen": 0, "waived_fen": 0}

        def work(session: Session, params: dict[str, Any]) -> int:
            session.execute(text(
                "CREATE TEMPORARY TABLE IF NOT EXISTS eod_charge (installment_id BIGINT PRIMARY KEY, "
                "loan_id BIGINT, period INTEGER, penalty BIGINT, fee BIGINT, asked BIGINT)"))
            session.execute(text("DELETE FROM eod_charge"))
            staged = session.execute(text(
                f"INSERT INTO eod_charge (installment_id, loan_id, period, penalty, fee, asked) {capped}"
            ), params).rowcount
            posted = post_many(
                session,
                source_sql=(
                    "SELECT loan_id, 'loan:' || loan_id || ':inst:' || period || ':penalty:' || :day_text "
                    "AS idempotency_key, 'installment ' || period || ' overdue charges' AS memo, "
                    "penalty + fee AS amount FROM eod_charge WHERE penalty + fee > 0"),
                params=params, amounts=["amount"],
                legs=[(Account.PENALTY_RECEIVABLE, "x0"), (Account.PENALTY_INCOME, "-x0")],
                kind="penalty", business_date=self.day, now=self.now,
            )
            penalty, fee, asked = session.execute(text(
                "SELECT COALESCE(SUM(penalty), 0), COALESCE(SUM(fee), 0), COALESCE(SUM(asked), 0) FROM eod_charge"
            )).one()
            session.execute(text(
                "UPDATE loan_installments SET penalty_fen = loan_installments.penalty_fen + c.penalty + c.fee, "
                f"penalty_through = :day, late_fee_charged = CASE WHEN c.fee > 0 THEN {s.true} "
                "ELSE loan_installments.late_fee_charged END FROM eod_charge c "
                "WHERE c.installment_id = loan_installments.id"
            ), params)
            session.execute(text("DELETE FROM eod_charge"))
            counts["entries"] += posted
            counts["penalty_fen"] += int(penalty)
            counts["late_fee_fen"] += int(fee)
            counts["waived_fen"] += int(asked) - int(penalty) - int(fee)
            return staged

        counts["installments"] = self._each_chunk("penalty", work)
        return counts

    def accrue(self) -> dict[str, int]:
        daily = daily_interest_sql("principal_outstanding_fen", "annual_rate", "1", "loans")
        accruing = (f"{self._on_book('loans')} "
                    "AND start_date <= :day AND (accrued_through IS NULL OR accrued_through < :day)")
        total = text(f"SELECT COALESCE(SUM({daily}), 0) FROM loans WHERE {accruing}")
        statement = text(
            f"UPDATE loans SET accrued_interest_fen = accrued_interest_fen + {daily}, "
            f"accrued_through = :day, version = version + 1 WHERE {accruing}"
        )
        counts = {"loans": 0, "accrued_fen": 0}

        def work(session: Session, params: dict[str, Any]) -> int:
            counts["accrued_fen"] += int(session.execute(total, params).scalar_one())  # under the chunk's lock
            return session.execute(statement, params).rowcount

        counts["loans"] = self._each_chunk("accrue", work)
        return counts

    def fall_due(self) -> dict[str, int]:
        due = (
            f"FROM loan_installments i JOIN loans l ON l.id = i.loan_id WHERE {self._on_book()} "
            f"AND i.due_date <= :tomorrow AND i.posted_due = {self.sql.false} AND i.loan_id BETWEEN :low AND :high"
        )
        source = (
            "SELECT i.loan_id, 'loan:' || i.loan_id || ':inst:' || i.period || '\\:due' AS idempotency_key, "
            "'installment ' || i.period || ' falls due' AS memo, i.interest_fen - i.interest_paid_fen AS interest, "
            f"i.fee_fen - i.fee_paid_fen AS fee {due} "
            "AND i.interest_fen - i.interest_paid_fen + i.fee_fen - i.fee_paid_fen > 0"
        )
        reset = text(
            "UPDATE loans SET accrued_interest_fen = 0, version = version + 1 "
            f"WHERE id IN (SELECT i.loan_id {due})"
        )
        mark = text(f"UPDATE loan_installments SET posted_due = {self.sql.true} WHERE id IN (SELECT i.id {due})")
        counts = {"installments": 0, "entries": 0, "interest_fen": 0, "fee_fen": 0}
        sums = {"interest": 0, "fee": 0}

        def work(session: Session, params: dict[str, Any]) -> int:
            counts["entries"] += post_many(
                session, source_sql=source, params=params, amounts=["interest", "fee"],
                legs=[(Account.INTEREST_RECEIVABLE, "x0"), (Account.INTEREST_INCOME, "-x0"),
                      (Account.FEE_RECEIVABLE, "x1"), (Account.FEE_INCOME, "-x1")],
                kind="installment_due", business_date=self.day, now=self.now, totals=sums,
            )
            counts["interest_fen"], counts["fee_fen"] = sums["interest"], sums["fee"]
            session.execute(reset, params)
            return session.execute(mark, params).rowcount

        counts["installments"] = self._each_chunk("fall_due", work)
        return counts

    def apply_held(self) -> dict[str, int]:
        """Loan by loan, but only loans that hold money and owe something due by tomorrow."""
        counts = {"loans": 0, "applied_fen": 0}
        owing = (
            "SELECT l.id FROM loans l WHERE l.id BETWEEN :low AND :high AND l.status IN " + ON_BOOK +
            " AND l.overpayment_fen > 0 AND EXISTS (SELECT 1 FROM loan_installments i WHERE i.loan_id = l.id "
            "AND i.paid_off_on IS NULL AND i.due_date <= :tomorrow)"
        )

        def work(session: Session, params: dict[str, Any]) -> int:
            ids = [row[0] for row in session.execute(text(owing), params)]
            for loan_id in ids:
                loan = session.get(Loan, loan_id)  # locked with its chunk
                assert loan is not None
                applied = repayment_service.apply_held(session, loan, as_of=self.tomorrow, now=self.now,
                                                       business_day=self.day)
                counts["applied_fen"] += applied
                counts["loans"] += 1 if applied else 0
            return len(ids)

        self._each_chunk("apply_held", work)
        return counts

    def status(self) -> dict[str, int]:
        """Two set-based UPDATEs per chunk: loans with something unpaid due by D (their oldest such due date
        gives the days past due), then overdue loans with nothing unpaid due any more."""
        unpaid_due = (
            "SELECT i.loan_id, MIN(i.due_date) AS oldest FROM loan_installments i WHERE i.paid_off_on IS NULL "
            "AND i.due_date <= :day AND i.loan_id BETWEEN :low AND :high GROUP BY i.loan_id"
        )
        overdue = text(
            f"UPDATE loans SET days_past_due = {self.sql.days(':tomorrow', 'o.oldest')}, status = 'overdue', "
            f"version = loans.version + 1 FROM ({unpaid_due}) o WHERE o.loan_id = loans.id "
            f"AND loans.status IN {ON_BOOK}"
        )
        caught_up = text(
            "UPDATE loans SET days_past_due = 0, status = 'active', version = version + 1 "
            "WHERE id BETWEEN :low AND :high AND status = 'overdue' "
            f"AND id NOT IN (SELECT o.loan_id FROM ({unpaid_due}) o)"
        )
        changes = text(
            f"SELECT COALESCE(SUM(CASE WHEN l.status = 'active' THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN l.days_past_due <= :eligible AND {self.sql.days(':tomorrow', 'o.oldest')} "
            f"> :eligible THEN 1 ELSE 0 END), 0) FROM loans l JOIN ({unpaid_due}) o ON o.loan_id = l.id "
            f"WHERE l.status IN {ON_BOOK}"
        )
        counts = {"overdue_loans": 0, "back_to_active": 0, "became_overdue": 0, "became_write_off_eligible": 0}

        def work(session: Session, params: dict[str, Any]) -> int:
            became_overdue, eligible = session.execute(
                changes, {**params, "eligible": MINIMUM_DAYS_PAST_DUE}).one()  # under the chunk's lock
            counts["became_overdue"] += int(became_overdue)
            counts["became_write_off_eligible"] += int(eligible)
            counts["overdue_loans"] += session.execute(overdue, params).rowcount
            counts["back_to_active"] += session.execute(caught_up, params).rowcount
            return 0

        self._each_chunk("status", work)
        if (self.tomorrow).month != self.day.month:
            counts["month_end_loans"] = self.month_end_snapshot()
        with self.db.transaction() as session:
            return {**counts, **book_summary(session)}

    def month_end_snapshot(self) -> int:
        """On the last day of a month, after the status step: every loan on the book as it now stands (days
        past due as of the morning after), one row each in ``loan_month_ends`` with its bucket there and at
        the previous month end — the history vintage curves and roll rates are read from. Set based, in the
        batch's chunks; a loan already written for this month end is skipped, so running it again (a resumed
        step) adds nothing."""
        s = self.sql
        previous = self.day.replace(day=1) - timedelta(days=1)
        start_month = s.month_index("l.start_date")
        bucket = (
            "CASE WHEN l.days_past_due = 0 THEN 'current' WHEN l.days_past_due <= 30 THEN 'M1' "
            "WHEN l.days_past_due <= 60 THEN 'M2' WHEN l.days_past_due <= 90 THEN 'M3' ELSE 'M3+' END"
        )
        statement = text(
            "INSERT INTO loan_month_ends (as_of, loan_id, product_id, vintage, months_on_book, status, "
            "days_past_due, bucket, prev_bucket, principal_outstanding_fen) "
            f"SELECT :day, l.id, l.product_id, ({start_month} / 12) * 100 + {start_month} % 12 + 1, "
            f":month - {start_month}, l.status, l.days_past_due, {bucket}, p.bucket, l.principal_outstanding_fen "
            "FROM loans l LEFT JOIN loan_month_ends p ON p.as_of = :previous AND p.loan_id = l.id "
            f"WHERE {self._on_book()} AND NOT EXISTS "
            "(SELECT 1 FROM loan_month_ends m WHERE m.as_of = :day AND m.loan_id = l.id)"
        )
        extra = {"previous": s.value(previous), "month": self.day.year * 12 + self.day.month - 1}
        # Under the status step's name (its progress, its chunk lock: each chunk is read as one moment).
        written = self._each_chunk("status", lambda session, params: rows_changed(session.execute(
            statement, {**params, **extra})))
        with self.db.transaction() as session:
            roll_up_month_end(session, self.day)
        return written

    def reminders(self) -> dict[str, int]:
        owed = ("(i.principal_fen + i.interest_fen + i.fee_fen + i.penalty_fen - i.principal_paid_fen "
                "- i.interest_paid_fen - i.fee_paid_fen - i.penalty_paid_fen)")
        kinds = {  # kind: the due date it reminds of, seen from the morning of D + 1
            "due_in_3": self.tomorrow + timedelta(days=3),
            "due_in_1": self.tomorrow + timedelta(days=1),
            "due_today": self.tomorrow,
            "overdue": self.day,  # unpaid at the close of its due date: newly overdue
        }
        statement = text(
            "INSERT INTO loan_reminders (loan_id, installment_id, kind, business_date, amount_fen) "
            f"SELECT i.loan_id, i.id, CAST(:kind AS VARCHAR(16)), :tomorrow, {owed} FROM loan_installments i "
            f"JOIN loans l ON l.id = i.loan_id WHERE {self._on_book()} AND i.due_date = :target "
            "AND i.loan_id BETWEEN :low AND :high "
            "AND i.paid_off_on IS NULL AND NOT EXISTS ("
            "SELECT 1 FROM loan_reminders r WHERE r.installment_id = i.id AND r.kind = CAST(:kind AS VARCHAR(16)))"
        )
        counts = dict.fromkeys(kinds, 0)

        def work(session: Session, params: dict[str, Any]) -> int:
            queued = 0
            for kind, target in kinds.items():
                rows = session.execute(statement, {**params, "kind": kind, "target": self.sql.value(target)}).rowcount
                counts[kind] += rows
                queued += rows
            return queued

        self._each_chunk("reminders", work)
        return counts

    def expire_instructions(self) -> dict[str, int]:
        """Close the instructions of past days left ``pending`` (the worker was down, or the day ended
        before a retry): set based, in chunks of instruction ids, touching only rows still pending."""
        pending = "status = 'pending' AND business_date < :day"
        with self.db.transaction() as session:
            low, high = session.execute(text(
                f"SELECT MIN(id), MAX(id) FROM collection_instructions WHERE {pending}"), self.params).one()
        ranges = [] if low is None else [(start, min(start + self.chunk - 1, high))
                                         for start in range(low, high + 1, self.chunk)]
        in_chunk = f"id BETWEEN :low AND :high AND {pending}"
        expire = text(f"UPDATE collection_instructions SET status = 'expired', next_attempt_at = NULL "
                      f"WHERE {in_chunk} AND attempts = 0")
        give_up = text(f"UPDATE collection_instructions SET status = 'failed', next_attempt_at = NULL "
                       f"WHERE {in_chunk} AND attempts > 0")
        counts = {"expired": 0, "failed": 0}
        for n, (chunk_low, chunk_high) in enumerate(ranges, 1):
            params = {**self.params, "low": chunk_low, "high": chunk_high}
            with self.db.transaction() as session:
                counts["expired"] += session.execute(expire, params).rowcount
                counts["failed"] += session.execute(give_up, params).rowcount
            if self.progress:
                self.progress("expire_instructions", n, len(ranges))
        if not ranges and self.progress:
            self.progress("expire_instructions", 0, 0)
        return counts

    def instructions(self) -> dict[str, int]:
        owed = ("(i.principal_fen + i.interest_fen + i.fee_fen + i.penalty_fen - i.principal_paid_fen "
                "- i.interest_paid_fen - i.fee_paid_fen - i.penalty_paid_fen)")
        statement = text(
            "INSERT INTO collection_instructions (loan_id, installment_id, business_date, amount_fen, status) "
            f"SELECT i.loan_id, i.id, :tomorrow, {owed}, 'pending' FROM loan_installments i "
            f"JOIN loans l ON l.id = i.loan_id WHERE {self._on_book()} "
            "AND i.paid_off_on IS NULL AND i.due_date <= :tomorrow AND i.loan_id BETWEEN :low AND :high "
            "AND NOT EXISTS ("
            "SELECT 1 FROM collection_instructions c WHERE c.installment_id = i.id AND c.business_date = :tomorrow)"
        )
        rows = self._each_chunk("instructions", lambda session, params: session.execute(statement, params).rowcount)
        return {"instructions": rows}

    def rollups(self) -> dict[str, int]:
        """Every closed day up to D not yet in each daily roll-up (none if the batch ran late: it catches up)."""
        figures = catch_up_all(self.db, self.ports.daily_rollups, through=self.day, now=self.now)
        if self.progress:
            self.progress("rollups", 1, 1)
        return figures


def roll_up_month_end(session: Session, day: date) -> int:
    """(Re)write the roll-up of month end ``day``'s snapshot (``loan_month_end_rolls``): one GROUP BY over
    that month end's rows, replacing any roll-up written before (a resumed step). Returns its rows."""
    value = SqlText(dialect_of(session)).value(day)
    session.execute(text("DELETE FROM loan_month_end_rolls WHERE as_of = :day"), {"day": value})
    return rows_changed(session.execute(text(
        "INSERT INTO loan_month_end_rolls (as_of, product_id, prev_bucket, bucket, loans, principal_outstanding_fen) "
        "SELECT as_of, product_id, COALESCE(prev_bucket, 'new'), bucket, COUNT(*), SUM(principal_outstanding_fen) "
        "FROM loan_month_ends WHERE as_of = :day GROUP BY as_of, product_id, COALESCE(prev_bucket, 'new'), bucket"
    ), {"day": value}))


def book_summary(session: Session) -> dict[str, int]:
    """Loans on the book by delinquency bucket: current, M1 (1–30 days), M2 (31–60), M3 (61–90), M3+."""
    bucket = (
        "CASE WHEN days_past_due = 0 THEN 'current' WHEN days_past_due <= 30 THEN 'M1' "
        "WHEN days_past_due <= 60 THEN 'M2' WHEN days_past_due <= 90 THEN 'M3' ELSE 'M3+' END"
    )
    rows = session.execute(text(
        f"SELECT {bucket} AS bucket, COUNT(*) FROM loans WHERE status IN {ON_BOOK} GROUP BY {bucket}"
    )).all()
    summary = dict.fromkeys(BUCKETS, 0)
    summary.update({b: int(n) for b, n in rows})
    return summary


def bucket_of(days_past_due: int) -> str:
    """The delinquency bucket of a number of days past due (the Python twin of :func:`book_summary`)."""
    if days_past_due <= 0:
        return "current"
    return "M1" if days_past_due <= 30 else "M2" if days_past_due <= 60 else "M3" if days_past_due <= 90 else "M3+"


# -- reminders out ------------------------------------------------------------------------------------

_TEXTS = {
    "due_in_3": "【秒贷】您的借款（尾号{tail}）第{period}期应还 ¥{amount}，将于 {due} 到期，请留意还款卡余额。",
    "due_in_1": "【秒贷】您的借款（尾号{tail}）第{period}期应还 ¥{amount}，明天（{due}）到期，请留意还款卡余额。",
    "due_today": "【秒贷】您的借款（尾号{tail}）第{period}期应还 ¥{amount}，今天到期，今日将从还款卡自动扣款。",
    "overdue": "【秒贷】您的借款（尾号{tail}）第{period}期 ¥{amount} 已逾期，宽限期后将计罚息，请尽快还款。"
               "如有困难请联系客服协商。",
}


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0


def send_reminders(ports: IdentityPorts, day: date, *, batch: int = 500) -> SendReport:
    """Hand the reminders queued for ``day`` to the SMS provider; a reminder is sent at most once.

    Reminders of earlier days still unsent are not sent late (a "due in 3 days" a week on misleads);
    a delivery the carrier refuses stays unsent and is retried by the next call on the same day. One
    dispatcher at a time: the message goes out before the row is marked, so a crash in between can
    send one reminder twice, never lose one.
    """
    report = SendReport()
    last_id = 0
    while True:
        with ports.db.transaction() as session:  # read a batch, then send outside any transaction
            rows = session.execute(
                select(Reminder.id, Reminder.kind, Reminder.amount_fen, Loan.loan_no, LoanInstallment.period,
                       LoanInstallment.due_date, Borrower.phone_enc)
                .join(Loan, Loan.id == Reminder.loan_id)
                .join(LoanInstallment, LoanInstallment.id == Reminder.installment_id)
                .join(Borrower, Borrower.id == Loan.borrower_id)
                .where(Reminder.business_date == day, Reminder.sent_at.is_(None), Reminder.id > last_id)
                .order_by(Reminder.id).limit(batch)
            ).all()
        if not rows:
            return report
        for reminder_id, kind, amount_fen, loan_no, period, due, phone_enc in rows:
            last_id = reminder_id
            message = _TEXTS[kind].format(
                tail=loan_no[-4:], period=period, amount=Money(amount_fen).to_yuan(), due=due.isoformat())
            delivery = ports.sms.send(ports.vault.decrypt(phone_enc, PHONE_FIELD), message, OtpChannel.SMS)
            if not delivery.accepted:
                report.failed += 1
                continue
            with ports.db.transaction() as session:
                session.execute(update(Reminder).where(Reminder.id == reminder_id)
                                .values(sent_at=ports.clock.now()))
            report.sent += 1
