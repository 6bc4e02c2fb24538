"""ledger: journal entries and legs, and the database's own guarantees that the book balances

Written by hand (the triggers are beyond autogenerate). The tables match ``miaodai.ledger.models``;
the triggers implement the rules explained in that module's docstring:

* a leg cannot be added to an entry whose header already exists (the header seals the entry);
* every entry has at least two legs summing to zero: a deferred constraint trigger on PostgreSQL,
  an AFTER INSERT trigger on the header on SQLite (plus the deferred foreign key, at COMMIT, for legs
  left without a header);
* UPDATE and DELETE (and TRUNCATE on PostgreSQL) are refused on both tables.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import miaodai.core.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY = "ledger: journal entries are append-only; correct an entry by posting its reversal"
UNBALANCED = "ledger: a journal entry needs at least two legs summing to zero"
SEALED = "ledger: legs cannot be added to an entry that is already posted"

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

POSTGRESQL_UP = [
    f"""
    CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{APPEND_ONLY} (% on %)', TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
    END $$
    """,
    f"""
    CREATE FUNCTION ledger_refuse_late_leg() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM journal_entries WHERE id = NEW.entry_id) THEN
            RAISE EXCEPTION '{SEALED} (entry %)', NEW.entry_id USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END $$
    """,  # noqa: S608 - constant text, no input
    # Fires at COMMIT, once per inserted header and per inserted leg: each checks its whole entry.
    f"""
    CREATE FUNCTION ledger_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        checked_id bigint;
        leg_count bigint;
        total numeric;
    BEGIN
        IF TG_TABLE_NAME = 'journal_entries' THEN
            checked_id := NEW.id;
        ELSE
            checked_id := NEW.entry_id;
        END IF;
        SELECT count(*), coalesce(sum(amount_fen), 0) INTO leg_count, total
            FROM journal_legs WHERE entry_id = checked_id;
        IF leg_count < 2 OR total <> 0 THEN
            RAISE EXCEPTION '{UNBALANCED} (entry % has % legs summing to % fen)', checked_id, leg_count, total
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,  # noqa: S608 - constant text, no input
    "CREATE TRIGGER journal_legs_sealed BEFORE INSERT ON journal_legs "
    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_late_leg()",
    "CREATE CONSTRAINT TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced()",
    "CREATE CONSTRAINT TRIGGER journal_legs_balanced AFTER INSERT ON journal_legs "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced()",
    *(
        statement
        for table in ("journal_entries", "journal_legs")
        for statement in (
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()",
        )
    ),
]

SQLITE_UP = [
    f"""
    CREATE TRIGGER journal_legs_sealed BEFORE INSERT ON journal_legs
    WHEN EXISTS (SELECT 1 FROM journal_entries WHERE id = NEW.entry_id)
    BEGIN SELECT RAISE(ABORT, '{SEALED}'); END
    """,  # noqa: S608 - constant text, no input
    # The legs precede their header, so when the header arrives they are all there to check.
    f"""
    CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
    WHEN (SELECT count(*) FROM journal_legs WHERE entry_id = NEW.id) < 2
      OR (SELECT coalesce(sum(amount_fen), 0) FROM journal_legs WHERE entry_id = NEW.id) <> 0
    BEGIN SELECT RAISE(ABORT, '{UNBALANCED}'); END
    """,  # noqa: S608 - constant text, no input
    *(
        f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
        for table in ("journal_entries", "journal_legs")
        for verb in ("UPDATE", "DELETE")
    ),
]


def upgrade() -> None:
    op.create_table(
        "journal_entries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("posted_at", miaodai.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("loan_id", ID, nullable=True),
        sa.Column("reverses_entry_id", ID, nullable=True),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reverses_entry_id"], ["journal_entries.id"],
            name=op.f("fk_journal_entries_reverses_entry_id_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_journal_entries_idempotency_key")),
        sa.UniqueConstraint("reverses_entry_id", name=op.f("uq_journal_entries_reverses_entry_id")),
    )
    op.create_index(op.f("ix_journal_entries_loan_id"), "journal_entries", ["loan_id"], unique=False)
    op.create_table(
        "journal_legs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("loan_id", ID, nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_fen <> 0", name=op.f("ck_journal_legs_amount_not_zero")),
        sa.CheckConstraint(
            "(account = 'cash') = (channel IS NOT NULL)", name=op.f("ck_journal_legs_channel_only_on_cash")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_journal_legs_entry_id_journal_entries"),
            deferrable=True, initially="DEFERRED",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_legs")),
    )
    op.create_index(op.f("ix_journal_legs_entry_id"), "journal_legs", ["entry_id"], unique=False)
    op.create_index(op.f("ix_journal_legs_loan_id"), "journal_legs", ["loan_id"], unique=False)
    statements = POSTGRESQL_UP if op.get_bind().dialect.name == "postgresql" else SQLITE_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    # Dropping the tables drops their triggers; the PostgreSQL functions go separately.
    op.drop_index(op.f("ix_journal_legs_loan_id"), table_name="journal_legs")
    op.drop_index(op.f("ix_journal_legs_entry_id"), table_name="journal_legs")
    op.drop_table("journal_legs")
    op.drop_index(op.f("ix_journal_entries_loan_id"), table_name="journal_entries")
    op.drop_table("journal_entries")
    if op.get_bind().dialect.name == "postgresql":
        for function in ("ledger_refuse_change", "ledger_refuse_late_leg", "ledger_check_entry_balanced"):
            op.execute(f"DROP FUNCTION {function}()")
