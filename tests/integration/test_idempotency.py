"""Idempotency-Key on money-moving POSTs: a borrower's app retries a payout order (a timeout, a double tap,
fifty at once) and the money goes out once; the retry gets the first answer byte for byte.

A test endpoint stands in for a payout: its teller counts the payouts it makes, can be held inside one
(a slow channel) and can refuse one (a DomainError) or crash. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Header, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from miaodai.app import create_app
from miaodai.core.errors import DomainError
from miaodai.core.idempotency import (
    Idempotency,
    IdempotencyDep,
    purge_expired,
    store_of,
)
from miaodai.core.idempotency_models import IdempotencyRecord
from miaodai.core.settings import Settings
from miaodai.loans.errors import LoanErrors
from tests.helpers import assert_problem

PAYOUTS = "/test/payouts"
COLLECTIONS = "/test/collections"
HOLD_GUARD_SECONDS = 30  # only so that a broken test fails instead of hanging; nothing is timed
CALLERS = 50
REPLAYED = "idempotent-replayed"


class PayoutOrder(BaseModel):
    amount_fen: int = Field(ge=0)
    memo: str = "首期放款"


class PayoutView(BaseModel):
    payout_no: int
    amount_fen: int
    memo: str
    ordered_at: datetime


class Teller:
    """Makes payouts and counts them; can hold the first inside the channel, or refuse/crash the next."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.payouts = 0
        self.hold_first = False
        self.inside = threading.Event()
        self.let_go = threading.Event()
        self.fail_next: Exception | None = None
        self.background: list[threading.Thread] = []  # requests sent from other threads
        self._lock = threading.Lock()

    def pay(self, order: PayoutOrder) -> PayoutView:
        with self._lock:
            self.payouts += 1
            number = self.payouts
            failure, self.fail_next = self.fail_next, None
        if failure is not None:
            raise failure
        if self.hold_first and number == 1:
            self.inside.set()
            if not self.let_go.wait(HOLD_GUARD_SECONDS):
                raise RuntimeError("the test never let the held payout go")
        return PayoutView(payout_no=number, amount_fen=order.amount_fen, memo=order.memo,
                          ordered_at=self.clock.now())


def build_app(container: Any, teller: Teller) -> FastAPI:
    app = create_app(container=container)

    @app.post(PAYOUTS)
    def order_payout(order: PayoutOrder, idem: IdempotencyDep, x_borrower: Annotated[int, Header()]) -> Response:
        return idem.run(f"borrower:{x_borrower}", status_code=201, handler=lambda: teller.pay(order))

    @app.post(COLLECTIONS)
    def order_collection(order: PayoutOrder, idem: IdempotencyDep, x_borrower: Annotated[int, Header()]) -> Response:
        return idem.run(f"borrower:{x_borrower}", status_code=201, handler=lambda: teller.pay(order))

    return app


@pytest.fixture
def teller(clock) -> Teller:
    return Teller(clock)


@pytest.fixture
def api(container, teller) -> Iterator[TestClient]:
    with TestClient(build_app(container, teller), raise_server_exceptions=False) as test_client:
        try:
            yield test_client
        finally:  # a test that failed while holding a payout must not leave it waiting, nor the client shut under it
            teller.let_go.set()
            for thread in teller.background:
                thread.join(HOLD_GUARD_SECONDS)


def pay(api: TestClient, key: str | None, *, borrower: int = 1, amount_fen: int = 500_000,
        path: str = PAYOUTS) -> Any:
    headers = {"X-Borrower": str(borrower)}
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.post(path, json={"amount_fen": amount_fen}, headers=headers)


def stored_keys(container) -> list[IdempotencyRecord]:
    with container.db.transaction() as session:
        return list(session.scalars(select(IdempotencyRecord).order_by(IdempotencyRecord.id)))


def hold_first_payout(api: TestClient, teller: Teller, key: str) -> tuple[threading.Thread, list[Any]]:
    """Send a payout from another thread and wait until it is inside the teller, held there."""
    teller.hold_first = True
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(pay(api, key)))
    teller.background.append(thread)
    thread.start()
    if not teller.inside.wait(HOLD_GUARD_SECONDS):
        pytest.fail(f"the first payout never reached the teller: {result}")
    return thread, result


def finish(thread: threading.Thread, result: list[Any], teller: Teller) -> Any:
    teller.let_go.set()
    thread.join(HOLD_GUARD_SECONDS)
    assert not thread.is_alive() and len(result) == 1
    return result[0]


# --- the header ---------------------------------------------------------------------------------------


def test_a_payout_without_a_key_is_refused_before_the_teller_is_called(api, teller):
    assert_problem(pay(api, None), 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert_problem(pay(api, "   "), 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert teller.payouts == 0


def test_a_malformed_key_is_refused_and_a_128_character_one_is_accepted(api, teller, container):
    for bad in ("two words", "k" * 129, "order/1", "订单1"):
        response = api.post(PAYOUTS, json={"amount_fen": 1},
                            headers=[("X-Borrower", "1"), ("Idempotency-Key", bad.encode())])
        assert_problem(response, 400, "IDEMPOTENCY_KEY_INVALID")
    two_keys = api.post(PAYOUTS, json={"amount_fen": 1},
                        headers=[("X-Borrower", "1"), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")])
    assert_problem(two_keys, 400, "IDEMPOTENCY_KEY_INVALID")
    assert teller.payouts == 0 and stored_keys(container) == []

    longest = "Az09-_:." * 16
    assert pay(api, longest).status_code == 201
    assert [record.key for record in stored_keys(container)] == [longest]


def test_keys_are_kept_at_least_a_day_by_configuration():
    with pytest.raises(ValidationError, match="at least 24"):
        Settings(idempotency_ttl_hours=23)
    assert Settings(idempotency_ttl_hours=48).idempotency_ttl_hours == 48


# --- replay and reuse ---------------------------------------------------------------------------------


def test_a_retried_payout_gets_the_first_answer_byte_for_byte_and_pays_once(api, teller, clock, container):
    first = pay(api, "payout-2026-11-22-a")
    assert first.status_code == 201, first.text
    assert first.json()["memo"] == "首期放款" and first.json()["payout_no"] == 1
    assert REPLAYED not in first.headers

    clock.advance(timedelta(minutes=5))  # a fresh run would say another time and payout number
    retry = pay(api, "payout-2026-11-22-a")
    assert retry.status_code == 201
    assert retry.content == first.content
    assert retry.headers[REPLAYED] == "true"
    assert retry.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert teller.payouts == 1

    [record] = stored_keys(container)
    assert (record.scope, record.method, record.path) == ("borrower:1", "POST", PAYOUTS)
    assert record.status_code == 201 and record.response_body.encode() == first.content


def test_the_same_key_for_a_different_payout_is_refused_and_the_first_still_replays(api, teller):
    first = pay(api, "k-1", amount_fen=500_000)
    assert_problem(pay(api, "k-1", amount_fen=900_000), 422, "IDEMPOTENCY_KEY_REUSED")
    # The path is part of the request: the same body sent to collections is another request.
    assert_problem(pay(api, "k-1", amount_fen=500_000, path=COLLECTIONS), 422, "IDEMPOTENCY_KEY_REUSED")
    assert pay(api, "k-1", amount_fen=500_000).content == first.content
    assert teller.payouts == 1


def test_keys_belong_to_their_borrower(api, teller):
    mine = pay(api, "order-1", borrower=1, amount_fen=100_000)
    theirs = pay(api, "order-1", borrower=2, amount_fen=300_000)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert REPLAYED not in theirs.headers
    assert (mine.json()["amount_fen"], theirs.json()["amount_fen"]) == (100_000, 300_000)
    assert teller.payouts == 2


# --- in flight ------------------------------------------------------------------------------------------


def test_a_retry_while_the_first_is_still_paying_out_is_told_to_come_back(api, teller, clock):
    thread, result = hold_first_payout(api, teller, "slow-1")
    clock.advance(timedelta(seconds=15))

    busy = pay(api, "slow-1")
    assert assert_problem(busy, 409, "IDEMPOTENCY_REQUEST_IN_FLIGHT")["params"]["retry_after_seconds"] == 45
    assert busy.headers["retry-after"] == "45"
    assert_problem(pay(api, "slow-1", amount_fen=1), 422, "IDEMPOTENCY_KEY_REUSED")

    first = finish(thread, result, teller)
    assert first.status_code == 201
    assert pay(api, "slow-1").content == first.content
    assert teller.payouts == 1


def test_a_key_whose_request_died_is_taken_over_once_its_lease_has_run_out(api, teller, clock, container):
    thread, result = hold_first_payout(api, teller, "crashed-1")  # stands for a process that died mid-payout
    clock.advance(timedelta(seconds=59))
    assert pay(api, "crashed-1").headers["retry-after"] == "1"

    clock.advance(timedelta(seconds=1))
    taken_over = pay(api, "crashed-1")
    assert taken_over.status_code == 201 and taken_over.json()["payout_no"] == 2
    assert REPLAYED not in taken_over.headers

    # The first request was only slow after all: it answers, but its lease is gone and it stores nothing.
    late = finish(thread, result, teller)
    assert late.status_code == 201 and late.json()["payout_no"] == 1
    replay = pay(api, "crashed-1")
    assert replay.content == taken_over.content and replay.headers[REPLAYED] == "true"
    [record] = stored_keys(container)
    assert record.response_body.encode() == taken_over.content
    assert teller.payouts == 2


# --- failures keep nothing ------------------------------------------------------------------------------


def test_a_refused_payout_keeps_no_key_and_the_retry_runs_again(api, teller, container):
    teller.fail_next = DomainError(LoanErrors.LINE_INSUFFICIENT,
                                   params={"available_yuan": "100.00", "amount_yuan": "5000.00"})
    assert_problem(pay(api, "refused-1"), 409, "LOAN_LINE_INSUFFICIENT")
    assert stored_keys(container) == []

    retry = pay(api, "refused-1")
    assert retry.status_code == 201 and REPLAYED not in retry.headers
    assert teller.payouts == 2


def test_a_crash_inside_the_payout_keeps_no_key_and_the_retry_runs_again(api, teller, container):
    teller.fail_next = RuntimeError("channel connection reset")
    assert_problem(pay(api, "crash-1"), 500, "INTERNAL_ERROR")
    assert stored_keys(container) == []
    assert pay(api, "crash-1").status_code == 201
    assert teller.payouts == 2


# --- expiry ---------------------------------------------------------------------------------------------


def test_a_key_is_kept_a_day_then_purged_and_can_be_used_afresh(api, teller, clock, container):
    first = pay(api, "daily-1")
    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    assert purge_expired(container.db, clock.now()) == 0
    assert pay(api, "daily-1").content == first.content

    clock.advance(timedelta(seconds=2))
    assert purge_expired(container.db, clock.now()) == 1
    assert stored_keys(container) == []
    again = pay(api, "daily-1")
    assert again.status_code == 201 and again.json()["payout_no"] == 2


def test_purge_goes_in_batches_and_leaves_keys_still_kept(api, clock, container):
    for n in range(5):
        assert pay(api, f"old-{n}").status_code == 201
    clock.advance(timedelta(hours=12))
    assert pay(api, "recent").status_code == 201
    clock.advance(timedelta(hours=13))
    assert purge_expired(container.db, clock.now(), batch_size=2) == 5
    assert [record.key for record in stored_keys(container)] == ["recent"]


# --- concurrency ----------------------------------------------------------------------------------------


def _run_at_once(calls: list[Any]) -> list[tuple[str, Any]]:
    """Start every call at the same moment; each result is ("response", r), ("problem", code) or ("error", e)."""
    start = threading.Barrier(len(calls))

    def one(call: Any) -> tuple[str, Any]:
        start.wait(HOLD_GUARD_SECONDS)
        try:
            return "response", call()
        except DomainError as problem:
            return "problem", problem.code
        except Exception as error:  # anything else is a failure the asserts will show
            return "error", repr(error)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def _direct_caller(container: Any, teller: Teller, key: str) -> Any:
    body = b'{"amount_fen":500000}'
    order = PayoutOrder.model_validate_json(body)
    idem = Idempotency(store_of(container), key=key, method="POST", path=PAYOUTS, body=body)
    return lambda: idem.run("borrower:1", status_code=201, handler=lambda: teller.pay(order))


def test_fifty_simultaneous_retries_pay_out_once(container, teller):
    outcomes = _run_at_once([_direct_caller(container, teller, "storm-1") for _ in range(CALLERS)])

    assert teller.payouts == 1
    responses = [r for kind, r in outcomes if kind == "response"]
    problems = [code for kind, code in outcomes if kind == "problem"]
    assert len(responses) + len(problems) == CALLERS, [o for o in outcomes if o[0] == "error"]
    assert set(problems) <= {"IDEMPOTENCY_REQUEST_IN_FLIGHT"}
    assert {(r.status_code, r.body) for r in responses} == {(201, responses[0].body)}
    assert sum(REPLAYED not in r.headers for r in responses) == 1



def test_fifty_simultaneous_retries_over_http_pay_out_once_and_never_fail(api, teller):
    outcomes = _run_at_once([lambda: pay(api, "storm-http") for _ in range(CALLERS)])

    assert teller.payouts == 1
    responses = [r for kind, r in outcomes if kind == "response"]
    assert len(responses) == CALLERS, outcomes
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses if r.status_code >= 500]
    paid = [r for r in responses if r.status_code == 201]
    assert len({r.content for r in paid}) == 1 and sum(REPLAYED not in r.headers for r in paid) == 1
    for busy in (r for r in responses if r.status_code == 409):
        assert_problem(busy, 409, "IDEMPOTENCY_REQUEST_IN_FLIGHT")


def test_fifty_retries_racing_to_take_over_a_dead_request_pay_out_once_more(api, teller, clock, container):
    thread, result = hold_first_payout(api, teller, "storm-takeover")
    clock.advance(timedelta(seconds=60))
    outcomes = _run_at_once([_direct_caller(container, teller, "storm-takeover") for _ in range(CALLERS)])
    finish(thread, result, teller)

    assert teller.payouts == 2  # the held one and exactly one taker
    responses = [r for kind, r in outcomes if kind == "response"]
    problems = [code for kind, code in outcomes if kind == "problem"]
    assert len(responses) + len(problems) == CALLERS, [o for o in outcomes if o[0] == "error"]
    assert set(problems) <= {"IDEMPOTENCY_REQUEST_IN_FLIGHT"}
    assert sum(REPLAYED not in r.headers for r in responses) == 1
    assert {r.body for r in responses} == {stored_keys(container)[0].response_body.encode()}

