"""Posting to the ledger, reversing, and reading balances. Every function works in the caller's
``Session``, so a posting joins the business transaction that caused it (a payout and its journal entry
commit or roll back together); the caller commits.

Postings are idempotent by key: posting the same key again returns the entry already posted
(``created=False``) when it is the same entry (same kind, loan and legs; the business date, time and
memo of a retry may differ), and raises ``LEDGER_IDEMPOTENCY_KEY_REUSED`` when it is not. Two
transactions racing on one key end with one entry: the insert runs in a SAVEPOINT, so the loser's unique
violation rolls back only that savepoint and it re-reads the winner's entry. :func:`post_new` is the
lean form for keys that are new by construction (they name a row inserted in the same transaction).

Corrections are reversals: a new entry (kind ``reversal``) with every leg negated and
``reverses_entry_id`` pointing at the original. An entry is reversed at most once (a unique constraint),
and a reversal is itself never reversed: to undo a mistaken reversal, post the original business again
as a new entry. That keeps every chain one link long, so "is this entry in effect" is simply "has it
no reversal".

Writes go legs first, then the header (see :mod:`miaodai.ledger.models` for why), so the entry id is
taken before the insert: from the table's sequence on PostgreSQL, and as max + 1 on SQLite, where the
transaction already holds the database's write lock (``BEGIN IMMEDIATE``) and nobody else can take it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache

from sqlalchemy import ColumnElement, Select, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from miaodai.core.db import dialect_of, table_of
from miaodai.core.errors import DomainError
from miaodai.ledger.accounts import Account
from miaodai.ledger.book import (
    Finding,
    LoanSubLedger,
    TrialBalance,
    TrialBalanceRow,
    account_balances,
    balances_by_loan,
    check_book,
    entries_of_loans,
    loan_balances,
    loan_entries,
    loan_subledger,
    trial_balance,
)
from miaodai.ledger.errors import LedgerErrors
from miaodai.ledger.models import JournalEntry, JournalLeg
from miaodai.ledger.rules import Leg, check_header, check_legs, leg_signature, negated

__all__ = [
    "REVERSAL_KIND", "Finding", "Leg", "LoanSubLedger", "PostResult", "TrialBalance", "TrialBalanceRow",
    "account_balances", "balances_by_loan", "check_book", "entries_of_loans", "loan_balances", "loan_entries",
    "loan_subledger", "next_entry_id_sql", "post", "post_new", "reverse", "trial_balance",
]

REVERSAL_KIND = "reversal"


@dataclass(frozen=True)
class PostResult:
    entry: JournalEntry
    # False when the idempotency key had already posted this same entry.
    created: bool


def post(
    session: Session,
    *,
    kind: str,
    idempotency_key: str,
    business_date: date,
    legs: Sequence[Leg],
    now: datetime,
    loan_id: int | None = None,
    memo: str = "",
) -> PostResult:
    """Post one balanced journal entry in the caller's transaction (idempotent by ``idempotency_key``).

    A leg without a ``loan_id`` takes the entry's. Raises :class:`DomainError` (``LEDGER_*``) when the
    legs break a rule, or when the key already posted a different entry.
    """
    check_header(kind=kind, idempotency_key=idempotency_key)
    checked = check_legs(legs, loan_id=loan_id)
    _check_time(now, business_date)
    existing = _entry_by_key(session, idempotency_key)
    if existing is not None:
        return _replay(existing, kind=kind, loan_id=loan_id, legs=checked, reverses_entry_id=None)
    return _insert(
        session, kind=kind, idempotency_key=idempotency_key, business_date=business_date, legs=checked, now=now,
        loan_id=loan_id, memo=memo, reverses_entry_id=None,
    )


def post_new(
    session: Session,
    *,
    kind: str,
    idempotency_key: str,
    business_date: date,
    legs: Sequence[Leg],
    now: datetime,
    loan_id: int | None = None,
    memo: str = "",
    entry_id: int | None = None,
) -> int:
    """Post an entry whose key cannot have been posted before, and return the new entry's id.

    For keys that name a row the caller's transaction has just inserted (``loan:7:repayment:<new id>``):
    the same checks as :func:`post` but no lookup by key, no savepoint and no re-read of the entry, which
    is most of a posting's round trips. The unique key still holds: should the key exist after all, the
    insert fails and takes the caller's whole transaction with it. ``entry_id`` is one fetched with
    :func:`next_entry_id_sql` (a new one is taken without it).
    """
    check_header(kind=kind, idempotency_key=idempotency_key)
    checked = check_legs(legs, loan_id=loan_id)
    _check_time(now, business_date)
    return _write(session, kind=kind, idempotency_key=idempotency_key, business_date=business_date, legs=checked,
                  now=now, loan_id=loan_id, memo=memo, reverses_entry_id=None, entry_id=entry_id)


def reverse(
    session: Session,
    *,
    entry_id: int,
    idempotency_key: str,
    business_date: date,
    now: datetime,
    memo: str = "",
) -> PostResult:
    """Post the reversal of entry ``entry_id``: the same legs with their signs flipped.

    Idempotent by key like :func:`post`. Refused when the entry does not exist, has already been
    reversed, or is itself a reversal.
    """
    check_header(kind=REVERSAL_KIND, idempotency_key=idempotency_key)
    _check_time(now, business_date)
    original = session.get(JournalEntry, entry_id)
    if original is None:
        raise DomainError(LedgerErrors.ENTRY_NOT_FOUND, {"entry_id": entry_id})
    legs = negated(_stored_legs(original))
    existing = _entry_by_key(session, idempotency_key)
    if existing is not None:
        return _replay(existing, kind=REVERSAL_KIND, loan_id=original.loan_id, legs=legs, reverses_entry_id=entry_id)
    if original.reverses_entry_id is not None:
        raise DomainError(LedgerErrors.REVERSAL_NOT_REVERSIBLE, {"entry_id": entry_id})
    _refuse_if_reversed(session, entry_id)
    return _insert(
        session, kind=REVERSAL_KIND, idempotency_key=idempotency_key, business_date=business_date, legs=legs,
        now=now, loan_id=original.loan_id, memo=memo, reverses_entry_id=entry_id,
    )


def _check_time(now: datetime, business_date: date) -> None:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    if not isinstance(business_date, date) or isinstance(business_date, datetime):
        raise ValueError("business_date must be a date")


def _entry_by_key(session: Session, idempotency_key: str) -> JournalEntry | None:
    return session.scalars(select(JournalEntry).where(JournalEntry.idempotency_key == idempotency_key)).one_or_none()


def _stored_legs(entry: JournalEntry) -> tuple[Leg, ...]:
    return tuple(Leg(Account(leg.account), leg.amount_fen, leg.loan_id, leg.channel) for leg in entry.legs)


def _replay(
    existing: JournalEntry, *, kind: str, loan_id: int | None, legs: Sequence[Leg], reverses_entry_id: int | None
) -> PostResult:
    same = (
        existing.kind == kind
        and existing.loan_id == loan_id
        and existing.reverses_entry_id == reverses_entry_id
        and leg_signature(_stored_legs(existing)) == leg_signature(legs)
    )
    if not same:
        raise DomainError(
            LedgerErrors.IDEMPOTENCY_KEY_REUSED,
            {"idempotency_key": existing.idempotency_key, "entry_id": existing.id},
        )
    return PostResult(existing, created=False)


def _refuse_if_reversed(session: Session, entry_id: int) -> None:
    reversal_id = session.scalar(select(JournalEntry.id).where(JournalEntry.reverses_entry_id == entry_id))
    if reversal_id is not None:
        raise DomainError(LedgerErrors.ALREADY_REVERSED, {"entry_id": entry_id, "reversal_id": reversal_id})


def _next_entry_id(session: Session) -> int:
    return int(session.scalar(_next_id_select(dialect_of(session))))


def next_entry_id_sql(dialect: str) -> ColumnElement[int]:
    """The id the next entry posted in this transaction takes, as a SQL expression to fetch inside a
    statement of the caller's own (then pass it to :func:`post_new`) when a row written before the entry
    must name it; use it for the very next posting. PostgreSQL takes it from the table's sequence; on SQLite
    the transaction holds the write lock and it is max + 1. Legs are counted too there, so stray headerless
    legs (which cannot commit anyway) never make a new entry look unbalanced."""
    if dialect == "postgresql":
        return func.nextval(func.pg_get_serial_sequence("journal_entries", "id"))
    entries = func.coalesce(select(func.max(JournalEntry.id)).scalar_subquery(), 0)
    legs = func.coalesce(select(func.max(JournalLeg.entry_id)).scalar_subquery(), 0)
    return func.max(entries, legs) + 1  # SQLite's two-argument max() is the greater of the two


@cache
def _next_id_select(dialect: str) -> Select[tuple[int]]:
    return select(next_entry_id_sql(dialect))


def _insert(
    session: Session,
    *,
    kind: str,
    idempotency_key: str,
    business_date: date,
    legs: Sequence[Leg],
    now: datetime,
    loan_id: int | None,
    memo: str,
    reverses_entry_id: int | None,
) -> PostResult:
    try:
        with session.begin_nested():
            entry_id = _write(session, kind=kind, idempotency_key=idempotency_key, business_date=business_date,
                              legs=legs, now=now, loan_id=loan_id, memo=memo, reverses_entry_id=reverses_entry_id)
    except IntegrityError:
        # Another transaction committed the same key (or reversed the same entry) first.
        existing = _entry_by_key(session, idempotency_key)
        if existing is not None:
            return _replay(existing, kind=kind, loan_id=loan_id, legs=legs, reverses_entry_id=reverses_entry_id)
        if reverses_entry_id is not None:
            _refuse_if_reversed(session, reverses_entry_id)
        raise
    entry = session.get(JournalEntry, entry_id)
    assert entry is not None  # just inserted in this transaction
    return PostResult(entry, created=True)


def _write(
    session: Session,
    *,
    kind: str,
    idempotency_key: str,
    business_date: date,
    legs: Sequence[Leg],
    now: datetime,
    loan_id: int | None,
    memo: str,
    reverses_entry_id: int | None,
    entry_id: int | None = None,
) -> int:
    """Insert the legs, then the header that seals them (the database checks the entry then); returns its id.

    Core statements on the tables, two round trips: the ORM's bulk-insert machinery would cost more than
    the inserts themselves on the repayment hot path."""
    if entry_id is None:
        entry_id = _next_entry_id(session)
    session.execute(_INSERT_LEGS, [
        {"entry_id": entry_id, "account": leg.account.value, "channel": leg.channel, "loan_id": leg.loan_id,
         "amount_fen": leg.amount_fen}
        for leg in legs
    ])
    session.execute(_INSERT_ENTRY, {
        "id": entry_id, "kind": kind, "idempotency_key": idempotency_key, "business_date": business_date,
        "posted_at": now, "loan_id": loan_id, "reverses_entry_id": reverses_entry_id, "memo": memo,
    })
    return entry_id


# Built once: a statement memoizes its cache key, so a posting neither rebuilds nor re-keys them.
_INSERT_LEGS = insert(table_of(JournalLeg))
_INSERT_ENTRY = insert(table_of(JournalEntry))
