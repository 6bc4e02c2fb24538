"""The audit log as staff see it: newest first, with each entry's chain position and seal state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from miaodai.core.audit import AuditEntry
from miaodai.core.db import Database


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before_id: int | None


def audit_page(db: Database, *, limit: int, before_id: int | None = None) -> AuditPage:
    """One page of entries by descending id; pass ``next_before_id`` back to get the next page."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    with db.transaction() as session:
        rows = list(session.execute(stmt).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, rows[-1].id if more and rows else None)


def entry_details(entry: AuditEntry) -> dict[str, Any] | None:
    """The recorded details, or None when the body no longer parses (an edit `audit verify` names)."""
    try:
        details = json.loads(entry.body).get("details", {})
    except (ValueError, AttributeError):
        return None
    return details if isinstance(details, dict) else None
