"""The audit log as staff see it: newest first, with each entry's chain position and seal state, searched by
actor, subject, action prefix and time (the console's audit viewer) and read out in chunks for an export.

Pages are keyset pages in the order ``(occurred_at, id)`` descending, never OFFSET: the cursor is the last
entry's id, and every filter has an index ending in that order (migration 0019), so a page of a filtered
1,000,000-entry log is one short index range read (bench/audit.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select, tuple_
from sqlalchemy.orm import Session

from miaodai.core.audit import AuditEntry, AuditLog, ChainReport, verify_chain
from miaodai.core.clock import Clock
from miaodai.core.db import Database, dialect_of
from miaodai.identity.models import StaffUser

MAX_TEXT = 64  # actor, subject and action are VARCHAR(64)


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before_id: int | None


@dataclass(frozen=True)
class AuditFilter:
    """Which entries: every given condition holds (an empty filter is the whole log).

    ``subjects``: entries about any of them, or written by ``subjects_actor`` (a borrower's own subject list
    and the borrower as actor); ``action_prefix``: ``staff.`` finds ``staff.login_failed``; the time range is
    ``since`` ≤ occurred_at < ``until``."""

    actor: str | None = None
    subjects: tuple[str, ...] | None = None
    subjects_actor: str | None = None
    action_prefix: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def described(self) -> dict[str, Any]:
        """The filter as an audit entry's details (what an export covered): no personal data, ids only."""
        return {
            "actor": self.actor, "subjects": len(self.subjects) if self.subjects is not None else None,
            "subjects_actor": self.subjects_actor, "action_prefix": self.action_prefix,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


def _after(prefix: str) -> str:
    """The least string above every string that starts with ``prefix`` (in code point order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


# A prefix with at least this many entries is "common" on SQLite (see _filtered); counting them stops there.
PREFIX_PROBE = 5000


def _common_prefix(session: Session, low: str, high: str) -> bool:
    probe = select(AuditEntry.id).where(AuditEntry.action >= low, AuditEntry.action < high).limit(PREFIX_PROBE)
    return session.execute(select(func.count()).select_from(probe.subquery())).scalar_one() >= PREFIX_PROBE


def _filtered(session: Session, stmt: Select[Any], where: AuditFilter) -> Select[Any]:
    if where.actor is not None:
        stmt = stmt.where(AuditEntry.actor == where.actor)
    if where.subjects is not None:
        about = AuditEntry.subject.in_(where.subjects)
        stmt = stmt.where(or_(about, AuditEntry.actor == where.subjects_actor) if where.subjects_actor else about)
    if where.action_prefix:
        low, high = where.action_prefix, _after(where.action_prefix)
        if dialect_of(session) == "postgresql":
            # Byte-order comparisons, which the varchar_pattern_ops index serves under any collation.
            stmt = stmt.where(AuditEntry.action.op("~>=~")(low), AuditEntry.action.op("~<~")(high))
        else:  # SQLite compares text in byte order (BINARY), the index's order
            # SQLite keeps no statistics to weigh a range: a prefix of many entries (`loan.`) would be read from
            # the action index and all of them sorted; `action || ''` hides that index, so the page is read
            # backwards from the time index and filtered (≥ 1 match in PREFIX_PROBE rows on average).
            common = _common_prefix(session, low, high)
            action = AuditEntry.action.concat("") if common else AuditEntry.action
            stmt = stmt.where(action >= low, action < high)
    if where.since is not None:
        stmt = stmt.where(AuditEntry.occurred_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(AuditEntry.occurred_at < where.until)
    return stmt


def _page(session: Session, where: AuditFilter, limit: int, before_id: int | None) -> tuple[list[AuditEntry], bool]:
    stmt = _filtered(session, select(AuditEntry), where)
    if before_id is not None:
        cursor = session.execute(select(AuditEntry.occurred_at).where(AuditEntry.id == before_id)).scalar()
        if cursor is None:
            return [], False  # not an entry (a hand-made address): nothing after it
        stmt = stmt.where(tuple_(AuditEntry.occurred_at, AuditEntry.id) < (cursor, before_id))
    stmt = stmt.order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc()).limit(limit + 1)
    rows = list(session.execute(stmt).scalars())
    return rows[:limit], len(rows) > limit


def audit_search(db: Database, where: AuditFilter, *, limit: int, before_id: int | None = None) -> AuditPage:
    """One page of the entries ``where`` finds, newest first; pass ``next_before_id`` back for the next."""
    if where.subjects == ():
        return AuditPage([], None)
    with db.autocommit() as session:
        rows, more = _page(session, where, limit, before_id)
    return AuditPage(rows, rows[-1].id if more and rows else None)


def audit_page(db: Database, *, limit: int, before_id: int | None = None) -> AuditPage:
    """One page of the whole log, newest first; pass ``next_before_id`` back to get the next page."""
    return audit_search(db, AuditFilter(), limit=limit, before_id=before_id)


def audit_entries(db: Database, where: AuditFilter, *, chunk: int = 1000) -> Iterator[AuditEntry]:
    """Every entry ``where`` finds, newest first, read ``chunk`` at a time (each read a statement of its own: an
    export of the whole log holds no transaction open and never has more than one chunk in memory)."""
    before_id: int | None = None
    while True:
        page = audit_search(db, where, limit=chunk, before_id=before_id)
        yield from page.entries
        if page.next_before_id is None:
            return
        before_id = page.next_before_id


def audit_entry(db: Database, entry_id: int) -> AuditEntry | None:
    with db.autocommit() as session:
        return session.get(AuditEntry, entry_id)


def verify_recorded(db: Database, clock: Clock, audit: AuditLog, *, actor: str,
                    unsealed_bound: timedelta) -> ChainReport:
    """:func:`verify_chain` on a staff member's request, and an audit entry of who checked and what they found."""
    report = verify_chain(db, clock, unsealed_bound=unsealed_bound)
    first = report.first_break
    with db.transaction() as session:
        audit.record(session, actor=actor, action="audit.chain_verified", subject="audit_chain", details={
            "sealed": report.sealed, "intact": report.intact, "first_bad_entry_id": first.entry_id if first else None,
            "first_bad_seq": first.seq if first else None, "stale_unsealed": len(report.stale_unsealed)})
    return report


def export_recorded(db: Database, audit: AuditLog, where: AuditFilter, *, actor: str, form: str,
                    borrower_id: int | None = None) -> Iterator[AuditEntry]:
    """An export of what ``where`` finds: the audit entry of who exported which range is committed first, then
    the entries follow chunk by chunk (:func:`audit_entries`)."""
    with db.transaction() as session:
        audit.record(session, actor=actor, action="audit.exported", subject="audit_chain",
                     details={**where.described(), "borrower_id": borrower_id, "format": form})
    return audit_entries(db, where)


@dataclass(frozen=True)
class StaffName:
    """Who a ``staff:<id>`` actor is, as a page shows it beside the raw actor."""

    staff_id: int
    username: str
    display_name: str


STAFF_ACTOR = "staff:"


def staff_names(db: Database, actors: Iterable[str]) -> dict[str, StaffName]:
    """The staff members among ``actors`` (``staff:<id>``), keyed by that actor, in one statement however many
    there are (none when no actor is a staff member). An id with no account (a hand-written entry) is left out."""
    ids = {int(number) for actor in actors
           if actor.startswith(STAFF_ACTOR) and (number := actor[len(STAFF_ACTOR):]).isascii() and number.isdigit()
           and len(number) <= 18}
    if not ids:
        return {}
    with db.autocommit() as session:
        rows = session.execute(select(StaffUser.id, StaffUser.username, StaffUser.display_name)
                               .where(StaffUser.id.in_(sorted(ids))))
        return {f"{STAFF_ACTOR}{staff_id}": StaffName(staff_id, username, display_name)
                for staff_id, username, display_name in rows}


def entry_details(entry: AuditEntry) -> dict[str, Any] | None:
    """The recorded details, or None when the body no longer parses (an edit `audit verify` names)."""
    try:
        details = json.loads(entry.body).get("details", {})
    except (ValueError, AttributeError):
        return None
    return details if isinstance(details, dict) else None
