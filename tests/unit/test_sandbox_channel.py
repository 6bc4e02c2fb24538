"""The sandbox payment channel behaves like a real 代付/代扣 channel, deterministically.

Every documented test account, duplicate-order protection, signed callbacks and their retries, the
daily reconciliation file, and two processes racing on one order number. The clock is a FixedClock
moved by hand and ``sleep`` only records, so nothing here waits.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from stdnum import luhn

from miaodai.core.clock import BUSINESS_TZ, FixedClock
from miaodai.core.providers import ProviderTimeout
from miaodai.payments.channel import (
    CallbackRejected,
    ChannelAnswer,
    ChannelOrder,
    ChannelStatus,
    OrderKind,
    PaymentChannel,
)
from miaodai.sandbox import channel as sandbox
from miaodai.sandbox.channel import (
    ACCOUNT_CARD_FROZEN,
    ACCOUNT_DUPLICATE_CALLBACK,
    ACCOUNT_INSUFFICIENT_FUNDS,
    ACCOUNT_LIMITED_BALANCE,
    ACCOUNT_NAME_MISMATCH,
    ACCOUNT_NO_CALLBACK,
    ACCOUNT_OK,
    ACCOUNT_OUT_OF_ORDER_CALLBACKS,
    ACCOUNT_SYSTEM_ERROR_FAILED,
    ACCOUNT_SYSTEM_ERROR_UNKNOWN,
    ACCOUNT_TIMEOUT_LOST,
    ACCOUNT_TIMEOUT_RECORDED,
    CALLBACK_RETRY_DELAYS,
    PendingCallback,
    SandboxChannel,
)
from tests.mutation import RecordingSleep

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=BUSINESS_TZ)  # a Sunday morning in Beijing
SECRET = b"sandbox-channel-shared-secret"
NOTIFY_URL = "https://lender.example/callbacks/channel/sandbox"
SETTLED = T0 + timedelta(seconds=2)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "channel" / "sandbox-channel.db"


@pytest.fixture
def channel(store: Path, clock: FixedClock, sleep: RecordingSleep) -> Iterator[SandboxChannel]:
    ch = SandboxChannel("sandbox", store, SECRET, clock, latency_seconds=0.05, timeout_seconds=10, sleep=sleep)
    yield ch
    ch.close()


def payout(order_no: str, account: str = ACCOUNT_OK, amount_fen: int = 500_000) -> ChannelOrder:
    return ChannelOrder(order_no, OrderKind.PAYOUT, amount_fen, account, "张三", "ICBC", NOTIFY_URL)


def collection(order_no: str, account: str, amount_fen: int) -> ChannelOrder:
    return ChannelOrder(order_no, OrderKind.COLLECTION, amount_fen, account, "张三", "ICBC", NOTIFY_URL)


def ok(status: int = 200, body: bytes = b"success"):
    def post(url: str, body_: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        return status, body
    return post


class Receiver:
    """A merchant endpoint that verifies and keeps what it was told, then acknowledges."""

    def __init__(self, channel: SandboxChannel) -> None:
        self.channel = channel
        self.heard: list[ChannelAnswer] = []

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        assert url == NOTIFY_URL
        self.heard.append(self.channel.parse_callback(body, headers))
        return 200, self.channel.ack_body


def order_rows(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT order_no, amount_fen, final_status FROM channel_orders ORDER BY order_no").fetchall()


def callback_rows(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT count(*) FROM channel_callbacks").fetchone()[0]


# -- the test accounts ------------------------------------------------------------------------------

def test_test_accounts_are_distinct_luhn_valid_unionpay_debit_numbers() -> None:
    accounts = [getattr(sandbox, name) for name in sandbox.__all__ if name.startswith("ACCOUNT_")]
    assert len(accounts) == 12 == len(set(accounts))
    for account in accounts:
        assert len(account) == 19 and account.startswith("622202") and account.isdigit()
        assert luhn.is_valid(account)
        assert luhn.calc_check_digit(account[:-1]) == account[-1]


def test_the_sandbox_satisfies_the_protocol(channel: SandboxChannel) -> None:
    as_protocol: PaymentChannel = channel
    assert as_protocol.name == "sandbox" and as_protocol.ack_body == b"success"


# -- an ordinary payout ------------------------------------------------------------------------------

def test_a_payout_is_accepted_processing_and_succeeds_two_seconds_later_with_one_callback(
    channel: SandboxChannel, clock: FixedClock, sleep: RecordingSleep,
) -> None:
    answer = channel.submit(payout("D-1001"))
    assert (answer.status, answer.code, answer.amount_fen, answer.finished_at) == (
        ChannelStatus.PROCESSING, "ACCEPTED", 500_000, None)
    assert answer.channel_txn_id == "SBX20261122" + answer.channel_txn_id[11:] and len(answer.channel_txn_id) == 27
    assert sleep.waits == [0.05]  # it answered after its latency, never waiting for the timeout

    clock.advance(timedelta(seconds=1))
    assert channel.query("D-1001").status is ChannelStatus.PROCESSING
    assert channel.due_callbacks(clock.now()) == []

    clock.set(SETTLED)
    queried = channel.query("D-1001")
    assert (queried.status, queried.code, queried.message, queried.finished_at) == (
        ChannelStatus.SUCCEEDED, "SUCCESS", "交易成功", SETTLED)
    assert queried.channel_txn_id == answer.channel_txn_id

    receiver = Receiver(channel)
    assert channel.deliver_due(clock.now(), receiver) == 1
    assert [(a.order_no, a.status, a.amount_fen, a.finished_at) for a in receiver.heard] == [
        ("D-1001", ChannelStatus.SUCCEEDED, 500_000, SETTLED)]
    assert channel.deliver_due(clock.now() + timedelta(days=2), receiver) == 0  # acknowledged: never again


def test_the_callback_body_is_compact_json_in_beijing_time(channel: SandboxChannel, clock: FixedClock) -> None:
    assert channel.submit(payout("D-1002")).channel_txn_id == "SBX202611223CC75F746A0125CB"
    [callback] = channel.due_callbacks(SETTLED)
    assert callback.url == NOTIFY_URL
    assert callback.body == (
        '{"notify_id":"NTF40aad2980dd10274cc202836","order_no":"D-1002","channel_txn_id":"SBX202611223CC75F746A0125CB",'
        '"status":"succeeded","code":"SUCCESS","message":"交易成功","amount_fen":500000,'
        '"finished_at":"2026-11-22T10:00:02+08:00"}'
    ).encode()
    assert callback.headers["X-Sandbox-Signature"].startswith(f"t={int(SETTLED.timestamp())},v1=")


def test_records_survive_a_restart_of_whoever_holds_the_channel(
    store: Path, clock: FixedClock, sleep: RecordingSleep,
) -> None:
    first = SandboxChannel("sandbox", store, SECRET, clock, sleep=sleep)
    first.submit(payout("D-1003"))
    first.close()
    clock.set(SETTLED)
    again = SandboxChannel("sandbox", store, SECRET, clock, sleep=sleep)
    assert again.query("D-1003").status is ChannelStatus.SUCCEEDED
    assert len(again.due_callbacks(clock.now())) == 1
    again.close()


def test_a_malformed_order_is_refused_and_not_recorded(channel: SandboxChannel) -> None:
    for bad in (payout("D-1004", amount_fen=0), payout("D 1004"), payout("", amount_fen=100)):
        answer = channel.submit(bad)
        assert (answer.status, answer.code) == (ChannelStatus.FAILED, "PARAM_ERROR")
        assert answer.is_definite_failure
    assert channel.query("D-1004").status is ChannelStatus.NOT_FOUND


# -- duplicate-order protection ---------------------------------------------------------------------

def test_resubmitting_an_order_number_creates_no_second_payment_and_reports_the_existing_order(
    channel: SandboxChannel, clock: FixedClock, store: Path,
) -> None:
    first = channel.submit(payout("D-2001"))
    again = channel.submit(payout("D-2001"))
    assert (again.status, again.code, again.channel_txn_id) == (
        ChannelStatus.PROCESSING, "ORDER_EXISTS", first.channel_txn_id)

    clock.set(SETTLED)
    after = channel.submit(payout("D-2001"))
    assert (after.status, after.code, after.finished_at, after.amount_fen) == (
        ChannelStatus.SUCCEEDED, "ORDER_EXISTS", SETTLED, 500_000)
    assert order_rows(store) == [("D-2001", 500_000, "succeeded")]
    assert callback_rows(store) == 1
    assert channel.reconciliation_file(date(2026, 11, 22)).count("D-2001") == 1


def test_the_same_order_number_with_another_amount_is_refused_and_nothing_changes(
    channel: SandboxChannel, clock: FixedClock, store: Path,
) -> None:
    channel.submit(payout("D-2002", amount_fen=500_000))
    clock.set(SETTLED)
    conflict = channel.submit(payout("D-2002", amount_fen=600_000))
    # The request is refused; the answer still tells the truth about the order under that number.
    assert (conflict.code, conflict.status, conflict.amount_fen) == ("ORDER_CONFLICT", ChannelStatus.SUCCEEDED, 500_000)
    assert not conflict.is_definite_failure
    other_account = channel.submit(payout("D-2002", account=ACCOUNT_NO_CALLBACK, amount_fen=500_000))
    assert other_account.code == "ORDER_CONFLICT"
    assert order_rows(store) == [("D-2002", 500_000, "succeeded")]
    assert callback_rows(store) == 1


# -- definite failures ------------------------------------------------------------------------------

def test_a_frozen_card_is_refused_at_once_without_a_callback(channel: SandboxChannel, clock: FixedClock) -> None:
    answer = channel.submit(payout("D-3001", account=ACCOUNT_CARD_FROZEN))
    assert (answer.status, answer.code, answer.message, answer.finished_at) == (
        ChannelStatus.FAILED, "CARD_FROZEN", "卡状态异常", T0)
    assert answer.is_definite_failure and not answer.is_outcome_unknown
    assert channel.query("D-3001").code == "CARD_FROZEN"
    assert channel.due_callbacks(T0 + timedelta(days=1)) == []


def test_an_account_name_mismatch_fails_later_by_callback(channel: SandboxChannel, clock: FixedClock) -> None:
    assert channel.submit(payout("D-3002", account=ACCOUNT_NAME_MISMATCH)).status is ChannelStatus.PROCESSING
    receiver = Receiver(channel)
    channel.deliver_due(SETTLED, receiver)
    [heard] = receiver.heard
    assert (heard.status, heard.code, heard.message, heard.finished_at) == (
        ChannelStatus.FAILED, "ACCOUNT_NAME_MISMATCH", "户名不符", SETTLED)
    assert heard.is_definite_failure


def test_a_card_with_100_yuan_pays_collections_within_its_balance_and_refuses_the_rest(
    channel: SandboxChannel, clock: FixedClock,
) -> None:
    assert channel.submit(collection("R-4001", ACCOUNT_LIMITED_BALANCE, 6_000)).status is ChannelStatus.PROCESSING
    assert channel.card_balance_fen(ACCOUNT_LIMITED_BALANCE) == 4_000
    channel.submit(collection("R-4002", ACCOUNT_LIMITED_BALANCE, 4_001))
    channel.submit(collection("R-4003", ACCOUNT_LIMITED_BALANCE, 4_000))
    assert channel.card_balance_fen(ACCOUNT_LIMITED_BALANCE) == 0
    clock.set(SETTLED)
    outcomes = {n: (a.status, a.code) for n in ("R-4001", "R-4002", "R-4003") for a in [channel.query(n)]}
    assert outcomes == {
        "R-4001": (ChannelStatus.SUCCEEDED, "SUCCESS"),
        "R-4002": (ChannelStatus.FAILED, "INSUFFICIENT_FUNDS"),
        "R-4003": (ChannelStatus.SUCCEEDED, "SUCCESS"),
    }
    assert channel.query("R-4002").message == "余额不足"
    # A payout to the same card is not a collection: it is paid as usual.
    channel.submit(payout("D-4004", account=ACCOUNT_LIMITED_BALANCE))
    clock.advance(timedelta(seconds=2))
    assert channel.query("D-4004").status is ChannelStatus.SUCCEEDED


def test_an_empty_card_refuses_every_collection(channel: SandboxChannel, clock: FixedClock) -> None:
    channel.submit(collection("R-4005", ACCOUNT_INSUFFICIENT_FUNDS, 1))
    receiver = Receiver(channel)
    channel.deliver_due(SETTLED, receiver)
    assert [(a.status, a.code) for a in receiver.heard] == [(ChannelStatus.FAILED, "INSUFFICIENT_FUNDS")]


# -- unknown outcomes -------------------------------------------------------------------------------

def test_a_timeout_after_the_order_was_recorded_is_unknown_to_us_but_the_order_is_paid(
    channel: SandboxChannel, clock: FixedClock, sleep: RecordingSleep,
) -> None:
    with pytest.raises(ProviderTimeout):
        channel.submit(payout("D-5001", account=ACCOUNT_TIMEOUT_RECORDED))
    assert sleep.waits == [10]  # it really waited the timeout (recorded, not spent)
    assert channel.query("D-5001").status is ChannelStatus.PROCESSING
    again = channel.submit(payout("D-5001", account=ACCOUNT_TIMEOUT_RECORDED))  # a retry answers at once
    assert (again.status, again.code) == (ChannelStatus.PROCESSING, "ORDER_EXISTS")
    receiver = Receiver(channel)
    channel.deliver_due(SETTLED, receiver)
    assert [a.status for a in receiver.heard] == [ChannelStatus.SUCCEEDED]


def test_a_timeout_before_the_order_arrived_leaves_nothing_and_a_resend_is_paid(
    channel: SandboxChannel, clock: FixedClock, store: Path,
) -> None:
    with pytest.raises(ProviderTimeout):
        channel.submit(payout("D-5002", account=ACCOUNT_TIMEOUT_LOST))
    lost = channel.query("D-5002")
    assert (lost.status, lost.code, lost.channel_txn_id) == (ChannelStatus.NOT_FOUND, "ORDER_NOT_EXIST", None)
    assert channel.due_callbacks(T0 + timedelta(days=1)) == []

    clock.advance(timedelta(minutes=1))
    resent = channel.submit(payout("D-5002", account=ACCOUNT_TIMEOUT_LOST))
    assert (resent.status, resent.code) == (ChannelStatus.PROCESSING, "ACCEPTED")
    clock.advance(timedelta(seconds=2))
    assert channel.query("D-5002").status is ChannelStatus.SUCCEEDED
    assert order_rows(store) == [("D-5002", 500_000, "succeeded")]


@pytest.mark.parametrize(
    ("account", "status"),
    [(ACCOUNT_SYSTEM_ERROR_UNKNOWN, ChannelStatus.UNKNOWN), (ACCOUNT_SYSTEM_ERROR_FAILED, ChannelStatus.FAILED)],
)
def test_a_systemerror_answer_is_not_a_failure_the_order_is_later_paid(
    channel: SandboxChannel, clock: FixedClock, account: str, status: ChannelStatus,
) -> None:
    answer = channel.submit(payout("D-5003", account=account))
    assert (answer.status, answer.code, answer.finished_at) == (status, "SYSTEMERROR", None)
    assert answer.is_outcome_unknown and not answer.is_definite_failure
    assert channel.query("D-5003").status is ChannelStatus.PROCESSING
    receiver = Receiver(channel)
    channel.deliver_due(SETTLED, receiver)
    assert [(a.status, a.code) for a in receiver.heard] == [(ChannelStatus.SUCCEEDED, "SUCCESS")]


# -- callbacks that misbehave -----------------------------------------------------------------------

def test_the_final_callback_is_delivered_twice(channel: SandboxChannel, clock: FixedClock) -> None:
    channel.submit(payout("D-6001", account=ACCOUNT_DUPLICATE_CALLBACK))
    receiver = Receiver(channel)
    assert channel.deliver_due(SETTLED, receiver) == 1
    assert channel.deliver_due(SETTLED + timedelta(seconds=1), receiver) == 1  # although acknowledged
    first, second = receiver.heard
    assert first == second and first.status is ChannelStatus.SUCCEEDED and first.notify_id


def test_a_stale_processing_callback_arrives_after_the_final_one(channel: SandboxChannel) -> None:
    channel.submit(payout("D-6002", account=ACCOUNT_OUT_OF_ORDER_CALLBACKS))
    receiver = Receiver(channel)
    assert channel.deliver_due(SETTLED + timedelta(seconds=5), receiver) == 2
    assert [(a.status, a.finished_at) for a in receiver.heard] == [
        (ChannelStatus.SUCCEEDED, SETTLED), (ChannelStatus.PROCESSING, None)]
    assert receiver.heard[0].notify_id != receiver.heard[1].notify_id


def test_a_callback_that_never_comes_the_query_still_tells(channel: SandboxChannel, clock: FixedClock) -> None:
    channel.submit(payout("D-6003", account=ACCOUNT_NO_CALLBACK))
    clock.advance(timedelta(days=2))
    assert channel.due_callbacks(clock.now()) == []
    answer = channel.query("D-6003")
    assert (answer.status, answer.finished_at) == (ChannelStatus.SUCCEEDED, SETTLED)


def test_an_unacknowledged_callback_is_retried_on_the_channels_schedule_then_given_up(
    channel: SandboxChannel,
) -> None:
    channel.submit(payout("D-6004"))

    def refuse(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        raise ConnectionError("merchant down")

    # Not acknowledged: an error status, an exception, a near-miss body (the ack must be exact).
    refusals = [ok(500), refuse, ok(200, b"SUCCESS"), ok(200, b"success\n"), ok(200, b"")]
    now = SETTLED
    attempts = []
    for attempt in range(len(CALLBACK_RETRY_DELAYS) + 1):
        assert channel.deliver_due(now, refusals[attempt % len(refusals)]) == 1
        attempts.append(now)
        if attempt < len(CALLBACK_RETRY_DELAYS):
            wait = CALLBACK_RETRY_DELAYS[attempt]
            assert channel.due_callbacks(now + wait - timedelta(seconds=1)) == []
            now += wait
    waits = [int((later - earlier).total_seconds()) for earlier, later in zip(attempts, attempts[1:], strict=False)]
    assert waits == [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600]
    assert attempts[-1] - attempts[0] == timedelta(hours=24, minutes=4)
    assert channel.due_callbacks(now + timedelta(days=30)) == []  # given up after 16 deliveries


def test_a_callback_acknowledged_on_the_third_try_stops(channel: SandboxChannel) -> None:
    channel.submit(payout("D-6005"))
    [pending] = channel.due_callbacks(SETTLED)
    channel.record_delivery(pending.id, acknowledged=False, now=SETTLED)
    channel.record_delivery(pending.id, acknowledged=False, now=SETTLED + timedelta(seconds=15))
    assert [c.id for c in channel.due_callbacks(SETTLED + timedelta(seconds=30))] == [pending.id]
    channel.record_delivery(pending.id, acknowledged=True, now=SETTLED + timedelta(seconds=30))
    assert channel.due_callbacks(SETTLED + timedelta(days=2)) == []
    channel.record_delivery(pending.id, acknowledged=False, now=SETTLED + timedelta(seconds=31))  # late: ignored
    assert channel.due_callbacks(SETTLED + timedelta(days=2)) == []


def test_two_deliverers_do_not_post_the_same_callback_at_once(channel: SandboxChannel) -> None:
    channel.submit(payout("D-6006"))
    inner: list[int] = []

    def post_while_another_deliverer_runs(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        inner.append(channel.deliver_due(SETTLED, ok()))
        return 200, b"success"

    assert channel.deliver_due(SETTLED, post_while_another_deliverer_runs) == 1
    assert inner == [0]


class SlowMerchant(Receiver):
    """A merchant whose every callback takes ``seconds`` of the channel's clock to answer; it records the
    signing time of each callback and, on the one numbered ``then_at``, runs ``then`` mid-post."""

    def __init__(self, channel: SandboxChannel, clock: FixedClock, seconds: int) -> None:
        super().__init__(channel)
        self.clock, self.seconds = clock, timedelta(seconds=seconds)
        self.signed_at: list[int] = []
        self.posts = 0
        self.then_at, self.then = 0, lambda: None

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        self.posts += 1
        self.clock.advance(self.seconds)
        if self.posts == self.then_at:
            self.then()
        self.signed_at.append(int(headers["X-Sandbox-Signature"].split(",")[0].removeprefix("t=")))
        return super().__call__(url, body, headers)


def test_a_backlog_delivered_slowly_is_signed_as_each_callback_is_posted(
    channel: SandboxChannel, clock: FixedClock,
) -> None:
    for n in range(8):
        channel.submit(payout(f"D-6101-{n}"))
    clock.set(SETTLED)
    merchant = SlowMerchant(channel, clock, seconds=50)  # the pass runs 400 s: past the 300 s window
    assert channel.deliver_due(clock.now(), merchant) == 8
    # Each signed when it was posted (50 s later each time), so the merchant believed every one.
    start = int(SETTLED.timestamp())
    assert merchant.signed_at == [start + 50 * n for n in range(8)]
    assert [a.order_no for a in merchant.heard] == [f"D-6101-{n}" for n in range(8)]
    assert channel.due_callbacks(clock.now() + timedelta(days=2)) == []  # every one acknowledged


def test_a_callback_posted_late_in_a_long_pass_is_leased_from_that_moment(
    channel: SandboxChannel, clock: FixedClock,
) -> None:
    for n in range(8):
        channel.submit(payout(f"D-6102-{n}"))
    clock.set(SETTLED)
    merchant = SlowMerchant(channel, clock, seconds=50)  # each post well within the 60 s lease
    other = Receiver(channel)
    # While the seventh is being posted, 350 s into the pass, another deliverer looks: the seventh is
    # leased (from 300 s, when its post began), only the eighth, not yet taken, is free.
    merchant.then_at, merchant.then = 7, lambda: channel.deliver_due(clock.now(), other)
    assert channel.deliver_due(clock.now(), merchant) == 7
    assert [a.order_no for a in other.heard] == ["D-6102-7"]
    assert [a.order_no for a in merchant.heard] == [f"D-6102-{n}" for n in range(7)]


def test_a_retry_waits_from_when_its_delivery_ended(channel: SandboxChannel, clock: FixedClock) -> None:
    channel.submit(payout("D-6103"))
    clock.set(SETTLED)

    def slow_refusal(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        clock.advance(timedelta(seconds=40))
        return 503, b"busy"

    assert channel.deliver_due(clock.now(), slow_refusal) == 1
    retry_at = SETTLED + timedelta(seconds=40) + CALLBACK_RETRY_DELAYS[0]
    assert channel.due_callbacks(retry_at - timedelta(seconds=1)) == []
    assert len(channel.due_callbacks(retry_at)) == 1


def test_callbacks_of_different_orders_are_posted_at_once_those_of_one_order_in_turn(
    channel: SandboxChannel,
) -> None:
    plain = [f"D-6104-{n}" for n in range(8)]
    for order_no in plain:
        channel.submit(payout(order_no))
    channel.submit(payout("D-6104-dup", account=ACCOUNT_DUPLICATE_CALLBACK))
    channel.submit(payout("D-6104-ooo", account=ACCOUNT_OUT_OF_ORDER_CALLBACKS))
    two_at_once = threading.Barrier(2, timeout=30)  # the first two posts meet here, or the test fails
    heard: list[tuple[str, str]] = []
    lock = threading.Lock()

    def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        answer = channel.parse_callback(body, headers)
        with lock:
            heard.append((answer.order_no, answer.status.value))
            first_two = len(heard) <= 2
        if first_two:
            two_at_once.wait()
        return 200, channel.ack_body

    later = SETTLED + timedelta(seconds=5)  # all twelve due, the duplicate and the stale one too
    with ThreadPoolExecutor(max_workers=4) as pool_a, ThreadPoolExecutor(max_workers=4) as pool_b:
        # Two deliverers with their pools compete: each callback is still posted once.
        posted = list(ThreadPoolExecutor(max_workers=2).map(
            lambda pool: channel.deliver_due(later, post, pool=pool), (pool_a, pool_b)))
    assert sum(posted) == 12 == len(heard)
    assert sorted(heard) == sorted([(n, "succeeded") for n in plain] + [("D-6104-dup", "succeeded")] * 2
                                   + [("D-6104-ooo", "succeeded"), ("D-6104-ooo", "processing")])
    # One order's callbacks in their documented order: the stale "processing" after the final one.
    assert [s for n, s in heard if n == "D-6104-ooo"] == ["succeeded", "processing"]
    assert channel.due_callbacks(later + timedelta(days=2)) == []


def test_reads_do_not_take_the_write_lock(channel: SandboxChannel, clock: FixedClock, store: Path) -> None:
    channel.submit(payout("D-6105"))
    clock.set(SETTLED)
    writer = sqlite3.connect(store, timeout=0, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process is leasing, recording or accepting an order
    try:
        # Without the lock a read would wait for it (30 s) and then fail "database is locked".
        assert len(channel.due_callbacks(SETTLED)) == 1
        assert channel.query("D-6105").status is ChannelStatus.SUCCEEDED
        assert "D-6105" in channel.reconciliation_file(date(2026, 11, 22))
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_callbacks_reach_a_fastapi_endpoint_that_acknowledges_them(channel: SandboxChannel) -> None:
    app = FastAPI()
    heard: list[ChannelAnswer] = []

    @app.post("/callbacks/channel/sandbox")
    async def notify(request: Request) -> Response:
        try:
            heard.append(channel.parse_callback(await request.body(), request.headers))
        except CallbackRejected:
            return Response(status_code=400)
        return Response(content=channel.ack_body, media_type="text/plain")

    client = TestClient(app)

    def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        response = client.post(url, content=body, headers=dict(headers))
        return response.status_code, response.content

    channel.submit(payout("D-6007"))
    channel.submit(payout("D-6008", account=ACCOUNT_NAME_MISMATCH))
    assert channel.deliver_due(SETTLED, post) == 2
    assert [(a.order_no, a.status) for a in heard] == [
        ("D-6007", ChannelStatus.SUCCEEDED), ("D-6008", ChannelStatus.FAILED)]
    assert channel.due_callbacks(SETTLED + timedelta(days=1)) == []


# -- signatures -------------------------------------------------------------------------------------

@pytest.fixture
def delivered(channel: SandboxChannel, clock: FixedClock) -> PendingCallback:
    channel.submit(payout("D-7001"))
    clock.set(SETTLED)
    [callback] = channel.due_callbacks(SETTLED)
    return callback


def test_a_genuine_callback_is_accepted_even_with_lower_case_headers(
    channel: SandboxChannel, delivered: PendingCallback,
) -> None:
    lower = {k.lower(): v for k, v in delivered.headers.items()}
    assert channel.parse_callback(delivered.body, lower).status is ChannelStatus.SUCCEEDED


@pytest.mark.parametrize(
    "alter",
    [
        lambda body: body.replace(b'"succeeded"', b'"failed"'),
        lambda body: body.replace(b"500000", b"900000"),
        lambda body: body + b" ",
    ],
    ids=["status", "amount", "trailing-space"],
)
def test_an_altered_body_is_rejected(channel: SandboxChannel, delivered: PendingCallback, alter) -> None:
    with pytest.raises(CallbackRejected, match="signature does not match"):
        channel.parse_callback(alter(delivered.body), delivered.headers)


def test_a_callback_signed_with_another_secret_is_rejected(
    channel: SandboxChannel, delivered: PendingCallback, tmp_path: Path, clock: FixedClock,
) -> None:
    impostor = SandboxChannel("sandbox", tmp_path / "impostor.db", b"not-our-secret", clock)
    with pytest.raises(CallbackRejected, match="signature does not match"):
        channel.parse_callback(delivered.body, impostor.sign(delivered.body, SETTLED))
    impostor.close()


def test_a_signature_more_than_five_minutes_from_now_is_rejected(
    channel: SandboxChannel, delivered: PendingCallback,
) -> None:
    body = delivered.body
    assert channel.parse_callback(body, channel.sign(body, SETTLED - timedelta(seconds=300))).order_no == "D-7001"
    assert channel.parse_callback(body, channel.sign(body, SETTLED + timedelta(seconds=300))).order_no == "D-7001"
    for skew in (timedelta(seconds=-301), timedelta(seconds=301), timedelta(days=-1)):
        with pytest.raises(CallbackRejected, match="timestamp"):
            channel.parse_callback(body, channel.sign(body, SETTLED + skew))


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Sandbox-Signature": ""}, {"X-Sandbox-Signature": "t=abc,v1=00"},
     {"X-Sandbox-Signature": "t=1795312802"}, {"X-Sandbox-Signature": "v1=00"},
     {"X-Sandbox-Signature": "t=1795312802,t=1795312802,v1=00"}],
)
def test_a_missing_or_malformed_signature_header_is_rejected(
    channel: SandboxChannel, delivered: PendingCallback, headers: dict[str, str],
) -> None:
    with pytest.raises(CallbackRejected):
        channel.parse_callback(delivered.body, headers)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"notify_id":"N","order_no":"D","channel_txn_id":"T","status":"succeeded","code":"SUCCESS",'
         b'"message":"m","amount_fen":"500000","finished_at":"2026-11-22T10:00:02+08:00"}', "amount_fen"),
        (b'{"notify_id":"N","order_no":"D","channel_txn_id":"T","status":"not_found","code":"X",'
         b'"message":"m","amount_fen":1,"finished_at":null}', "cannot come in a callback"),
        (b'{"notify_id":"N","order_no":"D","channel_txn_id":"T","status":"succeeded","code":"SUCCESS",'
         b'"message":"m","amount_fen":1,"finished_at":null}', "finished_at"),
        (b'{"notify_id":"N","order_no":"D","channel_txn_id":"T","status":"succeeded","code":"SUCCESS",'
         b'"message":"m","amount_fen":1,"finished_at":"2026-11-22T10:00:02"}', "UTC offset"),
        (b'{"order_no":"D","channel_txn_id":"T","status":"failed","code":"X","message":"m","amount_fen":1}',
         "notify_id"),
    ],
)
def test_a_correctly_signed_but_malformed_body_is_rejected(channel: SandboxChannel, body: bytes, reason: str) -> None:
    with pytest.raises(CallbackRejected, match=reason):
        channel.parse_callback(body, channel.sign(body, T0))


# -- the reconciliation file ------------------------------------------------------------------------

def test_the_daily_reconciliation_file_lists_what_finished_that_beijing_day(
    channel: SandboxChannel, clock: FixedClock,
) -> None:
    clock.set(datetime(2026, 11, 21, 23, 59, 58, tzinfo=BUSINESS_TZ))
    channel.submit(payout("P-0001"))  # finishes at 00:00:00 on the 22nd: that day's file
    clock.set(datetime(2026, 11, 21, 23, 59, 57, tzinfo=BUSINESS_TZ))
    channel.submit(payout("P-0000"))  # finishes 23:59:59 on the 21st: not in it
    clock.set(T0)
    channel.submit(payout("P-0003", amount_fen=120_000))
    channel.submit(payout("P-0002", account=ACCOUNT_CARD_FROZEN, amount_fen=80_000))
    channel.submit(collection("R-0001", ACCOUNT_LIMITED_BALANCE, 6_000))
    channel.submit(collection("R-0002", ACCOUNT_LIMITED_BALANCE, 9_000))
    with pytest.raises(ProviderTimeout):
        channel.submit(payout("P-0004", account=ACCOUNT_TIMEOUT_LOST))  # never arrived: never listed
    channel.inject_foreign_order("X-0001", amount_fen=30_000, finished_at=T0 + timedelta(hours=5, minutes=30))
    channel.tamper_amount("P-0003", 119_900)
    clock.set(datetime(2026, 11, 22, 23, 59, 58, tzinfo=BUSINESS_TZ))
    channel.submit(payout("P-0005"))  # finishes at 00:00:00 on the 23rd

    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=BUSINESS_TZ))
    assert channel.reconciliation_file(date(2026, 11, 22)) == (
        "order_no,channel_txn_id,kind,amount_fen,status,finished_at\n"
        "P-0001,SBX202611212E528246FBB5C91E,payout,500000,succeeded,2026-11-22T00:00:00+08:00\n"
        "P-0002,SBX20261122419A3E1A1378338A,payout,80000,failed,2026-11-22T10:00:00+08:00\n"
        "P-0003,SBX2026112280649A7AC1E33181,payout,119900,succeeded,2026-11-22T10:00:02+08:00\n"
        "R-0001,SBX20261122CC02A3FB41FF40B9,collection,6000,succeeded,2026-11-22T10:00:02+08:00\n"
        "R-0002,SBX20261122B169651EBA49D37D,collection,9000,failed,2026-11-22T10:00:02+08:00\n"
        "X-0001,SBX20261122277E9FC55F92EC20,payout,30000,succeeded,2026-11-22T15:30:00+08:00\n"
    )
    assert channel.query("P-0003").amount_fen == 119_900  # the channel's own figure, everywhere


def test_the_file_for_today_lists_only_what_has_finished_so_far(channel: SandboxChannel, clock: FixedClock) -> None:
    channel.submit(payout("P-0101"))
    header = "order_no,channel_txn_id,kind,amount_fen,status,finished_at\n"
    assert channel.reconciliation_file(date(2026, 11, 22)) == header
    clock.set(SETTLED)
    assert channel.reconciliation_file(date(2026, 11, 22)).count("\n") == 2
    assert channel.reconciliation_file(date(2026, 11, 21)) == header


def test_the_test_hooks_refuse_what_cannot_be(channel: SandboxChannel) -> None:
    with pytest.raises(KeyError):
        channel.tamper_amount("NEVER-SENT", 1)


# -- concurrency ------------------------------------------------------------------------------------

def _submit_from_another_process(store: str, order_no: str, start, results) -> None:
    ch = SandboxChannel("sandbox", Path(store), SECRET, FixedClock(T0))
    start.wait()
    results.put(ch.submit(payout(order_no)).code)
    ch.close()


def test_two_processes_submitting_one_order_number_at_once_make_one_order(store: Path) -> None:
    # Neither has opened the store before: creating it is part of the race.
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_submit_from_another_process, args=(str(store), "D-9001", start, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert sorted(results.get() for _ in workers) == ["ACCEPTED", "ORDER_EXISTS"]
    assert order_rows(store) == [("D-9001", 500_000, "succeeded")]
    assert callback_rows(store) == 1


def test_threads_submitting_one_order_number_make_one_order(channel: SandboxChannel, store: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: channel.submit(payout("D-9002")).code, range(8)))
    assert sorted(codes) == ["ACCEPTED"] + ["ORDER_EXISTS"] * 7
    assert order_rows(store) == [("D-9002", 500_000, "succeeded")]
