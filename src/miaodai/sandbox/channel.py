"""A sandbox payment channel (代付/代扣) that behaves like a real one, deterministically.

It is an outside party, so it keeps its own records: a SQLite file of its own (SQLAlchemy Core with
its own MetaData, no Alembic), which survives our worker being killed and is shared safely by several
threads and processes. Orders complete relative to the injected clock (nothing runs in the
background): an order's outcome and completion time are fixed when it is accepted, and every answer
reports the state at the clock's "now". Callbacks are rows that come due; ``deliver_due`` posts them
and retries the unacknowledged ones on WeChat Pay's published notification schedule.

The outcome is chosen by the account number (docs/sandbox.md, "Payment channel"): valid 19-digit
UnionPay debit numbers (ICBC BIN 622202, Luhn check digit) listed below as constants. Any other
account is accepted, ``processing``, and succeeds ``settle_seconds`` later with one callback.

Card numbers are never stored: orders keep a keyed HMAC of the account (to refuse a resubmission
naming a different account) and its last four digits.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    and_,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from stdnum import luhn

from miaodai.core.clock import BUSINESS_TZ, Clock, start_of_business_day
from miaodai.core.providers import SandboxParty, wait
from miaodai.payments.channel import (
    CODE_ACCEPTED,
    CODE_ORDER_CONFLICT,
    CODE_ORDER_EXISTS,
    CODE_ORDER_NOT_FOUND,
    CODE_PARAM_ERROR,
    CODE_PROCESSING,
    CODE_SUCCESS,
    CODE_SYSTEM_ERROR,
    CallbackRejected,
    ChannelAnswer,
    ChannelOrder,
    ChannelStatus,
    OrderKind,
)


def _test_account(serial: int) -> str:
    body = f"62220288{serial:010d}"  # ICBC 工商银行 debit BIN 622202, 19 digits with the check digit
    return body + luhn.calc_check_digit(body)


# Documented test accounts (docs/sandbox.md). Any account not listed behaves like ACCOUNT_OK.
ACCOUNT_OK = _test_account(0)
ACCOUNT_CARD_FROZEN = _test_account(1)  # refused at once: CARD_FROZEN 卡状态异常, no callback
ACCOUNT_NAME_MISMATCH = _test_account(2)  # processing, then failed ACCOUNT_NAME_MISMATCH 户名不符 by callback
ACCOUNT_LIMITED_BALANCE = _test_account(3)  # collections: 100.00 yuan on the card, then INSUFFICIENT_FUNDS
ACCOUNT_INSUFFICIENT_FUNDS = _test_account(4)  # collections: an empty card, always INSUFFICIENT_FUNDS
ACCOUNT_TIMEOUT_RECORDED = _test_account(5)  # submit times out after recording; the order succeeds
ACCOUNT_TIMEOUT_LOST = _test_account(6)  # the first submit times out unrecorded (query: not_found)
ACCOUNT_SYSTEM_ERROR_UNKNOWN = _test_account(7)  # submit answers unknown/SYSTEMERROR; the order succeeds
ACCOUNT_SYSTEM_ERROR_FAILED = _test_account(8)  # submit answers failed/SYSTEMERROR; the order succeeds
ACCOUNT_DUPLICATE_CALLBACK = _test_account(9)  # the final callback is delivered twice
ACCOUNT_OUT_OF_ORDER_CALLBACKS = _test_account(10)  # a stale "processing" callback after the final one
ACCOUNT_NO_CALLBACK = _test_account(11)  # succeeds, but no callback ever comes

LIMITED_BALANCE_FEN = 10_000  # 100.00 yuan
_OPENING_BALANCES = {ACCOUNT_LIMITED_BALANCE: LIMITED_BALANCE_FEN, ACCOUNT_INSUFFICIENT_FUNDS: 0}

SIGNATURE_HEADER = "X-Sandbox-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300  # refuse callbacks signed more than 5 minutes from our clock
ACK_BODY = b"success"  # like Alipay: exactly these bytes with HTTP 200, or the channel retries
# Waits after each unacknowledged delivery (WeChat Pay's published schedule, 24 h 4 min in all);
# after the last one the channel gives up and only a query tells.
CALLBACK_RETRY_DELAYS = tuple(
    timedelta(seconds=s) for s in (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600,
                                   10800, 10800, 10800, 21600, 21600)
)
# A delivery being posted is leased for this long, so two deliverers do not post it at once and a
# deliverer killed mid-post does not lose it.
DELIVERY_LEASE = timedelta(seconds=60)
RECONCILIATION_COLUMNS = ("order_no", "channel_txn_id", "kind", "amount_fen", "status", "finished_at")

_ORDER_NO = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_MESSAGES = {
    CODE_ACCEPTED: "受理成功，处理中", CODE_PROCESSING: "处理中", CODE_SUCCESS: "交易成功",
    CODE_ORDER_NOT_FOUND: "订单不存在", CODE_SYSTEM_ERROR: "系统繁忙，请稍后查询",
    CODE_ORDER_CONFLICT: "商户订单号重复，且订单要素不一致",
    "CARD_FROZEN": "卡状态异常", "ACCOUNT_NAME_MISMATCH": "户名不符", "INSUFFICIENT_FUNDS": "余额不足",
}


class _Behaviour(StrEnum):
    SETTLES = "settles"
    REFUSED_CARD_FROZEN = "refused_card_frozen"
    NAME_MISMATCH = "name_mismatch"
    BALANCE = "balance"  # collections checked against the card's balance
    TIMEOUT_RECORDED = "timeout_recorded"
    TIMEOUT_LOST = "timeout_lost"
    SYSTEM_ERROR_UNKNOWN = "system_error_unknown"
    SYSTEM_ERROR_FAILED = "system_error_failed"
    DUPLICATE_CALLBACK = "duplicate_callback"
    OUT_OF_ORDER_CALLBACKS = "out_of_order_callbacks"
    NO_CALLBACK = "no_callback"
    FOREIGN = "foreign"  # inject_foreign_order: an order that did not come from us


_BEHAVIOURS = {
    ACCOUNT_CARD_FROZEN: _Behaviour.REFUSED_CARD_FROZEN, ACCOUNT_NAME_MISMATCH: _Behaviour.NAME_MISMATCH,
    ACCOUNT_LIMITED_BALANCE: _Behaviour.BALANCE, ACCOUNT_INSUFFICIENT_FUNDS: _Behaviour.BALANCE,
    ACCOUNT_TIMEOUT_RECORDED: _Behaviour.TIMEOUT_RECORDED, ACCOUNT_TIMEOUT_LOST: _Behaviour.TIMEOUT_LOST,
    ACCOUNT_SYSTEM_ERROR_UNKNOWN: _Behaviour.SYSTEM_ERROR_UNKNOWN,
    ACCOUNT_SYSTEM_ERROR_FAILED: _Behaviour.SYSTEM_ERROR_FAILED,
    ACCOUNT_DUPLICATE_CALLBACK: _Behaviour.DUPLICATE_CALLBACK,
    ACCOUNT_OUT_OF_ORDER_CALLBACKS: _Behaviour.OUT_OF_ORDER_CALLBACKS, ACCOUNT_NO_CALLBACK: _Behaviour.NO_CALLBACK,
}
_FINAL, _PROCESSING = "final", "processing"  # what a scheduled callback reports
_CALLBACKS = {  # (what it reports, delay after the order finished)
    _Behaviour.DUPLICATE_CALLBACK: ((_FINAL, 0), (_FINAL, 1)),
    _Behaviour.OUT_OF_ORDER_CALLBACKS: ((_FINAL, 0), (_PROCESSING, 1)),
    _Behaviour.NO_CALLBACK: (),
    _Behaviour.REFUSED_CARD_FROZEN: (),  # answered synchronously: nothing to notify
}

_metadata = MetaData()
_orders = Table(
    "channel_orders", _metadata,
    Column("order_no", String(64), primary_key=True),  # duplicate-order protection
    Column("kind", String(16), nullable=False),
    Column("amount_fen", Integer, nullable=False),  # as requested
    Column("reported_amount_fen", Integer, nullable=False),  # what the channel says moved (tamper_amount)
    Column("account_key", String(64), nullable=False),  # keyed HMAC of the account number
    Column("account_last4", String(4), nullable=False),
    Column("behaviour", String(32), nullable=False),
    Column("channel_txn_id", String(40), nullable=False, unique=True),
    Column("final_status", String(16), nullable=False),  # fixed at acceptance, visible from finished_at
    Column("final_code", String(40), nullable=False),
    Column("final_message", String(128), nullable=False),
    Column("received_at", String(32), nullable=False),
    Column("finished_at", String(32), nullable=False),
    Index("ix_channel_orders_finished_at", "finished_at"),
)
_callbacks = Table(
    "channel_callbacks", _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_no", String(64), nullable=False),
    Column("notify_id", String(40), nullable=False),  # the same on a duplicate of one notification
    Column("reports", String(16), nullable=False),  # _FINAL or _PROCESSING
    Column("url", String(512), nullable=False),
    Column("next_attempt_at", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("acknowledged_at", String(32)),
    Column("abandoned_at", String(32)),
    Index("ix_channel_callbacks_due", "next_attempt_at"),
)
_lost_submissions = Table(  # ACCOUNT_TIMEOUT_LOST: order numbers whose first submission was "lost"
    "channel_lost_submissions", _metadata,
    Column("order_no", String(64), primary_key=True),
    Column("lost_at", String(32), nullable=False),
)
_balances = Table(  # the collection test cards' balances, opened on first use
    "channel_card_balances", _metadata,
    Column("account_key", String(64), primary_key=True),
    Column("balance_fen", Integer, nullable=False),
)


@dataclass(frozen=True)
class PendingCallback:
    """A notification due to be posted: to ``url``, these exact bytes, with these headers."""

    id: int
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class _Due:
    """A notification due, not yet signed (it is signed when posted)."""

    id: int
    order_no: str
    url: str
    body: bytes


@dataclass(frozen=True)
class _Plan:
    status: ChannelStatus
    code: str
    finished_at: datetime
    debit_fen: int = 0


Poster = Callable[[str, bytes, Mapping[str, str]], tuple[int, bytes]]


class SandboxChannel(SandboxParty):
    """The sandbox 代付/代扣 channel. Thread- and process-safe through its SQLite file."""

    def __init__(
        self, name: str, store_path: Path, secret: bytes, clock: Clock, *, latency_seconds: float = 0,
        timeout_seconds: float = 10, sleep: Callable[[float], None] = wait, settle_seconds: float = 2,
    ) -> None:
        super().__init__(timeout_seconds=timeout_seconds, latency_seconds=latency_seconds, sleep=sleep)
        self.name = name
        self.ack_body = ACK_BODY
        self._secret = secret
        self._clock = clock
        self._settle = timedelta(seconds=settle_seconds)
        self._engine = _open_store(store_path)

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read-only transaction. Every other one takes the write lock when it begins; WAL gives a
        read its snapshot without it, so due-callback scans and queries neither wait for deliveries,
        submits and leases nor hold them up."""
        with self._engine.connect().execution_options(sandbox_read_only=True) as conn, conn.begin():
            yield conn

    # -- the Protocol --------------------------------------------------------------------------

    def submit(self, order: ChannelOrder) -> ChannelAnswer:
        problem = _invalid(order)
        if problem:
            self._sleep(self.latency_seconds)
            return ChannelAnswer(order.order_no, ChannelStatus.FAILED, None, CODE_PARAM_ERROR, problem, None, None)
        behaviour = _BEHAVIOURS.get(order.account_no, _Behaviour.SETTLES)
        if behaviour is _Behaviour.TIMEOUT_LOST and self._lose_first_submission(order.order_no):
            raise self._time_out(self.name)
        now = self._clock.now()
        created, row = self._record(order, behaviour, now)
        if created and behaviour is _Behaviour.TIMEOUT_RECORDED:
            raise self._time_out(self.name)  # recorded, but the answer never reached the caller
        self._sleep(self.latency_seconds)
        if not created:
            return self._resubmission_answer(row, order, now)
        if behaviour is _Behaviour.SYSTEM_ERROR_UNKNOWN:
            return self._answer(row, now, status=ChannelStatus.UNKNOWN, code=CODE_SYSTEM_ERROR)
        if behaviour is _Behaviour.SYSTEM_ERROR_FAILED:
            return self._answer(row, now, status=ChannelStatus.FAILED, code=CODE_SYSTEM_ERROR)
        current = self._answer(row, now)
        if current.status is ChannelStatus.PROCESSING:
            return self._answer(row, now, status=ChannelStatus.PROCESSING, code=CODE_ACCEPTED)
        return current

    def query(self, order_no: str) -> ChannelAnswer:
        self._sleep(self.latency_seconds)
        with self._reading() as conn:
            row = conn.execute(select(_orders).where(_orders.c.order_no == order_no)).one_or_none()
        if row is None:
            return ChannelAnswer(order_no, ChannelStatus.NOT_FOUND, None, CODE_ORDER_NOT_FOUND,
                                 _MESSAGES[CODE_ORDER_NOT_FOUND], None, None)
        return self._answer(row, self._clock.now())

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> ChannelAnswer:
        timestamp = self._verify_signature(body, headers)
        skew = abs(self._clock.now().timestamp() - timestamp)
        if skew > SIGNATURE_TOLERANCE_SECONDS:
            raise CallbackRejected(f"signature timestamp {skew:.0f}s away from now (limit 300s)")
        return _answer_from_body(body)

    def reconciliation_file(self, day: date) -> str:
        """Orders that reached their final state on ``day`` (Beijing time), up to now, by order_no."""
        start, end = start_of_business_day(day), start_of_business_day(day + timedelta(days=1))
        finished = _orders.c.finished_at
        with self._reading() as conn:
            rows = conn.execute(
                select(_orders).where(finished >= _stamp(start), finished < _stamp(end),
                                      finished <= _stamp(self._clock.now()))
                .order_by(_orders.c.order_no)
            ).all()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(RECONCILIATION_COLUMNS)
        for row in rows:
            writer.writerow((row.order_no, row.channel_txn_id, row.kind, row.reported_amount_fen,
                             row.final_status, _wire_time(_instant(row.finished_at))))
        return out.getvalue()

    # -- callbacks -------------------------------------------------------------------------------

    def sign(self, body: bytes, at: datetime) -> dict[str, str]:
        """Headers carrying the signature of ``body`` made at ``at`` (tests use it to forge callbacks)."""
        timestamp = int(at.timestamp())
        return {"Content-Type": "application/json; charset=utf-8",
                SIGNATURE_HEADER: f"t={timestamp},v1={self._signature(timestamp, body)}"}

    def due_callbacks(self, now: datetime) -> list[PendingCallback]:
        """Notifications due at ``now``, oldest first, signed at ``now`` (as a channel signs when it sends)."""
        return [PendingCallback(due.id, due.url, due.body, self.sign(due.body, now)) for due in self._due(now)]

    def _due(self, now: datetime) -> list[_Due]:
        with self._reading() as conn:
            rows = conn.execute(
                select(_callbacks.c.id, _callbacks.c.url, _callbacks.c.notify_id, _callbacks.c.reports, _orders)
                .join(_orders, _orders.c.order_no == _callbacks.c.order_no)
                .where(_callbacks.c.next_attempt_at <= _stamp(now), _callbacks.c.acknowledged_at.is_(None),
                       _callbacks.c.abandoned_at.is_(None))
                .order_by(_callbacks.c.next_attempt_at, _callbacks.c.id)
            ).all()
        return [_Due(row.id, row.order_no, row.url, _callback_body(row, reports=row.reports)) for row in rows]

    def record_delivery(self, callback_id: int, *, acknowledged: bool, now: datetime) -> None:
        """Close a delivery, or schedule its retry (or give up after the last one)."""
        c = _callbacks.c
        with self._engine.begin() as conn:
            row = conn.execute(select(_callbacks).where(c.id == callback_id)).one_or_none()
            if row is None:
                raise KeyError(f"no callback {callback_id}")
            if row.acknowledged_at is not None or row.abandoned_at is not None:
                return  # a late report about a delivery already closed
            attempts = row.attempts + 1
            if acknowledged:
                values: dict[str, Any] = {"acknowledged_at": _stamp(now)}
            elif attempts > len(CALLBACK_RETRY_DELAYS):
                values = {"abandoned_at": _stamp(now)}
            else:
                values = {"next_attempt_at": _stamp(now + CALLBACK_RETRY_DELAYS[attempts - 1])}
            conn.execute(update(_callbacks).where(c.id == callback_id).values(attempts=attempts, **values))

    def deliver_due(self, now: datetime, post: Poster, *, pool: Executor | None = None) -> int:
        """Post every callback due at ``now`` with ``post`` and record each result; returns how many were posted.

        Acknowledged means HTTP 200 with exactly :data:`ACK_BODY`; anything else (another status,
        another body, an exception from ``post``) is retried on :data:`CALLBACK_RETRY_DELAYS`.

        ``now`` picks what is due. Each callback is then leased, signed and its result recorded at the
        moment that happens — ``now`` plus however far the channel's clock has moved since the pass began —
        as a channel signs when it sends: over a long backlog a signature made when the pass began would
        be older than the merchant accepts (5 minutes), and a lease taken then could run out mid-post.

        With ``pool``, callbacks of different orders are posted at once, as many as the pool runs (a
        real channel notifies many merchants' orders concurrently); the callbacks of one order are
        always posted one after another in their due order, so a duplicate or a stale "processing"
        notification still follows the final one.
        """
        began = self._clock.now()

        def moment() -> datetime:
            return now + (self._clock.now() - began)

        by_order: dict[str, list[_Due]] = {}
        for due in self._due(now):
            by_order.setdefault(due.order_no, []).append(due)

        def deliver(callbacks: list[_Due]) -> int:
            return sum(self._deliver(callback, post, moment) for callback in callbacks)

        if pool is None or len(by_order) < 2:
            return sum(deliver(callbacks) for callbacks in by_order.values())
        return sum(pool.map(deliver, by_order.values()))

    def _deliver(self, callback: _Due, post: Poster, moment: Callable[[], datetime]) -> bool:
        """Lease, sign, post and record one callback; False if another deliverer had taken it."""
        if not self._lease(callback.id, moment()):
            return False
        try:
            status, reply = post(callback.url, callback.body, self.sign(callback.body, moment()))
            acknowledged = status == 200 and reply == self.ack_body
        except Exception:  # the merchant's server is down or broken: the channel just retries
            acknowledged = False
        self.record_delivery(callback.id, acknowledged=acknowledged, now=moment())
        return True

    # -- sandbox-only test hooks (a real channel has none of these) ------------------------------

    def inject_foreign_order(self, order_no: str, *, amount_fen: int, kind: OrderKind = OrderKind.PAYOUT,
                             finished_at: datetime | None = None) -> None:
        """Record a succeeded order we never sent, so reconciliation finds one "missing on our side"."""
        at = finished_at or self._clock.now()
        with self._engine.begin() as conn:
            conn.execute(_orders.insert().values(
                order_no=order_no, kind=kind.value, amount_fen=amount_fen, reported_amount_fen=amount_fen,
                account_key="", account_last4="", behaviour=_Behaviour.FOREIGN.value,
                channel_txn_id=self._txn_id(order_no, at), final_status=ChannelStatus.SUCCEEDED.value,
                final_code=CODE_SUCCESS, final_message=_MESSAGES[CODE_SUCCESS], received_at=_stamp(at),
                finished_at=_stamp(at),
            ))

    def tamper_amount(self, order_no: str, amount_fen: int) -> None:
        """Make the channel report another amount for an order (an amount mismatch to reconcile)."""
        with self._engine.begin() as conn:
            changed = conn.execute(update(_orders).where(_orders.c.order_no == order_no)
                                   .values(reported_amount_fen=amount_fen)).rowcount
        if changed != 1:
            raise KeyError(f"no order {order_no}")

    def card_balance_fen(self, account_no: str) -> int | None:
        """The balance left on a collection test card (None until the card was first debited)."""
        with self._reading() as conn:
            return conn.execute(select(_balances.c.balance_fen)
                                .where(_balances.c.account_key == self._account_key(account_no))).scalar()

    # -- internals -------------------------------------------------------------------------------

    def _record(self, order: ChannelOrder, behaviour: _Behaviour, now: datetime) -> tuple[bool, Row[Any]]:
        """Insert the order unless its number exists (one statement: the unique key decides), then re-read.

        One BEGIN IMMEDIATE transaction, so a balance check and its debit cannot interleave with
        another process's.
        """
        account_key = self._account_key(order.account_no)
        with self._engine.begin() as conn:
            plan = self._plan(conn, order, behaviour, account_key, now)
            inserted = conn.execute(sqlite_insert(_orders).values(
                order_no=order.order_no, kind=order.kind.value, amount_fen=order.amount_fen,
                reported_amount_fen=order.amount_fen, account_key=account_key,
                account_last4=order.account_no[-4:], behaviour=behaviour.value,
                channel_txn_id=self._txn_id(order.order_no, now), final_status=plan.status.value,
                final_code=plan.code, final_message=_MESSAGES[plan.code], received_at=_stamp(now),
                finished_at=_stamp(plan.finished_at),
            ).on_conflict_do_nothing(index_elements=["order_no"])).rowcount == 1
            if inserted:
                if plan.debit_fen:
                    conn.execute(update(_balances).where(_balances.c.account_key == account_key)
                                 .values(balance_fen=_balances.c.balance_fen - plan.debit_fen))
                self._schedule_callbacks(conn, order, behaviour, plan)
            row = conn.execute(select(_orders).where(_orders.c.order_no == order.order_no)).one()
        return inserted, row

    def _plan(self, conn: Any, order: ChannelOrder, behaviour: _Behaviour, account_key: str,
              now: datetime) -> _Plan:
        """The order's outcome, fixed at acceptance like a bank's decision (to the whole second)."""
        settles_at = (now + self._settle).replace(microsecond=0)
        if behaviour is _Behaviour.REFUSED_CARD_FROZEN:
            return _Plan(ChannelStatus.FAILED, "CARD_FROZEN", now.replace(microsecond=0))
        if behaviour is _Behaviour.NAME_MISMATCH:
            return _Plan(ChannelStatus.FAILED, "ACCOUNT_NAME_MISMATCH", settles_at)
        if behaviour is _Behaviour.BALANCE and order.kind is OrderKind.COLLECTION:
            # The bank debits (or refuses) when it accepts the order; the result is reported later.
            conn.execute(sqlite_insert(_balances).values(
                account_key=account_key, balance_fen=_OPENING_BALANCES[order.account_no],
            ).on_conflict_do_nothing(index_elements=["account_key"]))
            balance = conn.execute(select(_balances.c.balance_fen)
                                   .where(_balances.c.account_key == account_key)).scalar_one()
            if order.amount_fen > balance:
                return _Plan(ChannelStatus.FAILED, "INSUFFICIENT_FUNDS", settles_at)
            return _Plan(ChannelStatus.SUCCEEDED, CODE_SUCCESS, settles_at, debit_fen=order.amount_fen)
        return _Plan(ChannelStatus.SUCCEEDED, CODE_SUCCESS, settles_at)

    def _schedule_callbacks(self, conn: Any, order: ChannelOrder, behaviour: _Behaviour, plan: _Plan) -> None:
        for reports, delay in _CALLBACKS.get(behaviour, ((_FINAL, 0),)):
            conn.execute(_callbacks.insert().values(
                order_no=order.order_no, notify_id=self._notify_id(order.order_no, reports), reports=reports,
                url=order.notify_url, next_attempt_at=_stamp(plan.finished_at + timedelta(seconds=delay)),
                attempts=0,
            ))

    def _lose_first_submission(self, order_no: str) -> bool:
        """True the first time an order number is sent (that submission is lost in transit)."""
        with self._engine.begin() as conn:
            if conn.execute(select(_orders.c.order_no).where(_orders.c.order_no == order_no)).first():
                return False
            return conn.execute(sqlite_insert(_lost_submissions).values(
                order_no=order_no, lost_at=_stamp(self._clock.now()),
            ).on_conflict_do_nothing(index_elements=["order_no"])).rowcount == 1

    def _lease(self, callback_id: int, now: datetime) -> bool:
        c = _callbacks.c
        with self._engine.begin() as conn:
            return conn.execute(
                update(_callbacks)
                .where(and_(c.id == callback_id, c.next_attempt_at <= _stamp(now), c.acknowledged_at.is_(None),
                            c.abandoned_at.is_(None)))
                .values(next_attempt_at=_stamp(now + DELIVERY_LEASE))
            ).rowcount == 1

    def _resubmission_answer(self, row: Row[Any], order: ChannelOrder, now: datetime) -> ChannelAnswer:
        current = self._answer(row, now)
        same = (row.amount_fen == order.amount_fen and row.kind == order.kind.value
                and hmac.compare_digest(row.account_key, self._account_key(order.account_no)))
        code = CODE_ORDER_EXISTS if same else CODE_ORDER_CONFLICT
        message = f"订单已存在：{current.message}" if same else _MESSAGES[CODE_ORDER_CONFLICT]
        return ChannelAnswer(current.order_no, current.status, current.channel_txn_id, code, message,
                             current.amount_fen, current.finished_at)

    def _answer(self, row: Row[Any], now: datetime, *, status: ChannelStatus | None = None,
                code: str | None = None) -> ChannelAnswer:
        """The order as the channel sees it at ``now``; ``status``/``code`` override for a submit's answer."""
        finished_at: datetime | None = _instant(row.finished_at)
        if status is not None:  # a submit's own answer (accepted, SYSTEMERROR) says nothing final
            finished_at = None
        elif now >= _instant(row.finished_at):
            status, code = ChannelStatus(row.final_status), code or row.final_code
        else:
            status, finished_at = ChannelStatus.PROCESSING, None
        code = code or CODE_PROCESSING
        return ChannelAnswer(row.order_no, status, row.channel_txn_id, code, _MESSAGES[code],
                             row.reported_amount_fen, finished_at)

    def _verify_signature(self, body: bytes, headers: Mapping[str, str]) -> int:
        header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
        if header is None:
            raise CallbackRejected(f"no {SIGNATURE_HEADER} header")
        fields = [part.strip().partition("=") for part in header.split(",")]
        timestamps = [value for key, _, value in fields if key == "t"]
        signatures = [value.encode() for key, _, value in fields if key == "v1"]
        if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]) or not signatures:
            raise CallbackRejected(f"malformed {SIGNATURE_HEADER} header")
        timestamp = int(timestamps[0])
        expected = self._signature(timestamp, body).encode()
        if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            raise CallbackRejected("signature does not match")
        return timestamp

    def _signature(self, timestamp: int, body: bytes) -> str:
        return hmac.new(self._secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()

    def _account_key(self, account_no: str) -> str:
        return hmac.new(self._secret, b"account:" + account_no.encode(), hashlib.sha256).hexdigest()

    def _txn_id(self, order_no: str, at: datetime) -> str:
        # Deterministic (same order number, same day → same id) so known-answer tests can name it.
        digest = hashlib.sha256(f"{self.name}:{order_no}".encode()).hexdigest()[:16].upper()
        return f"SBX{at.astimezone(BUSINESS_TZ):%Y%m%d}{digest}"

    def _notify_id(self, order_no: str, reports: str) -> str:
        return "NTF" + hashlib.sha256(f"{self.name}:{order_no}:{reports}".encode()).hexdigest()[:24]


def _open_store(path: Path) -> Engine:
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's begin event decides when transactions start
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock up front: two processes racing on one order number queue here instead
        # of one failing with "database is locked" when its read turns into a write. Reads need none.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("sandbox_read_only") else "BEGIN IMMEDIATE")

    with engine.begin() as conn:  # one transaction, so two processes creating the file do not collide
        _metadata.create_all(conn)
    return engine


def _invalid(order: ChannelOrder) -> str | None:
    if not isinstance(order.kind, OrderKind):
        return "交易类型错误"
    if not _ORDER_NO.fullmatch(order.order_no):
        return "商户订单号格式错误 (1-64 letters, digits, - or _)"
    if isinstance(order.amount_fen, bool) or not isinstance(order.amount_fen, int) or order.amount_fen <= 0:
        return "金额必须为正整数（分）"
    if not order.account_no or not order.account_name:
        return "收付款账户不能为空"
    if not order.notify_url.startswith(("https://", "http://")):
        return "通知地址格式错误"
    return None


def _callback_body(row: Row[Any], *, reports: str) -> bytes:
    final = reports == _FINAL
    payload = {
        "notify_id": row.notify_id,
        "order_no": row.order_no,
        "channel_txn_id": row.channel_txn_id,
        "status": row.final_status if final else ChannelStatus.PROCESSING.value,
        "code": row.final_code if final else CODE_PROCESSING,
        "message": row.final_message if final else _MESSAGES[CODE_PROCESSING],
        "amount_fen": row.reported_amount_fen,
        "finished_at": _wire_time(_instant(row.finished_at)) if final else None,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


_CALLBACK_STATUSES = (ChannelStatus.PROCESSING, ChannelStatus.SUCCEEDED, ChannelStatus.FAILED)


def _answer_from_body(body: bytes) -> ChannelAnswer:
    """Read a verified callback body strictly: anything unexpected is a rejection, never a guess."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CallbackRejected("body is not JSON") from exc
    if not isinstance(payload, dict):
        raise CallbackRejected("body is not a JSON object")
    texts = {key: payload.get(key) for key in ("notify_id", "order_no", "channel_txn_id", "status", "code",
                                              "message")}
    missing = [key for key, value in texts.items() if not isinstance(value, str) or not value]
    if missing:
        raise CallbackRejected(f"missing or not text: {', '.join(missing)}")
    amount = payload.get("amount_fen")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise CallbackRejected("amount_fen is not a whole number of fen")
    try:
        status = ChannelStatus(texts["status"])
    except ValueError as exc:
        raise CallbackRejected(f"unknown status {texts['status']!r}") from exc
    if status not in _CALLBACK_STATUSES:
        raise CallbackRejected(f"status {status.value!r} cannot come in a callback")
    finished_at = _parse_wire_time(payload.get("finished_at")) if status.is_final else None
    return ChannelAnswer(texts["order_no"], status, texts["channel_txn_id"], texts["code"], texts["message"],
                         amount, finished_at, notify_id=texts["notify_id"])


def _parse_wire_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise CallbackRejected("finished_at missing on a final status")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CallbackRejected("finished_at is not an ISO 8601 time") from exc
    if instant.tzinfo is None:
        raise CallbackRejected("finished_at has no UTC offset")
    return instant.astimezone(UTC)


def _stamp(instant: datetime) -> str:
    """Stored times: UTC, fixed width, so text order is time order."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _wire_time(instant: datetime) -> str:
    """Times as Chinese channels send them: Beijing time with its offset, to the second."""
    return instant.astimezone(BUSINESS_TZ).isoformat(timespec="seconds")


__all__ = [
    "ACCOUNT_CARD_FROZEN", "ACCOUNT_DUPLICATE_CALLBACK", "ACCOUNT_INSUFFICIENT_FUNDS", "ACCOUNT_LIMITED_BALANCE",
    "ACCOUNT_NAME_MISMATCH", "ACCOUNT_NO_CALLBACK", "ACCOUNT_OK", "ACCOUNT_OUT_OF_ORDER_CALLBACKS",
    "ACCOUNT_SYSTEM_ERROR_FAILED", "ACCOUNT_SYSTEM_ERROR_UNKNOWN", "ACCOUNT_TIMEOUT_LOST",
    "ACCOUNT_TIMEOUT_RECORDED", "ACK_BODY", "CALLBACK_RETRY_DELAYS", "LIMITED_BALANCE_FEN",
    "RECONCILIATION_COLUMNS", "SIGNATURE_HEADER", "PendingCallback", "SandboxChannel",
]
