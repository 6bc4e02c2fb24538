"""Crash safety of payouts, on both databases: a worker killed with SIGKILL at a named point, then
restarted and recovered, never pays a loan twice, never loses a payout, leaves no order unfinished,
and leaves the ledger balanced and the audit chain intact.

For each seed (random per run; ``MIAODAI_CRASH_SEEDS=N`` runs N per database, ``MIAODAI_CRASH_SEED=n``
replays one): the demo borrower signs a few loans whose payout orders are stored but not sent, each to
a sandbox test account the seed picks (paid, duplicate and out-of-order callbacks, SYSTEMERROR answers,
timeouts recorded or lost, no callback, name mismatch, frozen card). ``tests/crash_child.py`` then runs
the service in a child process with one failpoint armed (which one, and on which hit, from the seed):
it sends the orders as the API does after signing and runs worker passes until it dies by SIGKILL or
finishes. Some seeds restart it and kill it again while it recovers. Then this process, a fresh
restart, runs worker passes with the clock moving until no order is created or processing, settles
anything left by reconciliation, and checks against the sandbox channel's own records (an outside
party that survived every crash) and our book. ``make soak`` runs 1,000 seeds per database.
"""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from miaodai.container import build_container
from miaodai.core.audit import seal_pending, verify_chain
from miaodai.core.clock import FixedClock, business_date
from miaodai.core.db import Database
from miaodai.demo import seed_demo
from miaodai.identity.models import Borrower
from miaodai.identity.sessions import AuthContext, find_or_add_device
from miaodai.ledger.book import check_book, trial_balance
from miaodai.ledger.models import JournalEntry
from miaodai.loans import loan_service
from miaodai.loans.accounting import mismatched_loans
from miaodai.loans.models import CreditLine, Loan, LoanInstallment
from miaodai.loans.schedule import RepaymentMethod
from miaodai.loans.states import LoanStatus
from miaodai.payments import methods, recon
from miaodai.payments.channel import ChannelStatus
from miaodai.payments.models import OrderStatus, PaymentOrder
from tests.conftest import T0
from tests.crash_child import PAYOUT_ACCOUNTS_PAID, Plan, crash_settings, plan_for, worker_pass

ROOT = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_SECONDS = 120
PRINCIPAL_FEN = 1_000_00
TERM_MONTHS = 12
# The restarted service's passes: callbacks retried after their lease, then the query schedule
# (orders.CHECK_DELAYS, up to two hours apart). At least MIN_PASSES, so late duplicate and stale
# callbacks arrive too.
RECOVERY_STEPS = tuple(timedelta(seconds=s) for s in (15, 15, 60, 60, 120, 600, 1800, 7200, 7200, 7200))
MIN_PASSES = 5
UNFINISHED = (OrderStatus.CREATED, OrderStatus.PROCESSING)


def _seeds() -> list[int]:
    if os.environ.get("MIAODAI_CRASH_SEED"):
        return [int(os.environ["MIAODAI_CRASH_SEED"])]
    count = int(os.environ.get("MIAODAI_CRASH_SEEDS", "12"))
    return random.SystemRandom().sample(range(1, 10**7), count)


SEEDS = _seeds()


def _replay(seed: int, backend: str) -> str:
    return f"MIAODAI_CRASH_SEED={seed} uv run pytest tests/integration/test_payment_crashes.py -k {backend}"


# -- preparing: loans signed, their payout orders stored and not sent -------------------------------


def _prepare_payouts(container, accounts: tuple[str, ...]) -> list[int]:
    """The demo borrower draws and signs one 1,000-yuan loan per account, each paid out to that account
    (made the default card before signing): the signing stores the payout order as ``created``."""
    seed_demo(container)
    now = container.clock.now()
    with container.db.transaction() as session:
        borrower = session.execute(select(Borrower).order_by(Borrower.id)).scalars().first()
        device = find_or_add_device(session, container.vault, borrower_id=borrower.id, device_key="crash-test",
                                    label="test", now=now)
        session.flush()
        auth = AuthContext(borrower_id=borrower.id, session_id=0, device_id=device.id, step_up_at=now)
        line_id = session.execute(select(CreditLine.id).where(CreditLine.borrower_id == borrower.id)).scalar_one()
        cards = {account: methods.record_demo_card(session, container, borrower.id, account, "+8613800138001",
                                                   now=now, actor="test").id
                 for account in dict.fromkeys(accounts)}
    loan_ids = []
    for n, account in enumerate(accounts):
        methods.set_default(container, auth, cards[account])
        loan, _ = loan_service.request_drawdown(container, auth, loan_service.DrawdownRequest(
            line_id=line_id, principal_fen=PRINCIPAL_FEN, method=RepaymentMethod.EQUAL_INSTALLMENT,
            term_months=TERM_MONTHS, term_days=None, request_key=f"crash-{n}"))
        contract, _ = loan_service.open_contract(container, auth, loan.id)
        loan_service.sign(container, auth, loan.id, read_sha256=contract.sha256)
        loan_ids.append(loan.id)
    return loan_ids


# -- the crashing child ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def child_environment(tmp_path_factory) -> dict[str, str]:
    """The children's environment, with bytecode cached outside the checkout: with PYTHONDONTWRITEBYTECODE
    every child would compile every module it imports again (seconds each, most of a seed's time)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(tmp_path_factory.mktemp("child-pycache"))}


def _run_child(plan: Plan, life: int, database_url: str, workdir: Path, ids: list[int], backend: str,
               env: dict[str, str]) -> str:
    """Run one life of the worker in a child process; 'killed' or 'finished' (anything else fails)."""
    armed = plan.lives[life].armed
    command = [sys.executable, "-m", "tests.crash_child", "--database-url", database_url, "--workdir", str(workdir),
               "--seed", str(plan.seed), "--scenario", plan.scenario, "--life", str(life),
               "--ids", ",".join(map(str, ids)), "--start", T0.isoformat()]
    done = subprocess.run(command, cwd=ROOT, env={**env, "MIAODAI_FAILPOINTS": armed},
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS)
    if done.returncode == -signal.SIGKILL:
        return f"killed at {armed}"
    assert done.returncode == 0, (
        f"seed {plan.seed}: the child (life {life}, {armed}) exited with {done.returncode}, not 0 or SIGKILL\n"
        f"replay: {_replay(plan.seed, backend)}\n--- stderr ---\n{done.stderr[-6000:]}")
    return f"finished ({armed} not reached)"


# -- recovering ------------------------------------------------------------------------------------


def _unfinished(container) -> list[int]:
    with container.db.autocommit() as session:
        return list(session.execute(select(PaymentOrder.id).where(PaymentOrder.status.in_(UNFINISHED))
                                    .order_by(PaymentOrder.id)).scalars())


def _recover(container) -> int:
    """Worker passes with the clock moving until no order is unfinished (at least MIN_PASSES); how many."""
    for passes, step in enumerate(RECOVERY_STEPS, start=1):
        container.clock.advance(step)
        worker_pass(container)
        if passes >= MIN_PASSES and not _unfinished(container):
            return passes
    return len(RECOVERY_STEPS)


def _reconcile(container) -> tuple[str, list[str]]:
    """Reconcile every day of the run against the channel's file: it settles anything recovery left
    unfinished, and by now must queue nothing for staff (our orders and the channel's agree)."""
    left = _unfinished(container)
    results = {day: recon.run(container, container.channel.name, day, actor="test:crash")
               for day in _business_days(container)}
    problems = [f"reconciliation of {day} queued {result.open_exceptions} exception(s): {result.counts}"
                for day, result in results.items() if result.open_exceptions]
    counts = {day.isoformat(): {k: n for k, n in result.counts.items() if n} for day, result in results.items()}
    return f"reconciliation with {len(left)} unfinished before: {counts}", problems


def _business_days(container):
    day, last = business_date(T0), business_date(container.clock.now())
    while day <= last:
        yield day
        day += timedelta(days=1)


# -- the checks ------------------------------------------------------------------------------------


def _channel_orders(container) -> dict[str, dict[str, str]]:
    """The sandbox channel's own records of every order it finished, from its reconciliation files."""
    rows: dict[str, dict[str, str]] = {}
    for day in _business_days(container):
        for row in csv.DictReader(io.StringIO(container.channel.reconciliation_file(day))):
            rows[row["order_no"]] = row
    return rows


def _payout_problems(container, plan: Plan, loan_ids: list[int]) -> list[str]:
    """Everything that must hold after recovery, as a list of what does not (empty: all is well)."""
    problems: list[str] = []
    at_channel = _channel_orders(container)
    with container.db.transaction() as session:
        ours = list(session.execute(select(PaymentOrder).where(PaymentOrder.loan_id.in_(loan_ids))
                                    .order_by(PaymentOrder.id)).scalars())
        loans = {loan.id: loan for loan in session.execute(select(Loan).where(Loan.id.in_(loan_ids))).scalars()}
        paid_entries = Counter(session.execute(select(JournalEntry.loan_id).where(
            JournalEntry.kind == "payout_paid", JournalEntry.loan_id.in_(loan_ids))).scalars())
        installments = Counter(session.execute(select(LoanInstallment.loan_id).where(
            LoanInstallment.loan_id.in_(loan_ids))).scalars())
        book = trial_balance(session)
        problems += [f"book: {finding.message}" for finding in check_book(session)]
        problems += [f"loan {loan_id}'s sub-ledger differs: {diff}" for loan_id, diff in mismatched_loans(session)]
    if not book.balanced:
        problems.append("the trial balance does not balance")
    by_no = {order.order_no: order for order in ours}
    problems += [f"the channel has order {no} ({row['status']}) that we never stored"
                 for no, row in at_channel.items() if no not in by_no]
    for order in ours:
        channel_says = at_channel.get(order.order_no, {}).get("status")
        if order.status in UNFINISHED:
            problems.append(f"order {order.order_no} (loan {order.loan_id}) is still {order.status.value}")
        elif (order.status is OrderStatus.SUCCEEDED) != (channel_says == ChannelStatus.SUCCEEDED.value):
            problems.append(f"order {order.order_no} (loan {order.loan_id}) is {order.status.value} with us "
                            f"but {channel_says or 'unknown'} at the channel")
    for loan_id, account in zip(loan_ids, plan.accounts, strict=True):
        problems += _loan_problems(loans[loan_id], account in PAYOUT_ACCOUNTS_PAID, at_channel,
                                   [o for o in ours if o.loan_id == loan_id], paid_entries[loan_id],
                                   installments[loan_id])
    return problems


def _loan_problems(loan: Loan, payable: bool, at_channel, loan_orders: list[PaymentOrder], paid_entries: int,
                   installments: int) -> list[str]:
    paid = [o for o in loan_orders if at_channel.get(o.order_no, {}).get("status") == ChannelStatus.SUCCEEDED.value]
    problems = []
    if len(paid) > 1:
        problems.append(f"loan {loan.id} was paid {len(paid)} times at the channel (double payout)")
    if payable and not paid:
        problems.append(f"loan {loan.id}'s payout to a card the channel pays never succeeded (lost payout)")
    if not payable and paid:
        problems.append(f"loan {loan.id} was paid to a card the channel refuses")
    if len(loan_orders) != 1 or loan.payout_attempts != 1:
        problems.append(f"loan {loan.id} has {len(loan_orders)} orders and {loan.payout_attempts} attempts, not 1")
    if paid_entries != len(paid[:1]):
        problems.append(f"loan {loan.id} has {paid_entries} payout_paid entries, the channel paid it {len(paid)}x")
    if paid and (loan.status is not LoanStatus.ACTIVE or installments != TERM_MONTHS):
        problems.append(f"loan {loan.id} was paid but is {loan.status.value} with {installments} installments")
    if not paid and loan.status is not LoanStatus.SIGNED:
        problems.append(f"loan {loan.id}'s payout failed but it is {loan.status.value}, not back to signed")
    return problems


def _audit_problems(container) -> list[str]:
    seal_pending(container.db, container.clock)
    report = verify_chain(container.db, container.clock, unsealed_bound=timedelta(seconds=10))
    problems = [f"audit chain broken: {report.first_break}"] if report.first_break is not None else []
    problems += [f"audit entry left unsealed: {finding}" for finding in report.stale_unsealed]
    if report.sealed == 0:
        problems.append("the audit chain is empty")
    return problems


# -- the test --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS, ids=lambda seed: f"seed={seed}")
def test_payouts_survive_sigkill_at_every_named_point(backend, seed, database_url, tmp_path, fast_staff_hasher,
                                                      child_environment):
    plan = plan_for(seed, "payout")
    container = build_container(crash_settings(database_url, tmp_path, settle_seconds=plan.settle_seconds),
                                clock=FixedClock(T0), db=Database(database_url))
    try:
        loan_ids = _prepare_payouts(container, plan.accounts)
        lives = [_run_child(plan, life, database_url, tmp_path, loan_ids, backend, child_environment)
                 for life in range(len(plan.lives))]
        container.clock.set(T0 + plan.seconds)  # where the children's clock stopped (at the latest)
        passes = _recover(container)
        settled, problems = _reconcile(container)
        problems += _payout_problems(container, plan, loan_ids) + _audit_problems(container)
        story = f"{plan.describe()}\nlives: {lives}; recovery: {passes} passes, {settled}"
        print(story)
        assert not problems, f"{story}\nreplay: {_replay(seed, backend)}\n" + "\n".join(problems)
    finally:
        container.db.dispose()


def test_the_plan_is_a_function_of_the_seed():
    """Replaying a seed replays the run: same accounts, channel speed, failpoints, hits and clock."""
    assert plan_for(12345) == plan_for(12345)
    plans = [plan_for(seed) for seed in range(200)]
    assert {life.failpoint for plan in plans for life in plan.lives} == {
        "payments.send.before_mark", "payments.send.before_submit", "payments.send.after_submit",
        "payments.callback.verified", "payments.settle.before_post"}
    assert any(len(plan.lives) == 2 for plan in plans) and any(len(plan.lives) == 1 for plan in plans)
    assert all(sorted(s.kick for s in plan.lives[0].steps if s.kick is not None) == list(range(len(plan.accounts)))
               for plan in plans)  # the API sends every stored order exactly once
