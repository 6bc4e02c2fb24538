"""``Idempotency-Key`` for money-moving POSTs: a retry gets the first response, never a second payout.

An endpoint asks for :data:`IdempotencyDep` and wraps its use case::

    return idem.run(f"borrower:{auth.borrower_id}", status_code=201, handler=lambda: service.do(...))

:meth:`Idempotency.run` claims the key, runs the handler once and stores its response; the same key
with the same request then replays that response byte for byte (``Idempotent-Replayed: true``), with
another request is a 422, and while the first is still running a 409 with ``Retry-After``.

How one request wins a key, on both databases
---------------------------------------------
The claim is one ``INSERT ... ON CONFLICT (scope, key) DO NOTHING RETURNING id`` statement, committed
on its own (``Database.autocommit()``): a returned id means this request holds the key, no row means
someone else does. Both PostgreSQL and SQLite (3.35+) have this statement. It is chosen over a plain
INSERT that catches ``IntegrityError`` (under a savepoint, were it inside a transaction) because a
taken key is the expected answer here, not an error: no failed statement, no aborted transaction to
roll back, no ERROR line in the PostgreSQL log for every retry, and one round trip. Its conflict target
names (scope, key), so any other constraint still raises. On PostgreSQL a second inserter of the same
key waits for the first's commit and then does nothing; SQLite serialises the writers (WAL, busy
timeout). The claim commits before the handler runs so that a concurrent retry sees the key in flight
and is answered 409 at once instead of waiting behind the handler's transaction.

The holder's lease (``locked_until``) is also its fencing token: storing the response and releasing the
key are UPDATE/DELETE statements conditioned on the row still being in flight with that ``locked_until``.
A request whose process died leaves its row in flight; once the lease has run out, one retry takes it
over with a conditional UPDATE (``status_code IS NULL AND locked_until <= now``) that only one taker can
win: PostgreSQL re-checks the condition on the row the winner updated, SQLite runs one writer at a time.
A lease is time-bound, so ``idempotency_lock_seconds`` must outlast the slowest money-moving request.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import delete, or_, select, update

from miaodai.core.clock import Clock
from miaodai.core.db import Database, dialect_insert, rows_changed
from miaodai.core.errors import DomainError, ErrorSpec
from miaodai.core.idempotency_models import IdempotencyRecord

log = structlog.get_logger("miaodai.idempotency")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"[A-Za-z0-9_:.\-]{1,128}")
PURGE_BATCH = 1000
# A claim is retried when the key vanishes or changes hands between two statements; more would be a storm.
CLAIM_ATTEMPTS = 3


class IdempotencyErrors:
    """The key layer's problems, the same on every money-moving POST (drawdowns included)."""

    KEY_REQUIRED = ErrorSpec(
        "IDEMPOTENCY_KEY_REQUIRED", 400, "Idempotency-Key header required",
        "涉及资金的请求须带 Idempotency-Key 请求头。", "Requests that move money need an Idempotency-Key header.",
        "请生成一个唯一值（如 UUID）放入 Idempotency-Key 请求头，重试时使用同一个值。",
        "Send a unique value (e.g. a UUID) in the Idempotency-Key header, and the same value when retrying.",
    )
    KEY_INVALID = ErrorSpec(
        "IDEMPOTENCY_KEY_INVALID", 400, "Idempotency-Key header invalid",
        "Idempotency-Key 须为 1 至 128 个字符，只能包含字母、数字及 - _ : .。",
        "The Idempotency-Key must be 1 to 128 characters of letters, digits and - _ : .",
        "请使用 UUID 等符合要求的值，重试时使用同一个值。",
        "Use a value such as a UUID, and the same value when retrying.",
    )
    KEY_REUSED = ErrorSpec(
        "IDEMPOTENCY_KEY_REUSED", 422, "Idempotency-Key already used for another request",
        "此 Idempotency-Key 已用于另一个不同的请求。", "This Idempotency-Key was already used for a different request.",
        "新的请求请使用新的 Idempotency-Key；重试原请求时请保持请求内容不变。",
        "Use a new Idempotency-Key for a new request; to retry the original, send it unchanged.",
    )
    REQUEST_IN_FLIGHT = ErrorSpec(
        "IDEMPOTENCY_REQUEST_IN_FLIGHT", 409, "The first request with this key is still being processed",
        "使用此 Idempotency-Key 的请求仍在处理中。", "A request with this Idempotency-Key is still being processed.",
        "请在 {retry_after_seconds} 秒后用同一个 Idempotency-Key 重试，届时将返回该请求的结果。",
        "Retry with the same Idempotency-Key in {retry_after_seconds} s to get its result.",
    )


@dataclass(frozen=True, slots=True)
class Lease:
    """This request holds the key until ``locked_until``, which also fences its later writes."""

    record_id: int
    locked_until: datetime


@dataclass(frozen=True, slots=True)
class SeenKey:
    record_id: int
    request_sha256: str
    status_code: int | None
    response_body: str | None
    locked_until: datetime


@dataclass(frozen=True)
class IdempotencyStore:
    """The ``idempotency_keys`` table, one self-contained statement at a time."""

    db: Database
    clock: Clock
    ttl: timedelta
    lock: timedelta

    def claim(self, scope: str, key: str, *, method: str, path: str, fingerprint: str) -> Lease | None:
        now = self.clock.now()
        lease_end = now + self.lock
        statement = (
            dialect_insert(self.db.dialect)(IdempotencyRecord)
            .values(scope=scope, key=key, method=method, path=path[:200], request_sha256=fingerprint,
                    created_at=now, locked_until=lease_end, expires_at=now + self.ttl)
            .on_conflict_do_nothing(index_elements=["scope", "key"])
            .returning(IdempotencyRecord.id)
        )
        with self.db.autocommit() as session:
            record_id = session.execute(statement).scalar_one_or_none()
        return None if record_id is None else Lease(record_id, lease_end)

    def find(self, scope: str, key: str) -> SeenKey | None:
        r = IdempotencyRecord
        query = select(r.id, r.request_sha256, r.status_code, r.response_body, r.locked_until).where(
            r.scope == scope, r.key == key)
        with self.db.autocommit() as session:
            row = session.execute(query).one_or_none()
        return None if row is None else SeenKey(*row)

    def take_over(self, seen: SeenKey) -> Lease | None:
        """Take an abandoned key (in flight, lease run out); of several takers exactly one wins."""
        now = self.clock.now()
        lease_end = now + self.lock
        r = IdempotencyRecord
        statement = (
            update(r)
            .where(r.id == seen.record_id, r.status_code.is_(None), r.locked_until <= now)
            .values(locked_until=lease_end, expires_at=now + self.ttl)
            .execution_options(synchronize_session=False)
        )
        with self.db.autocommit() as session:
            won = rows_changed(session.execute(statement)) == 1
        return Lease(seen.record_id, lease_end) if won else None

    def complete(self, lease: Lease, *, status_code: int, body: str) -> bool:
        """Store the response; False when the lease was lost (taken over) and nothing was stored."""
        now = self.clock.now()
        r = IdempotencyRecord
        statement = (
            update(r)
            .where(r.id == lease.record_id, r.status_code.is_(None), r.locked_until == lease.locked_until)
            .values(status_code=status_code, response_body=body, completed_at=now, expires_at=now + self.ttl)
            .execution_options(synchronize_session=False)
        )
        with self.db.autocommit() as session:
            return rows_changed(session.execute(statement)) == 1

    def release(self, lease: Lease) -> None:
        """Give the key back: the request had no effect, so a retry may run it again."""
        r = IdempotencyRecord
        statement = (
            delete(r)
            .where(r.id == lease.record_id, r.status_code.is_(None), r.locked_until == lease.locked_until)
            .execution_options(synchronize_session=False)
        )
        with self.db.autocommit() as session:
            session.execute(statement)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the method, the path (with its query string) and the body bytes, unambiguously framed."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode()):
        digest.update(b"%d:" % len(part))
        digest.update(part)
    digest.update(body)
    return digest.hexdigest()


def render_json(content: Any) -> bytes:
    """The bytes FastAPI would send for ``content`` (its encoder, its default JSONResponse)."""
    return bytes(JSONResponse(jsonable_encoder(content)).body)  # typed bytes | memoryview; always bytes here


class Idempotency:
    """One request's key and fingerprint; :meth:`run` executes its handler at most once per key."""

    def __init__(self, store: IdempotencyStore, *, key: str, method: str, path: str, body: bytes) -> None:
        self.store, self.key, self.method, self.path = store, key, method, path
        self.fingerprint = request_fingerprint(method, path, body)

    def run(self, scope: str, *, status_code: int, handler: Callable[[], Any]) -> Response:
        if len(scope) > 64:
            raise ValueError(f"idempotency scope longer than 64 characters: {scope!r}")
        for _ in range(CLAIM_ATTEMPTS):
            lease = self.store.claim(scope, self.key, method=self.method, path=self.path,
                                     fingerprint=self.fingerprint)
            if lease is not None:
                return self._execute(lease, status_code, handler)
            seen = self.store.find(scope, self.key)
            if seen is None:
                continue  # the holder failed and gave the key back in between: claim it again
            if seen.request_sha256 != self.fingerprint:
                raise DomainError(IdempotencyErrors.KEY_REUSED)
            if seen.status_code is not None:
                return _replay(seen)
            now = self.store.clock.now()
            if seen.locked_until > now:
                raise _in_flight(math.ceil((seen.locked_until - now).total_seconds()))
            lease = self.store.take_over(seen)
            if lease is not None:
                log.warning("idempotency_key_taken_over", scope=scope, record_id=seen.record_id)
                return self._execute(lease, status_code, handler)
            # Another retry took it over first: look again (it is now in flight or done).
        raise _in_flight(math.ceil(self.store.lock.total_seconds()))

    def _execute(self, lease: Lease, status_code: int, handler: Callable[[], Any]) -> Response:
        try:
            result = handler()
            if isinstance(result, Response):
                raise TypeError("an idempotent handler returns the response's content, not a Response")
            body = render_json(result)
        except Exception:
            self._release_quietly(lease)
            raise
        try:
            stored = self.store.complete(lease, status_code=status_code, body=body.decode("utf-8"))
        except Exception:
            # The handler has done its work (money may have moved): a 500 would invite a retry, and a retry
            # after the lease would run it again. Answer what happened; the key stays in flight meanwhile.
            log.exception("idempotency_response_not_stored", record_id=lease.record_id)
        else:
            if not stored:
                log.error("idempotency_lease_lost", record_id=lease.record_id,
                          hint="the request outlasted idempotency_lock_seconds and a retry took it over")
        return Response(body, status_code=status_code, media_type="application/json")

    def _release_quietly(self, lease: Lease) -> None:
        try:
            self.store.release(lease)
        except Exception:  # the handler's exception is the one to report; the lease runs out on its own
            log.exception("idempotency_key_not_released", record_id=lease.record_id)


def _replay(seen: SeenKey) -> Response:
    if seen.status_code is None or seen.response_body is None:
        raise ValueError(f"idempotency key {seen.record_id} has no response to replay")
    return Response(seen.response_body.encode("utf-8"), status_code=seen.status_code,
                    media_type="application/json", headers={REPLAYED_HEADER: "true"})


def _in_flight(seconds: int) -> DomainError:
    seconds = max(seconds, 1)
    return DomainError(IdempotencyErrors.REQUEST_IN_FLIGHT, params={"retry_after_seconds": seconds},
                       headers={"Retry-After": str(seconds)})


def store_of(container: Any) -> IdempotencyStore:
    settings = container.settings
    return IdempotencyStore(container.db, container.clock, ttl=timedelta(hours=settings.idempotency_ttl_hours),
                            lock=timedelta(seconds=settings.idempotency_lock_seconds))


async def idempotency(request: Request) -> Idempotency:
    """The request's key, checked, and its fingerprint. Async to read the body: Starlette keeps it on the
    Request (``request.body()`` caches it), which FastAPI shares with the body parameters, so both see it."""
    keys = request.headers.getlist(HEADER)
    if not keys or not keys[0].strip():
        raise DomainError(IdempotencyErrors.KEY_REQUIRED)
    if len(keys) > 1 or not KEY_PATTERN.fullmatch(keys[0]):
        raise DomainError(IdempotencyErrors.KEY_INVALID)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Idempotency(store_of(request.app.state.container), key=keys[0], method=request.method, path=path,
                       body=await request.body())


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]


def purge_expired(db: Database, now: datetime, *, batch_size: int = PURGE_BATCH) -> int:
    """Delete keys past ``expires_at``, a batch per statement; returns how many went.

    Completed keys go; so do keys abandoned in flight (lease run out) that are past ``expires_at`` too.
    The conditions are repeated outside the batch's subquery so that a key taken over meanwhile stays.
    """
    r = IdempotencyRecord
    expired = (r.expires_at < now, or_(r.status_code.is_not(None), r.locked_until < now))
    total = 0
    while True:
        batch = select(r.id).where(*expired).order_by(r.expires_at).limit(batch_size)
        statement = delete(r).where(r.id.in_(batch), *expired).execution_options(synchronize_session=False)
        with db.autocommit() as session:
            deleted = rows_changed(session.execute(statement))
        total += deleted
        if deleted < batch_size:
            return total
