"""Set-based posting: many journal entries from one SELECT, for the end-of-day batch.

:func:`miaodai.ledger.service.post` writes one entry per call; a batch that posts tens of thousands of
entries a night does it in a few statements instead, under the same rules and the same database
guarantees (the triggers of migration 0003 check every entry at COMMIT exactly as they do for
``post``):

1. The source rows (one per entry: ``loan_id``, ``idempotency_key``, ``memo`` and amounts ``x0``..``x3``)
   are staged in a temporary table, each with an entry id taken in advance — from the journal's
   sequence on PostgreSQL, as max + row number on SQLite (whose writer holds the database's write lock).
   Rows whose key is already in the journal are left out, so re-running a chunk posts nothing twice.
2. Legs first, one ``INSERT ... SELECT`` per leg of the template, skipping zero amounts.
3. Headers last: the header seals its entry (see :mod:`miaodai.ledger.models`).

The caller supplies legs that balance for every row (``x0`` and ``-x0``); if they do not, the commit is
refused by the database and nothing of the chunk is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, bindparam, func, select, text
from sqlalchemy.orm import Session

from miaodai.core.db import UTCDateTime, dialect_of
from miaodai.ledger.accounts import Account
from miaodai.ledger.models import JournalEntry, JournalLeg

AMOUNTS = ("x0", "x1", "x2", "x3")
STAGE = "ledger_bulk_stage"
_STAGE_DDL = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} (entry_id BIGINT PRIMARY KEY, loan_id BIGINT, "
    "idempotency_key VARCHAR(128) NOT NULL, memo TEXT NOT NULL, "
    + ", ".join(f"{x} BIGINT NOT NULL DEFAULT 0" for x in AMOUNTS) + ")"
)


def post_many(
    session: Session,
    *,
    source_sql: str,
    params: Mapping[str, Any],
    amounts: Sequence[str],
    legs: Sequence[tuple[Account, str]],
    kind: str,
    business_date: date,
    now: datetime,
    totals: dict[str, int] | None = None,
) -> int:
    """Post one entry per row of ``source_sql`` and return how many were posted.

    ``source_sql`` selects ``loan_id, idempotency_key, memo`` and then the amount columns named in
    ``amounts`` (at most four, staged as ``x0``..``x3``); ``legs`` are ``(account, expression)`` pairs
    over ``x0``..``x3`` (e.g. ``(INTEREST_RECEIVABLE, "x0"), (INTEREST_INCOME, "-x0")``). Cash legs
    (which need a channel) are not supported here. With ``totals``, the fen posted in each amount column
    (of the rows posted, not those already in the journal) is added to ``totals[name]`` (for the batch's
    audit record).
    """
    if not 1 <= len(amounts) <= len(AMOUNTS):
        raise ValueError(f"between 1 and {len(AMOUNTS)} amount columns")
    if any(account is Account.CASH for account, _ in legs):
        raise ValueError("bulk postings carry no cash legs")
    staged = AMOUNTS[: len(amounts)]
    postgres = dialect_of(session) == "postgresql"
    session.execute(text(_STAGE_DDL))
    session.execute(text(f"DELETE FROM {STAGE}"))  # noqa: S608 - constant
    if postgres:
        entry_id = "nextval(pg_get_serial_sequence('journal_entries', 'id'))"
        bound: dict[str, Any] = dict(params)
    else:
        entry_id = ":_base + ROW_NUMBER() OVER ()"
        bound = {**params, "_base": _sqlite_last_entry_id(session)}
    columns = ", ".join(staged)
    session.execute(text(
        f"INSERT INTO {STAGE} (entry_id, loan_id, idempotency_key, memo, {columns}) "  # noqa: S608 - constant parts
        f"SELECT {entry_id}, s.loan_id, s.idempotency_key, s.memo, {', '.join(f's.{a}' for a in amounts)} "
        f"FROM ({source_sql}) s WHERE NOT EXISTS "
        "(SELECT 1 FROM journal_entries e WHERE e.idempotency_key = s.idempotency_key)"
    ), bound)
    if totals is not None:
        sums = session.execute(text(
            f"SELECT {', '.join(f'COALESCE(SUM({x}), 0)' for x in staged)} FROM {STAGE}")).one()  # noqa: S608
        for name, fen in zip(amounts, sums, strict=True):
            totals[name] = totals.get(name, 0) + int(fen)
    for account, expression in legs:
        session.execute(text(
            "INSERT INTO journal_legs (entry_id, account, channel, loan_id, amount_fen) "  # noqa: S608
            f"SELECT entry_id, :account, NULL, loan_id, {expression} FROM {STAGE} WHERE {expression} <> 0"
        ), {"account": account.value})
    header = text(
        "INSERT INTO journal_entries (id, kind, idempotency_key, business_date, posted_at, loan_id, memo) "  # noqa: S608
        f"SELECT entry_id, :kind, idempotency_key, :business_date, :posted_at, loan_id, memo FROM {STAGE}"
    ).bindparams(bindparam("business_date", type_=Date()), bindparam("posted_at", type_=UTCDateTime()))
    posted = session.execute(header, {"kind": kind, "business_date": business_date, "posted_at": now}).rowcount
    session.execute(text(f"DELETE FROM {STAGE}"))  # noqa: S608 - constant
    return posted


def _sqlite_last_entry_id(session: Session) -> int:
    entries, legs = session.execute(
        select(func.max(JournalEntry.id), select(func.max(JournalLeg.entry_id)).scalar_subquery())
    ).one()
    return max(entries or 0, legs or 0)
