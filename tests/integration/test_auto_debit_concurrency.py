"""Auto-debit workers at the worst moments, on PostgreSQL: the bulk UPDATE that ends the instructions of borrowers
with nothing to debit (``collections._fail_without_method``) held at its commit, every row written and locked,
while a second worker runs, while one worker claims an instruction one by one, and while the end-of-day batch
holds the next day's new instructions uncommitted. Each instruction ends once, counted once, with no order and
no money moved; no worker waits on another's bulk rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from miaodai.core.clock import business_date
from miaodai.loans import eod
from miaodai.loans.models import CollectionInstruction
from miaodai.payments import collections
from miaodai.payments.models import PaymentOrder
from tests import race_support
from tests.integration.test_collections import hopeless_instructions
from tests.loan_support import assert_book_sound
from tests.race_support import WAIT, Worker, lock_waits

hold = race_support.hold  # the fixture, shared

PINNED_FIXTURES = ("backend",)
ENDED = ("failed", "NO_AUTO_DEBIT_METHOD")


@pytest.fixture
def backend() -> str:
    return "postgresql"


def _ends(container, ids: list[int]) -> list[tuple[str, str | None]]:
    with container.db.transaction() as session:
        rows = session.execute(select(CollectionInstruction.id, CollectionInstruction.status,
                                      CollectionInstruction.last_code)
                               .where(CollectionInstruction.id.in_(ids)).order_by(CollectionInstruction.id)).all()
    return [(status, code) for _, status, code in rows]


def _nothing_ordered(container) -> None:
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(PaymentOrder).where(
            PaymentOrder.purpose == collections.AUTO_DEBIT)) == 0
    assert_book_sound(container)


def test_two_workers_end_each_hopeless_instruction_once(client, container, clock, hold):
    due = hopeless_instructions(client, container, clock)
    leader = Worker(hold.armed(lambda: collections.run_auto_debit(container)))
    leader.start()
    assert hold.reached.wait(WAIT), "the first worker's bulk update never reached its commit"
    follower = Worker(lambda: collections.run_auto_debit(container))
    follower.start()
    # The second worker skips the rows the first holds, then meets them one by one under their own lock (given up
    # to WAIT seconds to get there; on a loaded machine it may come after the release, and must still not count).
    lock_waits(container)
    hold.go.set()
    first, second = leader.result(), follower.result()

    assert first == {"debits": 0, "settled_without_debit": 2, "waiting": 0}
    assert second["debits"] == second["settled_without_debit"] == 0  # taken by the first: never again
    assert _ends(container, due) == [ENDED, ENDED]
    _nothing_ordered(container)


@pytest.mark.parametrize("first", ["bulk", "one_by_one"])
def test_the_bulk_update_and_a_claim_of_one_instruction_end_it_once(client, container, clock, hold, first):
    due = hopeless_instructions(client, container, clock)
    runs = {"bulk": lambda: collections.run_auto_debit(container),
            "one_by_one": lambda: collections._start_attempt(container, due[0], clock.now())}  # noqa: SLF001
    second = "one_by_one" if first == "bulk" else "bulk"
    leader = Worker(hold.armed(runs[first]))
    leader.start()
    assert hold.reached.wait(WAIT), f"{first} never reached its commit"
    follower = Worker(runs[second])
    follower.start()
    assert lock_waits(container), f"{second} did not wait for a row lock"
    hold.go.set()
    outcomes = {first: leader.result(), second: follower.result()}

    if first == "bulk":  # the claim waited, then found it ended: not counted again
        assert outcomes == {"bulk": {"debits": 0, "settled_without_debit": 2, "waiting": 0},
                            "one_by_one": ("waiting", None)}
    else:  # the bulk update skipped the claimed row and ended the other; its own pass found the first ended
        assert outcomes == {"one_by_one": ("settled_without_debit", None),
                            "bulk": {"debits": 0, "settled_without_debit": 1, "waiting": 1}}
    assert _ends(container, due) == [ENDED, ENDED]
    _nothing_ordered(container)


def test_a_worker_never_sees_the_batchs_instructions_before_they_are_committed(client, container, clock, hold,
                                                                              monkeypatch):
    """The batch closing a day inserts tomorrow's instructions under its loan locks; a worker running then does
    not wait for them and ends none of them half-made; the next pass ends each once."""
    today = hopeless_instructions(client, container, clock)
    assert collections.run_auto_debit(container)["settled_without_debit"] == 2
    day = business_date(clock.now())
    clock.advance(timedelta(days=1))
    instructions = eod._Batch.instructions  # noqa: SLF001
    monkeypatch.setattr(eod._Batch, "instructions",  # noqa: SLF001
                        lambda batch: hold.armed(lambda: instructions(batch))())
    batch = Worker(lambda: eod.run_eod(container, day))
    batch.start()
    assert hold.reached.wait(WAIT), "the batch never reached the commit of its instructions"
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(CollectionInstruction).where(
            CollectionInstruction.business_date == day + timedelta(days=1))) == 0  # not committed yet
    during = collections.run_auto_debit(container)  # in this thread, while the batch holds its locks
    hold.go.set()
    batch.result()

    assert during == {"debits": 0, "settled_without_debit": 0, "waiting": 0}
    with container.db.transaction() as session:
        tomorrow = session.execute(select(CollectionInstruction.id).where(
            CollectionInstruction.business_date == day + timedelta(days=1))
            .order_by(CollectionInstruction.id)).scalars().all()
    assert len(tomorrow) == 2 and _ends(container, tomorrow) == [("pending", None), ("pending", None)]
    assert collections.run_auto_debit(container) == {"debits": 0, "settled_without_debit": 2, "waiting": 0}
    assert collections.run_auto_debit(container) == {"debits": 0, "settled_without_debit": 0, "waiting": 0}
    assert _ends(container, tomorrow) == [ENDED, ENDED] and _ends(container, today) == [ENDED, ENDED]
    _nothing_ordered(container)
