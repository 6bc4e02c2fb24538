"""Crash safety of money movement, on both databases: a worker killed with SIGKILL at a named point,
then restarted and recovered, never pays or debits twice, never loses a payment, leaves no order
unfinished, and leaves the ledger balanced and the audit chain intact.

For each scenario and seed (random per run; ``MIAODAI_CRASH_SEEDS=N`` runs N per database and scenario,
``MIAODAI_CRASH_SEED=n`` replays one), with 3–6 orders each to a sandbox test account the seed picks
(paid, duplicate and out-of-order callbacks, SYSTEMERROR answers, timeouts recorded or lost, no
callback, name mismatch, frozen card, and for debits too little or no money on the card):

* **payout**: the demo borrower signs loans whose payout orders are stored and not sent;
* **collection**: the demo borrower's loans are active, and each is to be repaid in part from a card.

``tests/crash_child.py`` then runs the service in a child process with one failpoint armed (which one,
and on which hit, from the seed): it makes the API's call for each order (send the stored payout; store
and send the debit) and runs worker passes until it dies by SIGKILL or finishes. Some seeds restart it
and kill it again while it recovers. Then this process, a fresh restart, repeats the borrowers' repay
requests (same key, as an app with no answer does), runs worker passes with the clock moving until no
order is created or processing, reconciles every day, and checks against the sandbox channel's own
records (an outside party that survived every crash) and our book. ``make soak`` runs 1,000 seeds per
database and scenario.
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from miaodai.loans.models import CreditLine, Loan, LoanInstallment, Repayment
from miaodai.loans.schedule import RepaymentMethod
from miaodai.loans.states import LoanStatus
from miaodai.payments import methods, orders, recon
from miaodai.payments.channel import ChannelStatus, OrderKind
from miaodai.payments.models import OrderStatus, PaymentOrder
from miaodai.sandbox.channel import ACCOUNT_LIMITED_BALANCE, LIMITED_BALANCE_FEN
from tests.conftest import T0
from tests.crash_child import (
    COLLECTION_ACCOUNTS_REFUSED,
    FAILPOINTS,
    PAYOUT_ACCOUNTS_PAID,
    SCENARIOS,
    Plan,
    crash_settings,
    plan_for,
    worker_pass,
)
from tests.loan_support import PHONE, signing_code

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
SUCCEEDED = ChannelStatus.SUCCEEDED.value
REPAYMENT_FEN = (50_00, 80_00, 300_00)  # two 80s empty the limited card (100 yuan); 300 is more than it holds


def _seeds() -> list[int]:
    if os.environ.get("MIAODAI_CRASH_SEED"):
        return [int(os.environ["MIAODAI_CRASH_SEED"])]
    count = int(os.environ.get("MIAODAI_CRASH_SEEDS", "12"))
    # Random per run; under pytest-xdist every worker must collect the same tests, so the workers draw
    # from the run's shared id (a fresh random value per run) rather than each from its own entropy.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    draw = random.Random(run) if run else random.SystemRandom()
    return draw.sample(range(1, 10**7), count)


SEEDS = _seeds()


def _replay(plan: Plan, backend: str) -> str:
    return (f"MIAODAI_CRASH_SEED={plan.seed} uv run pytest tests/integration/test_payment_crashes.py "
            f"-k '{backend} and {plan.scenario}'")


# -- preparing: the orders' business ready, nothing sent ---------------------------------------------


def _demo_borrower(container) -> tuple[AuthContext, int]:
    """The demo borrower (a 20,000-yuan line), signed in on a device: their auth and line."""
    seed_demo(container)
    now = container.clock.now()
    with container.db.transaction() as session:
        borrower = session.execute(select(Borrower).order_by(Borrower.id)).scalars().first()
        device = find_or_add_device(session, container.vault, borrower_id=borrower.id, device_key="crash-test",
                                    label="test", now=now)
        session.flush()
        auth = AuthContext(borrower_id=borrower.id, session_id=0, device_id=device.id, step_up_at=now)
        line_id = session.execute(select(CreditLine.id).where(CreditLine.borrower_id == borrower.id)).scalar_one()
    return auth, line_id


def _cards(container, auth: AuthContext, accounts: tuple[str, ...]) -> dict[str, int]:
    """Each sandbox test account bound to the borrower once: {account: payment method id}."""
    with container.db.transaction() as session:
        return {account: methods.record_demo_card(session, container, auth.borrower_id, account, PHONE,
                                                  now=container.clock.now(), actor="test").id
                for account in dict.fromkeys(accounts)}


def _signed_loan(container, auth: AuthContext, line_id: int, card_id: int, n: int) -> int:
    """A 1,000-yuan loan drawn and signed with ``card_id`` as the default card: the signing stores its
    payout order (to that card) as ``created``, as the API's signing does before it sends it."""
    methods.set_default(container, auth, card_id)
    loan, _ = loan_service.request_drawdown(container, auth, loan_service.DrawdownRequest(
        line_id=line_id, principal_fen=PRINCIPAL_FEN, method=RepaymentMethod.EQUAL_INSTALLMENT,
        term_months=TERM_MONTHS, term_days=None, request_key=f"crash-{n}"))
    contract, _ = loan_service.open_contract(container, auth, loan.id)
    code = signing_code(container, auth.borrower_id, loan.id, contract.sha256)
    loan_service.sign(container, auth, loan.id, read_sha256=contract.sha256, code=code)
    return loan.id


def _prepare_payouts(container, plan: Plan) -> list[str]:
    """One signed loan per account, paid out to it; the items are the loans' ids."""
    auth, line_id = _demo_borrower(container)
    cards = _cards(container, auth, plan.accounts)
    return [str(_signed_loan(container, auth, line_id, cards[account], n)) for n, account in enumerate(plan.accounts)]


def _prepare_collections(container, plan: Plan) -> list[str]:
    """One active loan per account (paid out to the demo card), and a repayment of a seed-chosen amount
    (some more than the limited card holds) to collect from that account: loan:method:amount_fen."""
    auth, line_id = _demo_borrower(container)
    with container.db.autocommit() as session:
        demo_card = orders.payout_method(session, auth.borrower_id).id
    loan_ids = [_signed_loan(container, auth, line_id, demo_card, n) for n in range(len(plan.accounts))]
    for loan_id in loan_ids:
        orders.send_loan_payout(container, loan_id)
    container.clock.advance(timedelta(seconds=plan.settle_seconds + 1))
    for order_id in _unfinished(container):
        orders.check(container, order_id)
    assert not _unfinished(container), "the demo card's payouts did not all succeed"
    cards = _cards(container, auth, plan.accounts)
    amounts = random.Random(f"{plan.seed}:amounts")
    return [f"{loan_id}:{cards[account]}:{amounts.choice(REPAYMENT_FEN)}"
            for loan_id, account in zip(loan_ids, plan.accounts, strict=True)]


# -- the crashing child ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def child_environment(tmp_path_factory) -> dict[str, str]:
    """The children's environment, with bytecode cached outside the checkout: with PYTHONDONTWRITEBYTECODE
    every child would compile every module it imports again (seconds each, most of a seed's time)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(tmp_path_factory.mktemp("child-pycache"))}


def _run_child(plan: Plan, life: int, database_url: str, workdir: Path, items: list[str], start: datetime,
               env: dict[str, str], backend: str) -> str:
    """Run one life of the worker in a child process; 'killed' or 'finished' (anything else fails)."""
    armed = plan.lives[life].armed
    command = [sys.executable, "-m", "tests.crash_child", "--database-url", database_url, "--workdir", str(workdir),
               "--seed", str(plan.seed), "--scenario", plan.scenario, "--life", str(life),
               "--items", ",".join(items), "--start", start.isoformat()]
    done = subprocess.run(command, cwd=ROOT, env={**env, "MIAODAI_FAILPOINTS": armed},
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS)
    if done.returncode == -signal.SIGKILL:
        return f"killed at {armed}"
    assert done.returncode == 0, (
        f"seed {plan.seed}: the child (life {life}, {armed}) exited with {done.returncode}, not 0 or SIGKILL\n"
        f"replay: {_replay(plan, backend)}\n--- stderr ---\n{done.stderr[-6000:]}")
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


# -- the checks: each returns what does not hold (empty: all is well) --------------------------------


def _channel_orders(container) -> dict[str, str]:
    """The sandbox channel's own record of every order it finished, from its reconciliation files:
    {order_no: status}."""
    rows: dict[str, str] = {}
    for day in _business_days(container):
        for row in csv.DictReader(io.StringIO(container.channel.reconciliation_file(day))):
            rows[row["order_no"]] = row["status"]
    return rows


def _order_problems(ours: list[PaymentOrder], at_channel: dict[str, str]) -> list[str]:
    """Every order final, and succeeded with us exactly when it succeeded at the channel; nothing at the
    channel that we never stored."""
    known = {order.order_no for order in ours}
    problems = [f"the channel has order {no} ({status}) that we never stored"
                for no, status in at_channel.items() if no not in known]
    for order in ours:
        if order.status in UNFINISHED:
            problems.append(f"order {order.order_no} (loan {order.loan_id}) is still {order.status.value}")
        elif (order.status is OrderStatus.SUCCEEDED) != (at_channel.get(order.order_no) == SUCCEEDED):
            problems.append(f"order {order.order_no} (loan {order.loan_id}) is {order.status.value} with us "
                            f"but {at_channel.get(order.order_no, 'unknown')} at the channel")
    return problems


def _book_problems(session) -> list[str]:
    problems = [] if trial_balance(session).balanced else ["the trial balance does not balance"]
    problems += [f"book: {finding.message}" for finding in check_book(session)]
    return problems + [f"loan {loan_id}'s sub-ledger differs: {diff}" for loan_id, diff in mismatched_loans(session)]


def _audit_problems(container) -> list[str]:
    seal_pending(container.db, container.clock)
    report = verify_chain(container.db, container.clock, unsealed_bound=timedelta(seconds=10))
    problems = [f"audit chain broken: {report.first_break}"] if report.first_break is not None else []
    problems += [f"audit entry left unsealed: {finding}" for finding in report.stale_unsealed]
    if report.sealed == 0:
        problems.append("the audit chain is empty")
    return problems


def _payout_problems(session, container, plan: Plan, items: list[str], ours, at_channel) -> list[str]:
    """Per loan: paid at most once at the channel, exactly once if its card is paid, one payout entry
    per payment, and the loan active with its schedule if paid, back to signed if not."""
    loan_ids = [int(item) for item in items]
    loans = {loan.id: loan for loan in session.execute(select(Loan).where(Loan.id.in_(loan_ids))).scalars()}
    paid_entries = Counter(session.execute(select(JournalEntry.loan_id).where(
        JournalEntry.kind == "payout_paid", JournalEntry.loan_id.in_(loan_ids))).scalars())
    installments = Counter(session.execute(select(LoanInstallment.loan_id).where(
        LoanInstallment.loan_id.in_(loan_ids))).scalars())
    problems = []
    for loan_id, account in zip(loan_ids, plan.accounts, strict=True):
        loan, payable = loans[loan_id], account in PAYOUT_ACCOUNTS_PAID
        loan_orders = [o for o in ours if o.loan_id == loan_id]
        paid = [o for o in loan_orders if at_channel.get(o.order_no) == SUCCEEDED]
        if len(paid) > 1:
            problems.append(f"loan {loan_id} was paid {len(paid)} times at the channel (double payout)")
        if payable and not paid:
            problems.append(f"loan {loan_id}'s payout to a card the channel pays never succeeded (lost payout)")
        if not payable and paid:
            problems.append(f"loan {loan_id} was paid to a card the channel refuses")
        if len(loan_orders) != 1 or loan.payout_attempts != 1:
            problems.append(f"loan {loan_id} has {len(loan_orders)} orders and {loan.payout_attempts} attempts")
        if paid_entries[loan_id] != len(paid[:1]):
            problems.append(f"loan {loan_id} has {paid_entries[loan_id]} payout_paid entries, paid {len(paid)}x")
        if paid and (loan.status is not LoanStatus.ACTIVE or installments[loan_id] != TERM_MONTHS):
            problems.append(f"loan {loan_id} was paid but is {loan.status.value} with {installments[loan_id]} "
                            "installments")
        if not paid and loan.status is not LoanStatus.SIGNED:
            problems.append(f"loan {loan_id}'s payout failed but it is {loan.status.value}, not back to signed")
    return problems


def _collection_problems(session, container, plan: Plan, items: list[str], ours, at_channel) -> list[str]:
    """Per repayment asked for: one debit order for the amount asked, taken at most once, taken if the
    card can pay it and never if it cannot, posted as exactly one repayment of that amount when taken
    and none when not; and the limited card's balance at the channel down by exactly what was taken."""
    problems, taken_from_limited = [], 0
    for item, account in zip(items, plan.accounts, strict=True):
        loan_id, _, amount = map(int, item.split(":"))
        debits = [o for o in ours if o.loan_id == loan_id and o.kind == OrderKind.COLLECTION.value]
        if len(debits) != 1 or debits[0].amount_fen != amount:
            problems.append(f"loan {loan_id}: {[(o.order_no, o.amount_fen) for o in debits]} for one repayment "
                            f"of {amount} fen")
            continue
        [debit] = debits
        taken = at_channel.get(debit.order_no) == SUCCEEDED
        if taken and account in COLLECTION_ACCOUNTS_REFUSED:
            problems.append(f"loan {loan_id}: money taken from a card the channel refuses ({debit.order_no})")
        if not taken and account in PAYOUT_ACCOUNTS_PAID:
            problems.append(f"loan {loan_id}: debit {debit.order_no} from a card that pays was never taken")
        if account == ACCOUNT_LIMITED_BALANCE and taken:
            taken_from_limited += amount
        posted = list(session.execute(select(Repayment.amount_fen).where(
            Repayment.idempotency_key == f"order:{debit.order_no}")).scalars())
        if posted != ([amount] if taken else []):
            problems.append(f"loan {loan_id}: debit {debit.order_no} {'taken' if taken else 'not taken'} "
                            f"at the channel, posted as repayments {posted}")
    if ACCOUNT_LIMITED_BALANCE in plan.accounts:
        left = container.channel.card_balance_fen(ACCOUNT_LIMITED_BALANCE)
        if left != LIMITED_BALANCE_FEN - taken_from_limited:
            problems.append(f"the limited card holds {left} fen at the channel, expected "
                            f"{LIMITED_BALANCE_FEN} - {taken_from_limited}")
    return problems


# -- the scenarios and the test ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """How the test prepares a scenario's orders and what it checks after recovery, beside what holds
    for every scenario (orders final and agreeing with the channel, book, audit chain). ``retry``: the
    client repeats its request on restart (same Idempotency-Key), as an app with no answer does."""

    prepare: Callable[..., list[str]]
    problems: Callable[..., list[str]]
    retry: bool


CASES = {
    "payout": Case(_prepare_payouts, _payout_problems, retry=False),
    "collection": Case(_prepare_collections, _collection_problems, retry=True),
}


@pytest.mark.parametrize("seed", SEEDS, ids=lambda seed: f"seed={seed}")
@pytest.mark.parametrize("scenario", sorted(CASES, reverse=True))
def test_orders_survive_sigkill_at_every_named_point(backend, scenario, seed, database_url, tmp_path,
                                                     fast_staff_hasher, child_environment):
    plan, case = plan_for(seed, scenario), CASES[scenario]
    container = build_container(crash_settings(database_url, tmp_path, settle_seconds=plan.settle_seconds),
                                clock=FixedClock(T0), db=Database(database_url))
    try:
        items = case.prepare(container, plan)
        start = container.clock.now()
        lives = [_run_child(plan, life, database_url, tmp_path, items, start, child_environment, backend)
                 for life in range(len(plan.lives))]
        container.clock.set(start + plan.seconds)  # where the children's clock stopped (at the latest)
        if case.retry:
            for item in items:
                SCENARIOS[scenario].kick(container, item)
        passes = _recover(container)
        settled, problems = _reconcile(container)
        at_channel = _channel_orders(container)
        with container.db.transaction() as session:
            ours = list(session.execute(select(PaymentOrder).order_by(PaymentOrder.id)).scalars())
            problems += _order_problems(ours, at_channel) + _book_problems(session)
            problems += case.problems(session, container, plan, items, ours, at_channel)
        problems += _audit_problems(container)
        story = f"{plan.describe()}\nlives: {lives}; recovery: {passes} passes, {settled}"
        print(story)
        assert not problems, f"{story}\nreplay: {_replay(plan, backend)}\n" + "\n".join(problems)
    finally:
        container.db.dispose()


@pytest.mark.parametrize("scenario", sorted(CASES))
def test_the_plan_is_a_function_of_the_seed(scenario):
    """Replaying a seed replays the run: same accounts, channel speed, failpoints, hits and clock."""
    assert plan_for(12345, scenario) == plan_for(12345, scenario)
    plans = [plan_for(seed, scenario) for seed in range(200)]
    assert {life.failpoint for plan in plans for life in plan.lives} == set(FAILPOINTS)
    assert any(len(plan.lives) == 2 for plan in plans) and any(len(plan.lives) == 1 for plan in plans)
    assert all(sorted(s.kick for s in plan.lives[0].steps if s.kick is not None) == list(range(len(plan.accounts)))
               for plan in plans)  # the API call is made once per item
