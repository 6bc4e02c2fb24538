"""Random loan lives, checked after every step (Hypothesis stateful testing, on both databases).

Each example starts from an empty database with the demo data, then applies a random sequence of
drawdowns (signed and paid out, or failed and cancelled), repayments of random amounts and purposes
(posted directly, or collected from a card through the sandbox channel, whose results may arrive later),
auto-debits on due dates, refunds of held money, replays of an earlier repayment key, reversals, days
passing (with the end-of-day batch for each date, so installments fall due, go overdue, are charged
penalties and reach M3+) and write-off attempts. After every step:

* the trial balance is zero and the book check finds nothing;
* every loan's sub-ledger equals what its installments say is owed;
* every loan's outstanding principal is what its installments say, and never negative;
* the line's available amount is its limit minus the principal still owed on loans not cancelled;
* a loan is paid off exactly when nothing is owed on it, an installment settled exactly when nothing is
  owed on it, and an overdue loan has days past due;
* every collection the channel reports succeeded is posted exactly once (a repayment under its order
  number, or suspense for a loan no longer on the book), a failed one never; no loan has two collections
  at the channel at once; no auto-debit instruction collects more than it asked for.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import func, select

from miaodai.container import build_container
from miaodai.core.clock import FixedClock, business_date
from miaodai.core.db import Database
from miaodai.core.errors import DomainError
from miaodai.core.settings import Environment, Settings
from miaodai.demo import seed_demo
from miaodai.identity.models import Borrower
from miaodai.identity.sessions import AuthContext, find_or_add_device
from miaodai.ledger.models import JournalEntry
from miaodai.ledger.service import check_book, trial_balance
from miaodai.loans import eod, loan_service, repayment_service, write_off
from miaodai.loans.accounting import mismatched_loans
from miaodai.loans.models import CollectionInstruction, CreditLine, Loan, LoanInstallment, Repayment
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.loans.schedule import RepaymentMethod
from miaodai.loans.states import LoanStatus
from miaodai.payments import collections, methods, orders
from miaodai.payments.channel import OrderKind
from miaodai.payments.models import OrderStatus, PaymentMethod, PaymentOrder
from miaodai.sandbox.channel import ACCOUNT_CARD_FROZEN, ACCOUNT_LIMITED_BALANCE
from tests.conftest import T0
from tests.loan_support import signing_code

_counter = itertools.count()
# Steps per example × examples: about a thousand steps in CI (STATEFUL_SCALE=10 for a soak run).
STEPS = 50
SCALE = int(os.environ.get("STATEFUL_SCALE", "1"))
EXAMPLES = {"sqlite": 14 * SCALE, "postgresql": 7 * SCALE}

# Codes a random step may legitimately meet (a business refusal, not a bug).
EXPECTED_REFUSALS = {
    "LOAN_LINE_INSUFFICIENT", "LOAN_NOT_REPAYABLE", "LOAN_PAYOFF_AMOUNT_SHORT", "LOAN_PREPAYMENT_TOO_SMALL",
    "LOAN_REPAYMENT_NOT_REVERSIBLE", "LOAN_WRITE_OFF_TOO_EARLY", "LOAN_ILLEGAL_TRANSITION", "LOAN_LINE_NOT_USABLE",
    "PAYMENT_REPAYMENT_IN_PROGRESS", "PAYMENT_REPAYMENT_MORE_THAN_OWED", "PAYMENT_REFUND_MORE_THAN_HELD",
    "PAYMENT_METHOD_CANNOT_COLLECT",
    "LOAN_BORROWER_OVERDUE",  # drawing while a loan is past its grace: the line is frozen (the credit policy)
}


def fresh_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    number = next(_counter)
    if backend == "sqlite":
        target = tmp_path / f"stateful-{number}.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    server = request.getfixturevalue("pg_server")
    return server.create_database(f"stateful{number}", template=request.getfixturevalue("pg_template"))


class LoanBook(RuleBasedStateMachine):
    database_url: str
    tmp_path: Path

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(T0)
        settings_ = Settings(env=Environment.TEST, database_url=self.database_url,
                             keyring_file=self.tmp_path / "keyring.json",
                             contract_signing_key_file=self.tmp_path / "contract-key.pem",
                             sandbox=True, audit_sealer_enabled=False, log_json=True,
                             sandbox_channel_store=self.tmp_path / f"channel-{id(self)}.db",
                             sandbox_channel_settle_seconds=0)
        self.container = build_container(settings_, clock=self.clock, db=Database(self.database_url))
        seed_demo(self.container)
        with self.container.db.transaction() as session:
            borrower = session.execute(select(Borrower).order_by(Borrower.id)).scalars().first()
            device = find_or_add_device(session, self.container.vault, borrower_id=borrower.id,
                                        device_key="stateful-test-device", label="test", now=T0)
            session.flush()
            self.auth = AuthContext(borrower_id=borrower.id, session_id=0, device_id=device.id, step_up_at=T0)
            self.line_id = session.execute(
                select(CreditLine.id).where(CreditLine.borrower_id == borrower.id)).scalar_one()
            self.paying_card = session.execute(
                select(PaymentMethod.id).where(PaymentMethod.borrower_id == borrower.id)).scalar_one()
            self.frozen_card = methods.record_demo_card(session, self.container, borrower.id, ACCOUNT_CARD_FROZEN,
                                                        "+8613800138001", now=T0, actor="test").id
            self.thin_card = methods.record_demo_card(session, self.container, borrower.id, ACCOUNT_LIMITED_BALANCE,
                                                      "+8613800138001", now=T0, actor="test").id
        self.keys = itertools.count()
        self.next_close = business_date(T0)  # the first date the batch will close
        self.posted: list[repayment_service.RepaymentRequest] = []

    def teardown(self) -> None:
        self.container.db.dispose()

    # -- helpers ---------------------------------------------------------------------------------------

    def loans(self, *statuses: LoanStatus) -> list[Loan]:
        with self.container.db.transaction() as session:
            query = select(Loan).order_by(Loan.id)
            if statuses:
                query = query.where(Loan.status.in_(statuses))
            return list(session.execute(query).scalars())

    def attempt(self, action, *args, **kwargs):  # noqa: ANN001, ANN202 - any service call
        try:
            return action(*args, **kwargs)
        except DomainError as error:
            assert error.spec.code in EXPECTED_REFUSALS, f"unexpected refusal {error.spec.code}: {error}"
            return None

    # -- rules -----------------------------------------------------------------------------------------

    @rule(amount=st.integers(500, 8_000).map(lambda yuan: yuan * 100),
          method=st.sampled_from([RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL,
                                  RepaymentMethod.INTEREST_FIRST, RepaymentMethod.BULLET]),
          months=st.sampled_from([3, 6, 12]), days=st.integers(7, 30), pays=st.booleans())
    def draw(self, amount: int, method: RepaymentMethod, months: int, days: int, pays: bool) -> None:
        bullet = method is RepaymentMethod.BULLET
        request = loan_service.DrawdownRequest(
            line_id=self.line_id, principal_fen=amount, method=method, term_months=None if bullet else months,
            term_days=days if bullet else None, request_key=f"draw-{next(self.keys)}")
        drawn = self.attempt(loan_service.request_drawdown, self.container, self.auth, request)
        if drawn is None:
            return
        loan, _ = drawn
        contract, _ = loan_service.open_contract(self.container, self.auth, loan.id)
        # Paid out through the sandbox channel: to a card it pays, or to a frozen one it refuses at once.
        methods.set_default(self.container, self.auth, self.paying_card if pays else self.frozen_card)
        code = signing_code(self.container, self.auth.borrower_id, loan.id, contract.sha256)
        loan_service.sign(self.container, self.auth, loan.id, read_sha256=contract.sha256, code=code)
        orders.send_loan_payout(self.container, loan.id)
        self.container.channel.deliver_due(self.clock.now(), self.post_callback)
        [now_is] = [x.status for x in self.loans() if x.id == loan.id]
        assert now_is is (LoanStatus.ACTIVE if pays else LoanStatus.SIGNED), now_is
        if not pays:
            loan_service.cancel(self.container, self.auth, loan.id)

    def post_callback(self, _url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        return orders.receive_callback(self.container, "sandbox", body, dict(headers))

    @precondition(lambda self: bool(self.loans(LoanStatus.ACTIVE, LoanStatus.OVERDUE)))
    @rule(data=st.data(), purpose=st.sampled_from(list(repayment_service.Purpose)),
          mode=st.sampled_from(list(PrepaymentMode)))
    def repay(self, data: st.DataObject, purpose: repayment_service.Purpose, mode: PrepaymentMode) -> None:
        loan = data.draw(st.sampled_from(self.loans(LoanStatus.ACTIVE, LoanStatus.OVERDUE)))
        if purpose is repayment_service.Purpose.PAYOFF and data.draw(st.booleans()):
            with self.container.db.transaction() as session:
                amount = repayment_service.payoff_quote(session, loan, business_date(self.clock.now())).total_fen
        else:
            amount = data.draw(st.integers(1, loan.principal_fen + 50_000))
        request = repayment_service.RepaymentRequest(
            loan_id=loan.id, amount_fen=amount, idempotency_key=f"pay-{next(self.keys)}", channel="sandbox",
            received_at=self.clock.now(), purpose=purpose,
            mode=mode if purpose is repayment_service.Purpose.PREPAYMENT else None)
        if self.attempt(repayment_service.post_repayment, self.container, request, actor="test:channel"):
            self.posted.append(request)

    @precondition(lambda self: bool(self.loans(LoanStatus.ACTIVE, LoanStatus.OVERDUE)))
    @rule(data=st.data(), purpose=st.sampled_from(list(repayment_service.Purpose)),
          mode=st.sampled_from(list(PrepaymentMode)), answer_now=st.booleans())
    def collect(self, data: st.DataObject, purpose: repayment_service.Purpose, mode: PrepaymentMode,
                answer_now: bool) -> None:
        """Repay now from a card through the channel; its callback comes now or at a later step."""
        loan = data.draw(st.sampled_from(self.loans(LoanStatus.ACTIVE, LoanStatus.OVERDUE)))
        amount = None if purpose is repayment_service.Purpose.PAYOFF else data.draw(
            st.integers(1, loan.principal_fen + 50_000))
        card = data.draw(st.sampled_from([self.paying_card, self.thin_card]))
        self.attempt(collections.request_repayment, self.container, self.auth.borrower_id, loan.id,
                     key=f"collect-{next(self.keys)}", purpose=purpose, amount_fen=amount,
                     mode=mode if purpose is repayment_service.Purpose.PREPAYMENT else None, method_id=card)
        if answer_now:
            self.deliver()

    @rule()
    def deliver(self) -> None:
        """The channel's due callbacks arrive."""
        self.container.channel.deliver_due(self.clock.now(), self.post_callback)

    @rule()
    def auto_debit(self) -> None:
        collections.run_auto_debit(self.container)

    @precondition(lambda self: any(loan.overpayment_fen for loan in self.loans()))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        loan = data.draw(st.sampled_from([loan for loan in self.loans() if loan.overpayment_fen]))
        amount = data.draw(st.integers(1, loan.overpayment_fen + 100))
        methods.set_default(self.container, self.auth, self.paying_card)
        self.attempt(collections.request_refund, self.container, loan.id, amount, key=f"refund-{next(self.keys)}",
                     reason="overpaid", actor="test:finance")

    @precondition(lambda self: bool(self.posted))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """A channel retries an old notification: the same key answers with the first posting, nothing new."""
        request = data.draw(st.sampled_from(self.posted))
        before = self.book_fingerprint()
        try:
            posted = repayment_service.post_repayment(self.container, request, actor="test:channel")
        except DomainError as error:  # a replay never fails for a business reason
            raise AssertionError(f"replay refused: {error.spec.code}") from error
        assert posted.created is False
        assert self.book_fingerprint() == before

    @precondition(lambda self: bool(self.posted))
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        with self.container.db.transaction() as session:
            ids = list(session.execute(select(Repayment.id).where(Repayment.kind != "reversal")).scalars())
        repayment_id = data.draw(st.sampled_from(ids))
        self.attempt(repayment_service.reverse_repayment, self.container, repayment_id,
                     idempotency_key=f"rev-{next(self.keys)}", actor="test:finance", reason="chargeback")

    @rule(days=st.one_of(st.integers(1, 7), st.integers(25, 100)))
    def days_pass(self, days: int) -> None:
        """Time passes and the end-of-day batch closes every date in between, in order."""
        self.clock.advance(timedelta(days=days))
        today = business_date(self.clock.now())
        while self.next_close < today:
            report = eod.run_eod(self.container, self.next_close)
            assert not report.already_done
            self.next_close += timedelta(days=1)

    @precondition(lambda self: bool(self.loans(LoanStatus.OVERDUE)))
    @rule(data=st.data())
    def write_off(self, data: st.DataObject) -> None:
        loan = data.draw(st.sampled_from(self.loans(LoanStatus.OVERDUE)))
        self.attempt(write_off.write_off, self.container, loan.id, actor="test:manager", reason="M3+")

    # -- invariants ------------------------------------------------------------------------------------

    def book_fingerprint(self) -> tuple:
        with self.container.db.transaction() as session:
            balance = trial_balance(session)
            rows = session.execute(select(LoanInstallment.loan_id, LoanInstallment.period,
                                          LoanInstallment.principal_paid_fen, LoanInstallment.interest_paid_fen,
                                          LoanInstallment.fee_paid_fen, LoanInstallment.penalty_paid_fen)
                                   .order_by(LoanInstallment.id)).all()
            return balance.entries, balance.total_debit_fen, tuple(map(tuple, rows))

    @invariant()
    def the_book_is_sound(self) -> None:
        with self.container.db.transaction() as session:
            assert trial_balance(session).balanced
            assert check_book(session) == []
            assert list(mismatched_loans(session)) == []

    @invariant()
    def collections_are_posted_once(self) -> None:
        with self.container.db.transaction() as session:
            collected = session.execute(select(PaymentOrder).where(
                PaymentOrder.kind == OrderKind.COLLECTION.value)).scalars().all()
            keys = dict(session.execute(select(Repayment.idempotency_key, func.count()).where(
                Repayment.idempotency_key.like("order:%")).group_by(Repayment.idempotency_key)).all())
            suspense = set(session.execute(select(JournalEntry.idempotency_key).where(
                JournalEntry.kind == "collection_unmatched")).scalars())
            busy: set[int] = set()
            for order in collected:
                posted = keys.get(f"order:{order.order_no}", 0) + (f"order:{order.order_no}:suspense" in suspense)
                assert posted == (1 if order.status is OrderStatus.SUCCEEDED else 0), (order.order_no, order.status)
                if order.status in (OrderStatus.CREATED, OrderStatus.PROCESSING):
                    assert order.loan_id not in busy, f"two collections at the channel for loan {order.loan_id}"
                    busy.add(order.loan_id)
            for instruction in session.execute(select(CollectionInstruction)).scalars():
                assert 0 <= instruction.collected_fen <= instruction.amount_fen

    @invariant()
    def loans_agree_with_their_installments_and_the_line(self) -> None:
        with self.container.db.transaction() as session:
            line = session.get(CreditLine, self.line_id)
            owed_on_line = 0
            for loan in session.execute(select(Loan)).scalars():
                rows = loan_service.installments_of(session, loan.id)
                assert loan.principal_outstanding_fen >= 0 and loan.overpayment_fen >= 0
                if rows:
                    assert sum(r.principal_fen for r in rows) == loan.principal_fen
                    assert loan.principal_outstanding_fen == sum(r.principal_fen - r.principal_paid_fen for r in rows)
                    owed = sum(r.principal_fen - r.principal_paid_fen + r.interest_fen - r.interest_paid_fen
                               + r.fee_fen - r.fee_paid_fen + r.penalty_fen - r.penalty_paid_fen for r in rows)
                    assert (loan.status is LoanStatus.PAID_OFF) == (owed == 0), (loan.status, owed)
                    for r in rows:  # settled exactly when nothing is left on it
                        left = (r.principal_fen - r.principal_paid_fen + r.interest_fen - r.interest_paid_fen
                                + r.fee_fen - r.fee_paid_fen + r.penalty_fen - r.penalty_paid_fen)
                        assert (r.paid_off_on is None) == (left > 0), (loan.id, r.period, left)
                if loan.status is LoanStatus.OVERDUE:
                    assert loan.days_past_due >= 1
                if loan.status is not LoanStatus.CANCELLED:
                    owed_on_line += loan.principal_outstanding_fen
            assert line.available_fen == line.limit_fen - owed_on_line


def test_random_loan_lives_keep_the_book_sound(backend, request, tmp_path):
    def factory() -> LoanBook:
        LoanBook.database_url = fresh_database(backend, request, tmp_path)
        LoanBook.tmp_path = tmp_path
        return LoanBook()

    run_state_machine_as_test(factory, settings=settings(
        max_examples=EXAMPLES[backend], stateful_step_count=STEPS, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
