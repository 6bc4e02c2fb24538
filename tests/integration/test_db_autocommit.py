"""``Database.autocommit()``: statements that stand alone (no BEGIN/COMMIT round trips, no SQLite write
lock held between them), each seeing what was committed before it; the unit of work is refused there."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, update

from miaodai.core.db import Database

metadata = MetaData()
counters = Table("test_autocommit_counters", metadata, Column("id", Integer, primary_key=True),
                 Column("value", Integer, nullable=False))


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    metadata.create_all(database.engine)
    with database.transaction() as session:
        session.execute(insert(counters).values(id=1, value=0))
    yield database
    database.dispose()


def _value(session) -> int:
    return session.execute(select(counters.c.value).where(counters.c.id == 1)).scalar_one()


def test_each_statement_sees_what_others_committed_and_blocks_no_writer(db):
    with db.autocommit() as reader:
        assert _value(reader) == 0
        # A writer commits while the reader is still open: on SQLite this would wait for the reader's
        # write lock if the reader had begun a transaction (BEGIN IMMEDIATE).
        with db.transaction() as writer:
            writer.execute(update(counters).values(value=7))
        assert _value(reader) == 7
        assert not reader.connection().connection.dbapi_connection.info.transaction_status \
            if db.dialect == "postgresql" else not reader.connection().connection.dbapi_connection.in_transaction


def test_a_single_update_stands_alone_and_is_kept(db):
    with db.autocommit() as session:
        session.execute(update(counters).where(counters.c.id == 1).values(value=counters.c.value + 1))
    with db.transaction() as session:
        assert _value(session) == 1


def test_the_unit_of_work_is_refused_and_nothing_is_written(db):
    from miaodai.loans.models import LoanProduct

    with pytest.raises(RuntimeError, match="Database.transaction"), db.autocommit() as session:
        session.add(LoanProduct(code="NEVER"))
        session.flush()
    with db.transaction() as session:
        assert session.execute(select(LoanProduct).where(LoanProduct.code == "NEVER")).first() is None
