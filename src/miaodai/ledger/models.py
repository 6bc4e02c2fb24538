"""Tables of the ledger: journal entries (headers) and their legs. Append-only.

How the database itself keeps the book balanced (migration 0003 creates the triggers):

* **An entry's header seals it.** Legs are written first, then the header row; a leg whose entry
  header already exists is refused. So a posted entry can never gain legs, and the check below sees
  all of an entry's legs at once. The legs' foreign key to the header is ``DEFERRABLE INITIALLY
  DEFERRED`` so they may precede it; at COMMIT every leg must have its header.
* **Balance.** Every entry has at least two legs and they sum to zero.
  On PostgreSQL a ``CONSTRAINT TRIGGER ... DEFERRABLE INITIALLY DEFERRED`` on both tables checks each
  touched entry at COMMIT. SQLite has no deferred triggers, so there an ``AFTER INSERT`` trigger on
  the header checks the legs already written (which, by the rule above, are all of them) and the
  deferred foreign key refuses, at COMMIT, legs left without a header. Either way no transaction that
  leaves an unbalanced or one-legged entry can commit, whatever code or raw SQL wrote it.
* **Append-only.** Triggers refuse UPDATE and DELETE on both tables (and TRUNCATE on PostgreSQL).
  Corrections are reversal entries (``reverses_entry_id``); the unique constraint on that column
  means an entry is reversed at most once.

On SQLite the deferred foreign key needs ``PRAGMA foreign_keys=ON`` (every connection of
:func:`miaodai.core.db.make_engine` sets it); ``miaodai ledger check`` also reports headerless legs.
A COMMIT that SQLite refuses leaves its transaction open: ``Database.transaction()`` and
``engine.begin()`` roll it back, but code driving ``conn.begin()``/``commit()`` by hand must roll back
itself before the connection goes back to the pool.
A future migration that rebuilds these tables with ``batch_alter_table`` on SQLite drops their
triggers and must create them again.

``loan_id`` has no foreign key on purpose: the ledger sits below the loan engine and knows loans only
by id. The ORM relationship ``JournalEntry.legs`` is view-only; write through
:func:`miaodai.ledger.service.post`.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from miaodai.core.db import Base, IdType, UTCDateTime


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # What happened, in a short word: drawdown, payout_settled, repayment, accrual, reversal, ...
    kind: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    business_date: Mapped[date] = mapped_column(Date)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    loan_id: Mapped[int | None] = mapped_column(IdType, index=True)
    reverses_entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"), unique=True)
    memo: Mapped[str] = mapped_column(Text, default="")

    legs: Mapped[list[JournalLeg]] = relationship(
        viewonly=True, order_by="JournalLeg.id", lazy="selectin", back_populates="entry"
    )


class JournalLeg(Base):
    __tablename__ = "journal_legs"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # Deferred so the legs can be written before the header that seals them (see the module docstring).
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("journal_entries.id", deferrable=True, initially="DEFERRED"), index=True
    )
    account: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(32))
    loan_id: Mapped[int | None] = mapped_column(IdType, index=True)
    # Signed: debit positive, credit negative.
    amount_fen: Mapped[int] = mapped_column(BigInteger)

    entry: Mapped[JournalEntry] = relationship(viewonly=True, back_populates="legs")

    __table_args__ = (
        CheckConstraint("amount_fen <> 0", name="amount_not_zero"),
        CheckConstraint("(account = 'cash') = (channel IS NOT NULL)", name="channel_only_on_cash"),
    )
