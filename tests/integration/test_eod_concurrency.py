"""The end-of-day batch and online postings on one loan at the same moment, on PostgreSQL.

SQLite serialises writers, so only PostgreSQL can interleave them. Every batch step that changes money
or state (penalty, accrue, fall_due, apply_held, status) meets every online posting (repayment due,
payoff, prepayment, a collection settled, a reversal, a write-off, a refund of held money, a payout
paid or voided), in both orders: one side is held inside its transaction, after its lock, with
everything written but not committed (the worst moment for the other side); the other side starts
and must be seen waiting for the loan's lock (pg_stat_activity); then the first is released. After
both, the book and every loan agree: balanced entries, trial balance zero, each loan's sub-ledger
equal to its installments, no installment marked paid off that still owes, and a loan that owes
nothing paid off. See :mod:`miaodai.loans.locking` for the protocol.

A small book is built once per module (a PostgreSQL template database) and copied for each case:
loan W is 4 months overdue (an installment falls due too), P is waiting for its payout, and H has an
installment falling due with money held for it, W < P < H by id, so one batch chunk holds all three.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from miaodai.backoffice import approvals
from miaodai.backoffice.actions import ActionKind
from miaodai.container import Container, build_container
from miaodai.core.audit import AuditEntry
from miaodai.core.clock import BUSINESS_TZ, FixedClock, business_date
from miaodai.core.db import Database
from miaodai.core.errors import DomainError
from miaodai.core.settings import Environment, Settings
from miaodai.demo import seed_demo
from miaodai.identity.staff_service import StaffContext
from miaodai.ledger.accounts import Account
from miaodai.ledger.book import check_book, loan_subledger, trial_balance
from miaodai.ledger.models import JournalEntry, JournalLeg
from miaodai.loans import eod, line_service, loan_service, repayment_service
from miaodai.loans.accounting import mismatched_loans
from miaodai.loans.eod import run_eod
from miaodai.loans.models import CreditLine, EodRun, Loan, LoanProduct
from miaodai.loans.product_service import quote_under_product
from miaodai.loans.quotes import terms_or_error
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.loans.repayment_service import Purpose, RepaymentRequest, outstanding
from miaodai.loans.schedule import DayCount, RepaymentMethod, daily_interest
from miaodai.loans.states import ON_BOOK, LoanStatus
from miaodai.loans.write_off import write_off
from miaodai.payments import collections, orders
from miaodai.payments.channel import ChannelAnswer, ChannelStatus, OrderKind
from miaodai.payments.models import PaymentMethod, PaymentOrder
from tests.console_support import add_staff

PINNED_FIXTURES = ("backend",)

DAY = date(2027, 3, 10)  # the date each case's batch closes, in the early hours of DAY + 1
MORNING = datetime.combine(DAY + timedelta(days=1), clock_time(1, 0), tzinfo=BUSINESS_TZ)
PRINCIPAL = 500_000
HELD = 100_000  # more than H's installment 1: some is still held after the batch applies it
REFUND = 20_000  # a refund of held money, possible before and after the batch applies some of it
STEPS = eod.LOCKING
WAIT = 20.0  # seconds: bounded waits for a thread to arrive or to be seen blocked
_cases = itertools.count()


@pytest.fixture
def backend() -> str:
    return "postgresql"


# -- the book ------------------------------------------------------------------------------------------


@dataclass
class Book:
    template: str
    workdir: Path
    w: int  # overdue > 90 days, an installment falls due on DAY + 1
    p: int  # payout ordered, not yet settled
    h: int  # current, installment 1 falls due on DAY + 1, HELD fen held (more than it owes)
    small_repayment: int  # a due repayment on W, the latest: reversible
    collection_order: str  # a collection for W at the channel
    payout_order: str  # P's payout order


def _settings(url: str, workdir: Path, store: Path) -> Settings:
    return Settings(env=Environment.TEST, database_url=url, keyring_file=workdir / "keyring.json",
                    contract_signing_key_file=workdir / "contract-signing-key.pem", sandbox_channel_store=store,
                    sandbox=True, audit_sealer_enabled=False, payments_worker_enabled=False, log_level="WARNING",
                    log_json=True)


def _signed_loan(container: Container, n: int) -> tuple[int, str]:
    """A 12-month loan on the demo line, signed, its payout ordered (stored, not sent): (loan id, order no)."""
    now = container.clock.now()
    with container.db.transaction() as session:
        line = session.execute(select(CreditLine).order_by(CreditLine.id)).scalars().first()
        product = session.get(LoanProduct, line.product_id)
        spec = product.spec()
        schedule = quote_under_product(spec, terms_or_error(
            principal_fen=PRINCIPAL, annual_rate=line.annual_rate, method=RepaymentMethod.EQUAL_INSTALLMENT,
            start_date=business_date(now), term_months=12, term_days=None))
        assert line_service.reserve(session, line.id, PRINCIPAL, now=now)
        priced = schedule.terms
        loan = Loan(
            loan_no=f"RACE{n}", borrower_id=line.borrower_id, credit_line_id=line.id, product_id=product.id,
            status=LoanStatus.SIGNED, principal_fen=PRINCIPAL, method=priced.method, term_months=12, term_days=None,
            annual_rate=priced.annual_rate, monthly_fee_rate=priced.monthly_fee_rate,
            day_count=priced.day_count.value, penalty_annual_rate=spec.penalty_rate(priced.annual_rate),
            late_fee_fen=spec.late_fee_fen, grace_days=spec.grace_days, cost_cap=spec.cost_cap,
            allocation_order=",".join(b.value for b in spec.allocation_order), apr=schedule.apr,
            total_interest_fen=schedule.total_interest_fen, total_fee_fen=schedule.total_fee_fen,
            start_date=business_date(now), principal_outstanding_fen=PRINCIPAL, overpayment_fen=0, days_past_due=0,
            payout_attempts=0, request_key=f"race-{n}", requested_at=now, signed_at=now)
        session.add(loan)
        session.flush()
        loan_service._order_payout(session, container, loan, now=now, actor="staff:1")  # noqa: SLF001
        order_no = session.execute(select(PaymentOrder.order_no).where(PaymentOrder.loan_id == loan.id)).scalar_one()
        return loan.id, order_no


def _answer(order_no: str, amount_fen: int, at: datetime, *, succeeded: bool = True) -> ChannelAnswer:
    if succeeded:
        return ChannelAnswer(order_no, ChannelStatus.SUCCEEDED, f"T{order_no}", "SUCCESS", "ok", amount_fen, at)
    return ChannelAnswer(order_no, ChannelStatus.FAILED, None, "ACCOUNT_NAME_MISMATCH", "户名不符", None, at)


def _paid_out(container: Container, order_no: str, on: date) -> None:
    at = datetime.combine(on, clock_time(10, 0), tzinfo=BUSINESS_TZ)
    assert orders.apply_answer(container, _answer(order_no, PRINCIPAL, at), event="queried").outcome == "applied"


def _repay(container: Container, loan_id: int, amount_fen: int, key: str, **more: Any) -> repayment_service.Posted:
    return repayment_service.post_repayment(container, RepaymentRequest(
        loan_id=loan_id, amount_fen=amount_fen, idempotency_key=key, channel=container.channel.name,
        received_at=container.clock.now(), **more), actor="staff:1")


@pytest.fixture(scope="module")
def book(pg_server, pg_template, tmp_path_factory) -> Iterator[Book]:
    name = "eod_race_book"
    url = pg_server.create_database(name, template=pg_template)
    workdir = tmp_path_factory.mktemp("eod-race")
    clock = FixedClock(datetime.combine(DAY, clock_time(1, 0), tzinfo=BUSINESS_TZ))  # DAY - 1 is over
    container = build_container(_settings(url, workdir, workdir / "channel.db"), clock=clock, db=Database(url))
    try:
        seed_demo(container)
        w, w_order = _signed_loan(container, 1)
        p, p_order = _signed_loan(container, 2)
        h, h_order = _signed_loan(container, 3)
        _paid_out(container, w_order, DAY - timedelta(days=150))  # installment 1 due ~120 days before DAY
        _paid_out(container, h_order, date(DAY.year, DAY.month - 1, DAY.day + 1))  # installment 1 due DAY + 1
        run_eod(container, DAY - timedelta(days=1))  # catches W up: everything due posted, overdue, days past due
        small = _repay(container, w, 3_000, "w-small").repayment_id
        assert _repay(container, h, HELD, "h-ahead").created  # nothing due yet: all held
        with container.db.transaction() as session:
            loan = session.get(Loan, w)
            assert loan.status is LoanStatus.OVERDUE and loan.days_past_due > 90, loan.days_past_due
            assert session.get(Loan, h).overpayment_fen == HELD
            method = session.execute(select(PaymentMethod).where(PaymentMethod.borrower_id == loan.borrower_id)
                                     ).scalars().first()
            owed = sum(outstanding(i) for i in loan_service.installments_of(session, w))
            collection = orders.create_order(
                session, container, kind=OrderKind.COLLECTION, purpose=collections.REPAYMENT,
                business_key=f"loan:{w}:repay:race", borrower_id=loan.borrower_id, loan_id=w, method=method,
                amount_fen=owed // 2, now=clock.now(), repayment_purpose=Purpose.DUE.value)
            collection_no = collection.order_no
    finally:
        container.db.dispose()
        container.channel.close()
    yield Book(name, workdir, w, p, h, small, collection_no, p_order)
    pg_server.drop_database(name)


@pytest.fixture
def case(pg_server, book: Book, tmp_path: Path) -> Iterator[Container]:
    name = f"eod_race_{next(_cases)}"
    url = pg_server.create_database(name, template=book.template)
    clock = FixedClock(MORNING)
    container = build_container(_settings(url, book.workdir, tmp_path / "channel.db"), clock=clock,
                                db=Database(url))
    try:
        yield container
    finally:
        container.db.dispose()
        container.channel.close()
        pg_server.drop_database(name)


# -- the online postings -------------------------------------------------------------------------------


def _owed_by_tomorrow(container: Container, loan_id: int) -> int:
    with container.db.transaction() as session:
        return sum(outstanding(i) for i in loan_service.installments_of(session, loan_id)
                   if i.due_date <= DAY + timedelta(days=1))


def _payoff_amount(container: Container, loan_id: int) -> int:
    with container.db.transaction() as session:
        loan = session.get(Loan, loan_id)
        return repayment_service.payoff_quote(session, loan, DAY + timedelta(days=1)).total_fen


def _op_repay_due(container: Container, book: Book) -> Callable[[], Any]:
    amount = _owed_by_tomorrow(container, book.w) + 20_000  # all that is due tonight, penalty included
    return lambda: _repay(container, book.w, amount, "race-due")


def _op_payoff(container: Container, book: Book) -> Callable[[], Any]:
    amount = _payoff_amount(container, book.w) + 20_000
    return lambda: _repay(container, book.w, amount, "race-payoff", purpose=Purpose.PAYOFF)


def _op_prepay(container: Container, book: Book) -> Callable[[], Any]:
    return lambda: _repay(container, book.h, 200_000, "race-prepay", purpose=Purpose.PREPAYMENT,
                          mode=PrepaymentMode.SHORTER_TERM)


def _op_collection(container: Container, book: Book) -> Callable[[], Any]:
    with container.db.transaction() as session:
        amount = session.execute(select(PaymentOrder.amount_fen)
                                 .where(PaymentOrder.order_no == book.collection_order)).scalar_one()
    answer = _answer(book.collection_order, amount, MORNING)
    return lambda: orders.apply_answer(container, answer, event="callback")  # noqa: SLF001 - as a callback does


def _op_reversal(container: Container, book: Book) -> Callable[[], Any]:
    return lambda: repayment_service.reverse_repayment(container, book.small_repayment, idempotency_key="race-rev",
                                                       actor="staff:1", reason="bank returned it")


def _op_write_off(container: Container, book: Book) -> Callable[[], Any]:
    return lambda: write_off(container, book.w, actor="staff:1", reason="M3+")


def _op_refund(container: Container, book: Book) -> Callable[[], Any]:
    return lambda: collections.request_refund(container, book.h, REFUND, key="race-refund", reason="asked",
                                              actor="staff:1")


def _op_payout_paid(container: Container, book: Book) -> Callable[[], Any]:
    answer = _answer(book.payout_order, PRINCIPAL, MORNING)
    return lambda: orders.apply_answer(container, answer, event="callback")  # noqa: SLF001


def _op_payout_void(container: Container, book: Book) -> Callable[[], Any]:
    answer = _answer(book.payout_order, PRINCIPAL, MORNING, succeeded=False)
    return lambda: orders.apply_answer(container, answer, event="callback")  # noqa: SLF001


OPERATIONS: dict[str, Callable[[Container, Book], Callable[[], Any]]] = {
    "repay_due": _op_repay_due, "payoff": _op_payoff, "prepay": _op_prepay, "collection": _op_collection,
    "reversal": _op_reversal, "write_off": _op_write_off, "refund": _op_refund,
    "payout_paid": _op_payout_paid, "payout_void": _op_payout_void,
}


# -- holding a thread inside its transaction -----------------------------------------------------------


@dataclass
class Held:
    """A point a thread stops at until released."""

    reached: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)

    def stop(self, session: Session | None = None) -> None:
        if session is not None:
            session.flush()  # everything written, nothing committed
        self.reached.set()
        assert self.go.wait(WAIT * 3), "never released"


@dataclass
class Worker:
    target: Callable[[], Any]
    result: Any = None
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> Worker:
        def run() -> None:
            try:
                self.result = self.target()
            except DomainError as refused:  # a refusal is an outcome (e.g. no money held any more)
                self.result = refused
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def join(self) -> Any:
        assert self.thread is not None
        self.thread.join(WAIT * 3)
        assert not self.thread.is_alive(), "still running"
        if self.error is not None:
            raise self.error
        return self.result


_LOAN_LOCK = re.compile(r"FROM loans\b.*FOR (NO KEY )?UPDATE", re.DOTALL)


class Holds:
    """Test hooks, armed per case: the batch held at one step's chunk (``gate``: before its lock;
    ``commit``: at its commit, after its lock and every write), an online posting held at the commit of
    the transaction in which it locked a loan. Nothing in the service changes: the batch's chunk and lock
    functions are wrapped, and SQLAlchemy's events see the statements and the commits."""

    def __init__(self) -> None:
        self.step: str | None = None
        self.gate: Held | None = None
        self.commit: Held | None = None
        self.local = threading.local()

    def online(self, held: Held, target: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            self.local.online, self.local.loan_locked = held, False
            return target()
        return run

    # the wrappers and listeners
    def each_chunk(self, real: Callable[..., int]) -> Callable[..., int]:
        def each_chunk(batch, step, work):  # noqa: ANN001, ANN202
            self.local.step = step
            return real(batch, step, work)
        return each_chunk

    def lock_range(self, real: Callable[..., int]) -> Callable[..., int]:
        def lock_range(session: Session, low: int, high: int) -> int:
            ours = getattr(self.local, "step", None) == self.step
            if ours and self.gate is not None and not self.gate.reached.is_set():
                self.gate.stop()
            locked = real(session, low, high)
            if ours and self.commit is not None and not self.commit.reached.is_set():
                session.info["held"] = self.commit
            return locked
        return lock_range

    def statement(self, conn, cursor, sql, params, context, executemany) -> None:  # noqa: ANN001, PLR0913
        if getattr(self.local, "online", None) is not None and _LOAN_LOCK.search(sql):
            self.local.loan_locked = True

    def before_commit(self, session: Session) -> None:
        held = session.info.pop("held", None)
        online = getattr(self.local, "online", None)
        if held is None and online is not None and self.local.loan_locked and not online.reached.is_set():
            held = online
        if held is not None:
            held.stop(session)


@pytest.fixture
def holds(monkeypatch: pytest.MonkeyPatch, case: Container) -> Iterator[Holds]:
    hooks = Holds()
    monkeypatch.setattr(eod._Batch, "_each_chunk", hooks.each_chunk(eod._Batch._each_chunk))  # noqa: SLF001
    monkeypatch.setattr(eod, "lock_loan_range", hooks.lock_range(eod.lock_loan_range))
    event.listen(case.db.engine, "before_cursor_execute", hooks.statement)
    event.listen(Session, "before_commit", hooks.before_commit)
    try:
        yield hooks
    finally:
        event.remove(Session, "before_commit", hooks.before_commit)
        event.remove(case.db.engine, "before_cursor_execute", hooks.statement)


def _waiting_for_a_loan_lock(container: Container) -> bool:
    """Whether some session of this database is waiting for a row lock taken by a loan-locking statement,
    polled for at most WAIT seconds."""
    watcher = create_engine(container.db.engine.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    deadline = time.monotonic() + WAIT
    try:
        with watcher.connect() as conn:
            while time.monotonic() < deadline:
                waiting = conn.execute(text(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query ~ 'FOR (NO KEY )?UPDATE'")).scalar_one()
                if waiting:
                    return True
                time.sleep(0.02)
        return False
    finally:
        watcher.dispose()


# -- what must hold after any interleaving -------------------------------------------------------------


def assert_sound(container: Container) -> None:
    with container.db.transaction() as session:
        assert trial_balance(session).balanced
        assert check_book(session) == []
        assert list(mismatched_loans(session)) == []
        assert session.get(EodRun, DAY).status == "completed"
        for loan in session.execute(select(Loan).order_by(Loan.id)).scalars():
            rows = loan_service.installments_of(session, loan.id)
            assert loan.overpayment_fen >= 0, loan.id
            if loan.status is LoanStatus.WRITTEN_OFF or not rows:
                continue
            for row in rows:  # paid off exactly when nothing is owed: never marked paid while still owing
                assert (row.paid_off_on is not None) == (outstanding(row) == 0), (loan.id, row.period)
            owes = sum(outstanding(r) for r in rows)
            assert (loan.status is LoanStatus.PAID_OFF) == (owes == 0), (loan.id, loan.status, owes)
            assert loan.principal_outstanding_fen == sum(r.principal_fen - r.principal_paid_fen for r in rows)


@pytest.mark.parametrize("first", ["batch", "online"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("step", STEPS)
def test_a_batch_step_and_an_online_posting_never_interleave(case, book, holds, step, operation, first):
    online, first_held = OPERATIONS[operation](case, book), Held()
    holds.step = step
    if first == "batch":  # the batch holds its chunk's loans, everything written; the posting comes
        holds.commit = first_held
        batch = Worker(lambda: run_eod(case, DAY)).start()
        assert first_held.reached.wait(WAIT), "the batch never reached its step"
        posting = Worker(online).start()
    else:  # the posting holds its loan, everything written; the batch comes to this step's chunk
        holds.gate = gate = Held()
        batch = Worker(lambda: run_eod(case, DAY)).start()
        assert gate.reached.wait(WAIT), "the batch never reached its step"
        posting = Worker(holds.online(first_held, online)).start()
        assert first_held.reached.wait(WAIT), f"{operation} never reached its commit"
        gate.go.set()
    blocked = _waiting_for_a_loan_lock(case)
    first_held.go.set()
    report, _ = batch.join(), posting.join()
    assert_sound(case)
    assert blocked, f"the {'posting' if first == 'batch' else 'batch'} did not wait for the loan's lock"
    assert step in report.steps


# -- the batch's audit trail ---------------------------------------------------------------------------


def test_each_batch_step_records_what_it_changed_in_the_audit_chain(case, book):
    with case.db.transaction() as session:  # a day's interest on what each loan on the book owes tonight
        accrued = sum(daily_interest(loan.principal_outstanding_fen, loan.annual_rate, 1, DayCount(loan.day_count))
                      for loan in session.execute(select(Loan).where(Loan.status.in_(ON_BOOK))).scalars())
        falling_due = [i for loan in session.execute(select(Loan).where(Loan.status.in_(ON_BOOK))).scalars()
                       for i in loan_service.installments_of(session, loan.id)
                       if i.due_date <= DAY + timedelta(days=1) and not i.posted_due]
    applies = _owed_by_tomorrow(case, book.h)  # H's installment 1, paid from what H holds
    report = run_eod(case, DAY)
    with case.db.transaction() as session:
        records = session.execute(select(AuditEntry).where(AuditEntry.subject == f"eod:{DAY.isoformat()}")
                                  .order_by(AuditEntry.id)).scalars().all()
        details = {r.action.removeprefix("eod."): json.loads(r.body)["details"] for r in records}
        actors = {r.actor for r in records}
        penalties = session.execute(
            select(func.count(), func.coalesce(func.sum(JournalLeg.amount_fen), 0))
            .select_from(JournalEntry).join(JournalLeg, JournalLeg.entry_id == JournalEntry.id)
            .where(JournalEntry.kind == "penalty", JournalEntry.business_date == DAY, JournalLeg.amount_fen > 0)
        ).one()

    assert list(details) == list(eod.STEPS) and actors == {eod.AUDIT_ACTOR}
    for step, figures in report.steps.items():
        assert {k: details[step][k] for k in figures} == figures
    assert details["penalty"]["entries"] == penalties[0] > 0
    assert details["penalty"]["penalty_fen"] + details["penalty"]["late_fee_fen"] == penalties[1]
    assert details["accrue"]["accrued_fen"] == accrued > 0
    assert details["fall_due"]["interest_fen"] == sum(i.interest_fen - i.interest_paid_fen for i in falling_due) > 0
    assert details["fall_due"]["fee_fen"] == sum(i.fee_fen - i.fee_paid_fen for i in falling_due)
    assert details["apply_held"] == {**details["apply_held"], "loans": 1, "applied_fen": applies}
    assert 0 < applies < HELD
    assert "resumed" not in details["penalty"]


def test_a_step_resumed_after_a_crash_says_so(case, book, monkeypatch):
    real = eod._Batch.fall_due  # noqa: SLF001

    def crash(self):  # noqa: ANN001, ANN202
        raise RuntimeError("power lost")

    monkeypatch.setattr(eod._Batch, "fall_due", crash)  # noqa: SLF001
    with pytest.raises(RuntimeError):
        run_eod(case, DAY)
    monkeypatch.setattr(eod._Batch, "fall_due", real)  # noqa: SLF001
    run_eod(case, DAY)
    with case.db.transaction() as session:
        records = {r.action: json.loads(r.body)["details"] for r in session.execute(
            select(AuditEntry).where(AuditEntry.actor == eod.AUDIT_ACTOR,
                                     AuditEntry.subject == f"eod:{DAY.isoformat()}")).scalars()}
    assert records["eod.fall_due"]["resumed"] is True
    assert "resumed" not in records["eod.accrue"] and "resumed" not in records["eod.apply_held"]



# -- a penalty waiver (maker-checker) and the batch on the same loan ---------------------------------------------


def _unpaid_penalties(container: Container, loan_id: int) -> list[tuple[int, int]]:
    """(penalty charged, penalty paid) of each installment of the loan, by period."""
    with container.db.transaction() as session:
        return [(i.penalty_fen, i.penalty_paid_fen) for i in loan_service.installments_of(session, loan_id)]


def _penalty_posted(container: Container, loan_id: int, kind: str) -> list[int]:
    """The penalty receivable leg of each entry of ``kind`` posted for the loan on or after DAY."""
    with container.db.transaction() as session:
        return list(session.execute(
            select(JournalLeg.amount_fen).join(JournalEntry, JournalEntry.id == JournalLeg.entry_id)
            .where(JournalEntry.kind == kind, JournalEntry.loan_id == loan_id, JournalEntry.business_date >= DAY,
                   JournalLeg.account == Account.PENALTY_RECEIVABLE.value).order_by(JournalLeg.id)).scalars())


@pytest.mark.usefixtures("fast_staff_hasher")
@pytest.mark.parametrize("first", ["batch", "online"])
@pytest.mark.parametrize("step", STEPS)
def test_a_penalty_waiver_and_the_batch_on_one_loan_never_interleave(case, book, holds, step, first):
    """A waiver of all of W's unpaid penalty, proposed before the batch and approved while the batch charges
    tonight's penalty (or any other step) on W: whichever goes first, the other waits for W's lock; the penalty
    owed afterwards is exactly what was owed, plus what the batch charged tonight, less the waiver — charged once,
    waived once, never below zero on any installment, and the sub-ledger says the same."""
    maker = add_staff(case, "waiver.maker", ("customer_service",))
    checker = add_staff(case, "waiver.checker", ("risk_manager",))
    as_maker = StaffContext(maker.staff_id, maker.username, maker.username, frozenset({"customer_service"}), 0)
    as_checker = StaffContext(checker.staff_id, checker.username, checker.username, frozenset({"risk_manager"}), 0)
    owed_before = sum(charged - paid for charged, paid in _unpaid_penalties(case, book.w))
    request = approvals.propose(case, as_maker, ActionKind.PENALTY_WAIVER, {"loan_id": book.w}, reason="hardship")
    waived = request.params_dict["amount_fen"]
    assert waived == owed_before > 0  # all of it, as it stood when proposed

    online, first_held = (lambda: approvals.approve(case, as_checker, request.id, reason="seen")), Held()
    holds.step = step
    if first == "batch":
        holds.commit = first_held
        batch = Worker(lambda: run_eod(case, DAY)).start()
        assert first_held.reached.wait(WAIT), "the batch never reached its step"
        posting = Worker(online).start()
    else:
        holds.gate = gate = Held()
        batch = Worker(lambda: run_eod(case, DAY)).start()
        assert gate.reached.wait(WAIT), "the batch never reached its step"
        posting = Worker(holds.online(first_held, online)).start()
        assert first_held.reached.wait(WAIT), "the waiver never reached its commit"
        gate.go.set()
    blocked = _waiting_for_a_loan_lock(case)
    first_held.go.set()
    report, decided = batch.join(), posting.join()

    assert not isinstance(decided, DomainError), decided
    assert (decided.state.value, decided.error_code) == ("approved", None)
    assert_sound(case)
    assert blocked, f"the {'waiver' if first == 'batch' else 'batch'} did not wait for the loan's lock"
    assert step in report.steps
    charged_tonight = _penalty_posted(case, book.w, "penalty")
    assert charged_tonight and all(amount > 0 for amount in charged_tonight)  # the batch charged W tonight
    assert _penalty_posted(case, book.w, "penalty_waiver") == [-waived]  # waived once, by exactly its amount
    rows = _unpaid_penalties(case, book.w)
    assert all(charged >= paid >= 0 for charged, paid in rows), rows  # never below zero, never below what was paid
    owed_after = sum(charged - paid for charged, paid in rows)
    assert owed_after == owed_before + sum(charged_tonight) - waived  # no charge lost, none waived twice
    with case.db.transaction() as session:
        assert loan_subledger(session, book.w).penalty_fen == owed_after
