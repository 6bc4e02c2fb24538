"""The worker that the crash tests kill: ``python -m tests.crash_child --database-url URL --workdir DIR
--seed N --scenario payout --items 1,2,3 --start ISO [--life K]``.

Everything it does is decided by the seed (:func:`plan_for`), so one seed replays the same run: which
sandbox test account each order pays to, how long the sandbox channel takes to finish an order, how
the clock moves, which named failpoint (:mod:`miaodai.core.failpoints`) is armed and on which hit.
The parent arms it through ``MIAODAI_FAILPOINTS`` in this process's environment only; the process
then dies by SIGKILL at that point, or finishes if the point is never reached that often (both are
valid runs).

A run has one or two lives. Life 0 is the service taking the borrowers' requests: it makes the API's
call for each item (send the payout order the signing stored; store and send a repayment's debit), with
worker passes (send what is stored, query what is due, let the sandbox channel deliver its due
callbacks, seal the audit chain) in between and after. A
later life is the worker restarted after the crash, doing worker passes only — and possibly dying
again at its own failpoint. The clock is a FixedClock that starts where the previous life's plan ended
and moves by the plan's steps, so the parent knows where time stands without asking the child.

The scenario table (:data:`SCENARIOS`) says what moves: payouts (the API sends the order the signing
stored) and collections (the API's repay-now call, which stores the debit order and sends it). Each
item of ``--items`` is what the scenario's API call needs, as text.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from miaodai.core.settings import Environment, Settings
from miaodai.sandbox import channel as sandbox

FAILPOINTS = (
    "payments.send.before_mark",  # the order is stored (created), not yet marked as sent
    "payments.send.before_submit",  # marked processing and committed, the channel not yet called
    "payments.send.after_submit",  # the channel has the order, its answer is not stored
    "payments.callback.verified",  # a callback's signature is verified, nothing applied
    "payments.settle.before_post",  # inside the settling transaction, before the ledger posts: rolled back
)

# Sandbox accounts whose payout the channel makes (all but the two that fail it for good), and all of them
# for collections plus the cards with too little money.
PAYOUT_ACCOUNTS_PAID = (
    sandbox.ACCOUNT_OK, sandbox.ACCOUNT_DUPLICATE_CALLBACK, sandbox.ACCOUNT_OUT_OF_ORDER_CALLBACKS,
    sandbox.ACCOUNT_SYSTEM_ERROR_FAILED, sandbox.ACCOUNT_SYSTEM_ERROR_UNKNOWN, sandbox.ACCOUNT_TIMEOUT_RECORDED,
    sandbox.ACCOUNT_TIMEOUT_LOST, sandbox.ACCOUNT_NO_CALLBACK,
)
PAYOUT_ACCOUNTS_REFUSED = (sandbox.ACCOUNT_NAME_MISMATCH, sandbox.ACCOUNT_CARD_FROZEN)
COLLECTION_ACCOUNTS_REFUSED = PAYOUT_ACCOUNTS_REFUSED + (sandbox.ACCOUNT_INSUFFICIENT_FUNDS,)
COLLECTION_ACCOUNTS = PAYOUT_ACCOUNTS_PAID + COLLECTION_ACCOUNTS_REFUSED + (
    sandbox.ACCOUNT_LIMITED_BALANCE, sandbox.ACCOUNT_LIMITED_BALANCE)  # pays what it holds, then refuses


@dataclass(frozen=True)
class Scenario:
    """A kind of order the crash test drives through the channel."""

    name: str
    accounts: tuple[str, ...]  # the sandbox test accounts a seed picks from, one per order
    kick: Callable[[Any, str], object]  # the API's call for one item (as given in --items)


def _send_loan_payout(container: Any, item: str) -> object:
    """After the signing committed (the order stored): send it. Item: the loan's id."""
    from miaodai.payments import orders

    return orders.send_loan_payout(container, int(item))


def _repay_now(container: Any, item: str) -> object:
    """POST /v1/loans/{id}/repayments: store the debit order and send it. Item: loan:method:amount_fen."""
    from miaodai.loans.models import Loan
    from miaodai.loans.repayment_service import Purpose
    from miaodai.payments import collections

    loan_id, method_id, amount_fen = map(int, item.split(":"))
    with container.db.autocommit() as session:
        borrower_id = session.get(Loan, loan_id).borrower_id
    return collections.request_repayment(container, borrower_id, loan_id, key=f"crash-repay-{loan_id}",
                                         purpose=Purpose.DUE, amount_fen=amount_fen, mode=None, method_id=method_id)


SCENARIOS = {
    "payout": Scenario("payout", PAYOUT_ACCOUNTS_PAID + PAYOUT_ACCOUNTS_REFUSED, _send_loan_payout),
    "collection": Scenario("collection", COLLECTION_ACCOUNTS, _repay_now),
}


# -- the plan: a pure function of the seed ---------------------------------------------------------


@dataclass(frozen=True)
class Step:
    advance_seconds: int  # the clock moves this much first
    kick: int | None = None  # index of the order the API sends now; None: a worker pass


@dataclass(frozen=True)
class Life:
    failpoint: str
    hit: int  # die on the hit-th time the point is reached
    steps: tuple[Step, ...]

    @property
    def seconds(self) -> int:
        return sum(step.advance_seconds for step in self.steps)

    @property
    def armed(self) -> str:
        """The value of MIAODAI_FAILPOINTS for this life."""
        return f"{self.failpoint}={self.hit}"


@dataclass(frozen=True)
class Plan:
    seed: int
    scenario: str
    accounts: tuple[str, ...]  # one per order, in the order the orders are stored
    settle_seconds: int  # how long the sandbox channel takes to finish an order it accepted
    lives: tuple[Life, ...]

    def start_of(self, life: int) -> timedelta:
        """How far the clock has moved, from the run's start, when ``life`` begins."""
        return timedelta(seconds=sum(lived.seconds for lived in self.lives[:life]))

    @property
    def seconds(self) -> timedelta:
        return self.start_of(len(self.lives))

    def describe(self) -> str:
        names = {value: name for name, value in vars(sandbox).items() if name.startswith("ACCOUNT_")}
        lives = "; ".join(f"{life.armed} over {len(life.steps)} steps" for life in self.lives)
        return (f"seed {self.seed} ({self.scenario}): accounts {[names[a] for a in self.accounts]}, "
                f"channel settles in {self.settle_seconds}s, lives: {lives}")


def plan_for(seed: int, scenario: str = "payout") -> Plan:
    rng = random.Random(seed)
    accounts = tuple(rng.choice(SCENARIOS[scenario].accounts) for _ in range(rng.randint(3, 6)))
    settle_seconds = rng.choice((0, 2, 2, 30))
    lives = [_first_life(rng, len(accounts))]
    if rng.random() < 0.3:  # the restarted worker dies too, while it recovers
        lives.append(_recovering_life(rng, len(accounts)))
    return Plan(seed, scenario, accounts, settle_seconds, tuple(lives))


def _armed(rng: random.Random, orders: int) -> tuple[str, int]:
    # Past the number of orders a point may never be reached: the run then ends normally.
    return rng.choice(FAILPOINTS), rng.randint(1, orders + 2)


def _first_life(rng: random.Random, orders: int) -> Life:
    """The API sends each order after its commit (in a shuffled order), with worker passes between and after."""
    steps: list[Step] = []
    for index in rng.sample(range(orders), orders):
        steps.append(Step(rng.choice((0, 0, 1, 2, 5, 15)), kick=index))
        if rng.random() < 0.4:
            steps.append(Step(rng.choice((0, 1, 2, 10, 40))))
    steps += [Step(rng.choice((1, 5, 15, 30, 120, 600))) for _ in range(rng.randint(2, 6))]
    return Life(*_armed(rng, orders), tuple(steps))


def _recovering_life(rng: random.Random, orders: int) -> Life:
    return Life(*_armed(rng, orders), tuple(Step(rng.choice((5, 15, 60, 600))) for _ in range(rng.randint(2, 5))))


# -- running it ------------------------------------------------------------------------------------


def crash_settings(database_url: str, workdir: Path, *, settle_seconds: int) -> Settings:
    """The settings of the parent and of every child of one run: same database, keys and channel store.
    No latency and no real waiting for sandbox timeouts (a timeout is raised at once)."""
    return Settings(
        env=Environment.TEST, database_url=database_url, keyring_file=workdir / "keyring.json",
        contract_signing_key_file=workdir / "contract-signing-key.pem",
        sandbox_channel_store=workdir / "sandbox-channel.db", sandbox=True, audit_sealer_enabled=False,
        payments_worker_enabled=False, log_level="WARNING", log_json=True, sandbox_latency_seconds=0,
        provider_timeout_seconds=0, sandbox_channel_settle_seconds=settle_seconds,
    )


def callback_poster(container: Any) -> Callable[[str, bytes, Mapping[str, str]], tuple[int, bytes]]:
    """How the sandbox channel's callbacks reach us: straight into the callback handler the endpoint calls."""
    from miaodai.payments import orders

    def post(_url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        return orders.receive_callback(container, container.channel.name, body, dict(headers))

    return post


def worker_pass(container: Any) -> None:
    """What the payments worker does every second (``payments.worker.one_pass``), with the callbacks
    posted in-process instead of over HTTP, and the audit sealer's pass."""
    from miaodai.core.audit import seal_pending
    from miaodai.payments import orders

    orders.recover(container)
    container.channel.deliver_due(container.clock.now(), callback_poster(container))
    seal_pending(container.db, container.clock)


def live(container: Any, plan: Plan, life: int, items: list[str]) -> None:
    kick = SCENARIOS[plan.scenario].kick
    for step in plan.lives[life].steps:
        container.clock.advance(timedelta(seconds=step.advance_seconds))
        if step.kick is None:
            worker_pass(container)
        else:
            kick(container, items[step.kick])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--workdir", required=True, type=Path, help="keyring, signing key, sandbox channel store")
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--scenario", default="payout", choices=sorted(SCENARIOS))
    parser.add_argument("--life", default=0, type=int)
    parser.add_argument("--items", required=True, help="what the scenario's API call needs per order, comma-separated")
    parser.add_argument("--start", required=True, type=datetime.fromisoformat, help="the run's start (ISO 8601)")
    args = parser.parse_args(argv)

    from miaodai.container import build_container
    from miaodai.core.clock import FixedClock
    from miaodai.core.logging import configure_logging

    plan = plan_for(args.seed, args.scenario)
    settings = crash_settings(args.database_url, args.workdir, settle_seconds=plan.settle_seconds)
    configure_logging(settings.log_level, json=settings.log_json)
    clock = FixedClock(args.start + plan.start_of(args.life))
    container = build_container(settings, clock=clock)
    live(container, plan, args.life, args.items.split(","))
    container.db.dispose()


if __name__ == "__main__":
    main()
