"""Append-only, hash-chained audit log.

Writers add an entry in the same transaction as the change it records, without
touching any shared row, so they never queue on a chain head. A background sealer
(one at a time, serialised by a lock on ``audit_chain_head``) takes every committed
entry not yet sealed, in id order, gives each the next chain position ``seq`` and
``entry_hash = SHA-256(prev_hash | seq | id | body)``.

Ids come from a sequence and can commit out of order: the sealer selects on
``seq IS NULL`` rather than "id greater than the last one", so a late commit simply
lands in a later batch. :func:`verify_chain` walks the chain by ``seq`` and names
the first entry whose position, link or hash does not hold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Index, String, Text, insert, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from miaodai.core.clock import Clock, as_utc
from miaodai.core.db import Base, Database, IdType, UTCDateTime, table_of

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    # Canonical JSON of everything above plus the details; the hash covers this text.
    body: Mapped[str] = mapped_column(Text)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # The audit viewer reads newest first by (occurred_at, id), with keyset paging: one index per filter, each
    # ending in that order, so a filtered page is an index range read backwards (identity/staff_audit.py).
    # The action's is a byte-order (pattern) index on PostgreSQL so that a prefix is a range whatever the
    # database's collation.
    __table_args__ = (
        Index(
            "ix_audit_entries_unsealed",
            "id",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
        Index("ix_audit_entries_time", "occurred_at", "id"),
        Index("ix_audit_entries_actor_time", "actor", "occurred_at", "id"),
        Index("ix_audit_entries_subject_time", "subject", "occurred_at", "id"),
        Index("ix_audit_entries_action_time", "action", "occurred_at", "id",
              postgresql_ops={"action": "varchar_pattern_ops"}),
    )


class AuditChainHead(Base):
    """The last sealed position. Only the sealer writes (and locks) this row."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(prev_hash: str, seq: int, entry_id: int, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{seq}|{entry_id}|{body}".encode()).hexdigest()


class AuditLog:
    """Writes audit entries inside the caller's transaction. Never put personal data in ``details``."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def record(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        subject: str,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        entry = AuditEntry(**self._values(actor, action, subject, details))
        session.add(entry)
        return entry

    def write(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        subject: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """:meth:`record` as one INSERT now, with no ORM object to flush: for hot paths that need no entry back."""
        session.connection().execute(_INSERT_ENTRY, self._values(actor, action, subject, details))

    def _values(self, actor: str, action: str, subject: str, details: dict[str, Any] | None) -> dict[str, Any]:
        # Normalised to UTC: the sealed body must match the column as both databases read it back.
        at = as_utc(self._clock.now())
        body = canonical_json(
            {
                "occurred_at": at.isoformat(),
                "actor": actor,
                "action": action,
                "subject": subject,
                "details": details or {},
            }
        )
        return {"occurred_at": at, "actor": actor, "action": action, "subject": subject, "body": body}


_INSERT_ENTRY = insert(table_of(AuditEntry))


def seal_pending(db: Database, clock: Clock, *, batch_size: int = 2000) -> int:
    """Seal committed, unsealed entries into the chain; returns how many were sealed."""
    sealed = 0
    while True:
        with db.transaction() as session:
            head = session.execute(
                select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
            ).scalar_one_or_none()
            if head is None:
                head = AuditChainHead(id=1, last_seq=0, last_hash=GENESIS_HASH)
                session.add(head)
                session.flush()
            pending = (
                session.execute(
                    select(AuditEntry).where(AuditEntry.seq.is_(None)).order_by(AuditEntry.id).limit(batch_size)
                )
                .scalars()
                .all()
            )
            if not pending:
                return sealed
            now = clock.now()
            seq, prev = head.last_seq, head.last_hash
            for entry in pending:
                seq += 1
                entry.seq = seq
                entry.prev_hash = prev
                entry.entry_hash = entry_hash(prev, seq, entry.id, entry.body)
                entry.sealed_at = now
                prev = entry.entry_hash
            head.last_seq, head.last_hash, head.updated_at = seq, prev, now
            sealed += len(pending)
        if len(pending) < batch_size:
            return sealed


@dataclass(frozen=True)
class ChainFinding:
    entry_id: int | None
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"entry id={self.entry_id} seq={self.seq}" if self.entry_id is not None else "chain head"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class ChainReport:
    sealed: int
    first_break: ChainFinding | None
    stale_unsealed: list[ChainFinding]

    @property
    def intact(self) -> bool:
        return self.first_break is None


# How many sealed entries one read of the walk takes: each chunk is one short statement of its own, so the walk
# holds no lock and no transaction between chunks (see verify_chain).
VERIFY_CHUNK = 5000

_CHAIN_COLUMNS = (
    AuditEntry.id, AuditEntry.seq, AuditEntry.prev_hash, AuditEntry.entry_hash, AuditEntry.body,
    AuditEntry.actor, AuditEntry.action, AuditEntry.subject, AuditEntry.occurred_at,
)


def _sealed_chunk(db: Database, after_seq: int | None, limit: int) -> list[Any]:
    """Sealed entries in chain order after ``after_seq`` (None: from the lowest ``seq``, however tampered)."""
    stmt = select(*_CHAIN_COLUMNS).where(AuditEntry.seq.is_not(None))
    if after_seq is not None:
        stmt = stmt.where(AuditEntry.seq > after_seq)
    with db.autocommit() as session:
        return list(session.execute(stmt.order_by(AuditEntry.seq).limit(limit)))


def _check_entry(entry: Any, expected_seq: int, prev: str) -> str | None:
    if entry.seq != expected_seq:
        return f"expected chain position {expected_seq}, found {entry.seq} (an entry is missing or moved)"
    if entry.prev_hash != prev:
        return "link to the previous entry is broken (an entry was removed, inserted or reordered)"
    if entry.entry_hash != entry_hash(prev, expected_seq, entry.id, entry.body):
        return "hash does not match the entry's content (the entry was edited)"
    try:
        body = json.loads(entry.body)
    except ValueError:
        return "body is not valid JSON (the entry was edited)"
    columns = {"actor": entry.actor, "action": entry.action, "subject": entry.subject}
    if any(body.get(name) != value for name, value in columns.items()):
        return "columns disagree with the sealed body (the entry was edited)"
    if body.get("occurred_at") != entry.occurred_at.isoformat():
        return "timestamp disagrees with the sealed body (the entry was edited)"
    return None


def _read_head(db: Database) -> tuple[int, str]:
    with db.autocommit() as session:
        head = session.get(AuditChainHead, 1)
        return (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)


def _head_finding(head: tuple[int, str], count: int, prev: str) -> ChainFinding | None:
    """The chain head must end where the walk ended; otherwise entries vanished from or joined the end."""
    last_seq, last_hash = head
    if last_seq == count and last_hash == prev:
        return None
    if last_seq > count:
        what = f"entries seq {count + 1}..{last_seq} were deleted from the end"
    elif last_seq < count:
        what = f"entries seq {last_seq + 1}..{count} were added behind the sealer's back"
    else:
        what = f"entry seq {count} was replaced"
    return ChainFinding(
        None, None,
        f"chain head says {last_seq} entries ending in {last_hash[:12]}…, the table has "
        f"{count} ending in {prev[:12]}… ({what})",
    )


def verify_chain(db: Database, clock: Clock, *, unsealed_bound: timedelta, chunk: int = VERIFY_CHUNK) -> ChainReport:
    """Walk the chain in order; report the first break and entries left unsealed too long.

    The walk reads ``chunk`` entries at a time, each read a statement of its own outside any transaction: it
    holds no lock while it hashes (on SQLite a transaction would be ``BEGIN IMMEDIATE``, the database's one
    write lock, for the whole walk), so writers and the sealer go on meanwhile. That is safe because a sealed
    entry never changes and the sealer only appends: the chain head is read after the walk, and when the sealer
    moved it on meanwhile, the walk goes on to the entries it sealed (they committed with the head) before the
    head must match.
    """
    first_break: ChainFinding | None = None
    count, prev, last_seq = 0, GENESIS_HASH, None
    head: tuple[int, str] | None = None
    while first_break is None:
        rows = _sealed_chunk(db, last_seq, chunk)
        for entry in rows:
            problem = _check_entry(entry, count + 1, prev)
            if problem:
                first_break = ChainFinding(entry.id, entry.seq, problem)
                break
            prev, last_seq, count = entry.entry_hash or "", entry.seq, count + 1
        if first_break is not None or len(rows) == chunk:
            continue
        if head is None or rows:
            head = _read_head(db)  # after the entries: every entry it counts had committed before this read
            if head[0] > count:
                continue  # the sealer sealed more while we walked: walk on to its head
        first_break = _head_finding(head, count, prev)
        break
    cutoff = clock.now() - unsealed_bound
    with db.autocommit() as session:
        stale = session.execute(
            select(AuditEntry.id, AuditEntry.occurred_at)
            .where(AuditEntry.seq.is_(None), AuditEntry.occurred_at < cutoff)
            .order_by(AuditEntry.id)
            .limit(100)
        ).all()
    findings = [ChainFinding(row.id, None, f"unsealed since {row.occurred_at.isoformat()}") for row in stale]
    return ChainReport(count, first_break, findings)


class Sealer:
    """Background thread that seals the chain every ``interval`` seconds."""

    def __init__(self, db: Database, clock: Clock, interval: float) -> None:
        self._db, self._clock, self._interval = db, clock, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                seal_pending(self._db, self._clock)
            except Exception:  # keep sealing: an unsealed backlog is reported by `audit verify`
                log.exception("audit sealer pass failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            seal_pending(self._db, self._clock)
        except Exception:
            log.exception("final audit seal failed")
