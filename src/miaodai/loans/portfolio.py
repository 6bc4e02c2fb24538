"""The portfolio dashboard (资产仪表盘): SQL aggregates over the loan book, their tables and charts.

* the book by delinquency bucket (current, M1, M2, M3, M3+): loans and principal outstanding, from
  ``loans`` as the end-of-day batch last left them;
* vintage curves: of each disbursement month's loans, the share that has been 30+ days past due at any
  month end up to each month on book (cumulative, the usual 账龄 curve), from the month-end snapshots;
* roll rates: of the loans in each bucket at one month end, where they stand at the next (a bucket, or
  ``closed``: paid off or written off), from each month end's roll-up of its snapshot;
* early repayments (payoffs and partial prepayments not reversed) and write-offs by month.

History comes from ``loan_month_ends`` and its roll-up ``loan_month_end_rolls``, written by the batch at each
month end (:mod:`miaodai.loans.eod`).
The date range selects disbursement dates for the book, disbursement months for vintages, month ends for
roll rates, and the days money moved for early repayments and write-offs; the product filters them all.
Portable SQLAlchemy Core on SQLite and PostgreSQL; the Python after each statement only reshapes its rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, extract, func, select
from sqlalchemy.orm import Session

from miaodai.core.charts import Filters, Labels, Table, category_option, heatmap_option, roll_matrix
from miaodai.core.clock import BUSINESS_TZ
from miaodai.loans.eod import BUCKETS
from miaodai.loans.models import Loan, LoanMonthEnd, LoanMonthEndRoll, Repayment
from miaodai.loans.states import LoanStatus

ON_BOOK = (LoanStatus.ACTIVE, LoanStatus.OVERDUE)
BOOKED = (LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.PAID_OFF, LoanStatus.WRITTEN_OFF)
BAD_DAYS = 30  # a vintage's "bad": 30 or more days past due at a month end
CLOSED = "closed"
NEW = "new"  # a roll-up's prev_bucket for loans not on the book at the previous month end
EARLY = ("payoff", "prepayment")  # repayment kinds (loans.repayment_service.Purpose) paid before they were due

ROLLUPS: tuple[Any, ...] = ()  # the portfolio's daily roll-ups (none yet: see docs/console.md)

LABELS: dict[str, tuple[str, str]] = {
    "book_by_bucket": ("逾期分布（在贷余额）", "The book by days past due"), "bucket": ("逾期档", "Bucket"),
    "loans": ("笔数", "Loans"), "principal_outstanding_fen": ("在贷本金（分）", "Principal outstanding (fen)"),
    "principal_yuan": ("在贷本金（元）", "Principal outstanding (yuan)"), "principal_share": ("本金占比", "Share"),
    "current": ("正常", "Current"), "M1": ("M1", "M1"), "M2": ("M2", "M2"), "M3": ("M3", "M3"), "M3+": ("M3+", "M3+"),
    CLOSED: ("结清/核销", "Closed"),
    "vintage_curves": ("账龄曲线（30+ 逾期率）", "Vintage curves (30+ days past due)"),
    "vintage": ("放款月", "Vintage"), "months_on_book": ("账龄（月）", "Months on book"),
    "bad_loans": ("30+ 笔数", "Loans 30+"), "bad_share": ("30+ 占比", "Share 30+"),
    "roll_rates": ("迁徙率", "Roll rates"), "month_end": ("月末", "Month end"), "from_bucket": ("月初档", "From"),
    "to_bucket": ("月末档", "To"),
    "early_and_write_offs": ("提前还款与核销", "Early repayments and write-offs"), "month": ("月份", "Month"),
    "early_repayments": ("提前还款笔数", "Early repayments"),
    "early_repaid_fen": ("提前还款金额（分）", "Repaid early (fen)"),
    "early_repaid_yuan": ("提前还款金额（元）", "Repaid early (yuan)"), "write_offs": ("核销笔数", "Write-offs"),
    "written_off_fen": ("核销本金（分）", "Principal written off (fen)"),
    "written_off_yuan": ("核销本金（元）", "Principal written off (yuan)"),
}


def labels_for(locale: str) -> dict[str, str]:
    i = 0 if locale.lower().startswith("zh") else 1
    return {key: texts[i] for key, texts in LABELS.items()}


def month_key(yyyymm: int) -> str:
    return f"{yyyymm // 100:04d}-{yyyymm % 100:02d}"


def _yyyymm(day: date) -> int:
    return day.year * 100 + day.month


def _months_between(earlier: int, later: int) -> int:
    """Whole months from ``earlier`` to ``later`` (both yyyymm)."""
    return (later // 100 - earlier // 100) * 12 + later % 100 - earlier % 100


def _instant(day: date) -> datetime:
    """The start of a Beijing business date, as a UTC-aware instant (``closed_at`` is stored in UTC)."""
    return datetime.combine(day, time(0), tzinfo=BUSINESS_TZ)


# -- the book by bucket -------------------------------------------------------------------------------

_BUCKET = case((Loan.days_past_due == 0, "current"), (Loan.days_past_due <= 30, "M1"),
               (Loan.days_past_due <= 60, "M2"), (Loan.days_past_due <= 90, "M3"), else_="M3+")


def book_by_bucket(session: Session, filters: Filters) -> Table:
    """Loans on the book disbursed in the range, by bucket: loans, principal outstanding (fen), and the
    bucket's share of the principal. Every bucket has a row, in order."""
    query = (select(_BUCKET, func.count(), func.coalesce(func.sum(Loan.principal_outstanding_fen), 0))
             .where(Loan.status.in_(ON_BOOK), Loan.start_date >= filters.since, Loan.start_date <= filters.until)
             .group_by(_BUCKET))
    if filters.product_id is not None:
        query = query.where(Loan.product_id == filters.product_id)
    found = {bucket: (int(n), int(fen)) for bucket, n, fen in session.connection().execute(query)}
    total = sum(fen for _, fen in found.values())
    table = Table(("bucket", "loans", "principal_outstanding_fen", "principal_share"))
    for bucket in BUCKETS:
        n, fen = found.get(bucket, (0, 0))
        table.rows.append((bucket, n, fen, round(fen / total, 4) if total else None))
    return table


def book_chart(table: Table, labels: Labels | None = None) -> dict[str, Any]:
    """Principal outstanding (yuan) per bucket as bars, the loan count as a line on the right axis."""
    return category_option(
        title="book_by_bucket", labels=labels, categories=[(labels or {}).get(b, b) for b in table.column("bucket")],
        y_name="principal_yuan", y2_name="loans",
        series=[{"key": "principal_yuan", "data": [fen / 100 for fen in table.column("principal_outstanding_fen")]},
                {"key": "loans", "kind": "line", "axis": 1, "data": table.column("loans")}])


# -- vintage curves -----------------------------------------------------------------------------------


def vintage_curves(session: Session, filters: Filters) -> Table:
    """For each disbursement month in the range: its loans (booked: still on the book, paid off or written
    off), and for each month on book up to the last month end written, how many of them had been 30+ days
    past due at some month end by then, and that share."""
    start_month = extract("year", Loan.start_date) * 100 + extract("month", Loan.start_date)
    booked = (select(start_month, func.count())
              .where(Loan.status.in_(BOOKED), Loan.start_date >= filters.since, Loan.start_date <= filters.until)
              .group_by(start_month))
    first_bad = (select(LoanMonthEnd.vintage, func.min(LoanMonthEnd.months_on_book).label("mob"))
                 .where(LoanMonthEnd.days_past_due >= BAD_DAYS, LoanMonthEnd.vintage >= _yyyymm(filters.since),
                        LoanMonthEnd.vintage <= _yyyymm(filters.until))
                 .group_by(LoanMonthEnd.vintage, LoanMonthEnd.loan_id))
    if filters.product_id is not None:
        booked = booked.where(Loan.product_id == filters.product_id)
        first_bad = first_bad.where(LoanMonthEnd.product_id == filters.product_id)
    first = first_bad.subquery()
    bad = select(first.c.vintage, first.c.mob, func.count()).group_by(first.c.vintage, first.c.mob)
    loans = {int(v): int(n) for v, n in session.connection().execute(booked)}
    newly_bad: dict[int, dict[int, int]] = defaultdict(dict)
    for vintage, mob, n in session.connection().execute(bad):
        newly_bad[int(vintage)][int(mob)] = int(n)
    last_month_end = session.connection().scalar(
        select(func.max(LoanMonthEnd.as_of)).where(LoanMonthEnd.as_of <= filters.until))
    table = Table(("vintage", "months_on_book", "loans", "bad_loans", "bad_share"))
    if last_month_end is None:
        return table
    for vintage in sorted(loans):
        observed = _months_between(vintage, _yyyymm(last_month_end))
        cumulative = 0
        for mob in range(observed + 1):
            cumulative += newly_bad.get(vintage, {}).get(mob, 0)
            table.rows.append((month_key(vintage), mob, loans[vintage], cumulative,
                               round(cumulative / loans[vintage], 4)))
    return table


def vintage_chart(table: Table, labels: Labels | None = None) -> dict[str, Any]:
    """One line per vintage: the 30+ share (per cent) by months on book."""
    longest = max(table.column("months_on_book"), default=-1) + 1
    curves: dict[str, list[float | None]] = {}
    for vintage, mob, _, _, share in table.rows:
        curves.setdefault(vintage, [None] * longest)[mob] = round(share * 100, 2)
    return category_option(title="vintage_curves", labels=labels, categories=[str(m) for m in range(longest)],
                           x_name="months_on_book", y_name="bad_share",
                           series=[{"key": v, "kind": "line", "data": data} for v, data in curves.items()])


# -- roll rates ---------------------------------------------------------------------------------------


def roll_rates(session: Session, filters: Filters) -> Table:
    """For each month end in the range (that has one before it): loans by their bucket at the previous
    month end and where they are now — a bucket, or ``closed`` when they left the book in between. Read
    from the month ends' roll-ups (``loan_month_end_rolls``), a few dozen rows a month."""
    R = LoanMonthEndRoll  # noqa: N806 - a table alias
    # From the month end before the range's first: the loans that left the book during the first month.
    before = filters.since.replace(day=1) - timedelta(days=1)
    query = (select(R.as_of, R.prev_bucket, R.bucket, func.sum(R.loans))
             .where(R.as_of >= before, R.as_of <= filters.until).group_by(R.as_of, R.prev_bucket, R.bucket))
    if filters.product_id is not None:
        query = query.where(R.product_id == filters.product_id)
    at: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BUCKETS, 0))
    flows: dict[date, dict[tuple[str, str], int]] = defaultdict(dict)
    for as_of, source, target, n in session.connection().execute(query):
        at[as_of][target] += int(n)
        if source != NEW:
            flows[as_of][(source, target)] = int(n)
    table = Table(("month_end", "from_bucket", "to_bucket", "loans"))
    for as_of in sorted(a for a in at if a >= filters.since):
        previous = as_of.replace(day=1) - timedelta(days=1)
        if previous not in at:
            continue  # no snapshot a month before: nothing to roll from
        for source in BUCKETS:
            stayed = 0
            for target in BUCKETS:
                n = flows[as_of].get((source, target), 0)
                stayed += n
                table.rows.append((as_of, source, target, n))
            table.rows.append((as_of, source, CLOSED, at[previous][source] - stayed))
    return table


def roll_chart(table: Table, labels: Labels | None = None) -> dict[str, Any]:
    """The range's roll rates as one matrix (all its months' loans together), row-normalised, as a heatmap."""
    matrix = roll_matrix(((s, t, n) for _, s, t, n in table.rows), BUCKETS, exits=(CLOSED,))
    columns = [*BUCKETS, CLOSED]
    return heatmap_option(title="roll_rates", labels=labels, rows=list(BUCKETS), columns=columns,
                          values=[[matrix[s][t] for t in columns] for s in BUCKETS])


# -- early repayments and write-offs ------------------------------------------------------------------


def early_and_write_offs(session: Session, filters: Filters) -> Table:
    """By month of the range: payoffs and partial prepayments received (count, fen; any later reversed is
    left out) and loans written off (count, principal outstanding when written off, fen)."""
    reversed_ids = select(Repayment.reverses_id).where(Repayment.reverses_id.is_not(None))
    early = (select(Repayment.received_on, func.count(), func.sum(Repayment.amount_fen))
             .where(Repayment.kind.in_(EARLY), Repayment.received_on >= filters.since,
                    Repayment.received_on <= filters.until, Repayment.id.not_in(reversed_ids))
             .group_by(Repayment.received_on))
    written = (select(Loan.closed_at, Loan.principal_outstanding_fen)
               .where(Loan.status == LoanStatus.WRITTEN_OFF, Loan.closed_at >= _instant(filters.since),
                      Loan.closed_at < _instant(filters.until + timedelta(days=1))))
    if filters.product_id is not None:
        early = early.join(Loan, Loan.id == Repayment.loan_id).where(Loan.product_id == filters.product_id)
        written = written.where(Loan.product_id == filters.product_id)
    months: dict[int, list[int]] = {}
    month = _yyyymm(filters.since)
    while month <= _yyyymm(filters.until):
        months[month] = [0, 0, 0, 0]
        month = month + 1 if month % 100 < 12 else (month // 100 + 1) * 100 + 1
    for day, n, fen in session.connection().execute(early):
        row = months[_yyyymm(day)]
        row[0] += int(n)
        row[1] += int(fen)
    for closed_at, fen in session.connection().execute(written):
        assert closed_at is not None  # the WHERE compares it
        row = months[_yyyymm(closed_at.astimezone(BUSINESS_TZ).date())]
        row[2] += 1
        row[3] += int(fen)
    table = Table(("month", "early_repayments", "early_repaid_fen", "write_offs", "written_off_fen"))
    table.rows.extend((month_key(m), *values) for m, values in months.items())
    return table


def early_and_write_offs_chart(table: Table, labels: Labels | None = None) -> dict[str, Any]:
    return category_option(
        title="early_and_write_offs", labels=labels, categories=table.column("month"), y_name="early_repaid_yuan",
        series=[{"key": "early_repaid_yuan", "data": [fen / 100 for fen in table.column("early_repaid_fen")]},
                {"key": "written_off_yuan", "data": [fen / 100 for fen in table.column("written_off_fen")]}])
