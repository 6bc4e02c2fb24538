"""The SQL constructs in miaodai.core.db that render differently per database, on both databases."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Column, Date, MetaData, String, Table, bindparam, insert, select

from miaodai.core.db import Database, IdType, days_between, next_id

metadata = MetaData()
rows = Table("test_next_id_rows", metadata, Column("id", IdType, primary_key=True, autoincrement=True),
             Column("note", String(32)))


def test_days_between_is_whole_days_either_way(database_url):
    db = Database(database_url)

    def day(value: date) -> object:
        return bindparam(None, value, type_=Date())

    try:
        with db.autocommit() as session:
            got = session.execute(select(days_between(day(date(2026, 3, 1)), day(date(2026, 2, 1))),
                                         days_between(day(date(2024, 1, 1)), day(date(2024, 12, 31))))).one()
    finally:
        db.dispose()
    assert tuple(got) == (28, -365)


def test_an_id_drawn_ahead_is_the_rows_and_the_next_is_larger(database_url):
    db = Database(database_url)
    metadata.create_all(db.engine)
    try:
        with db.transaction() as session:
            session.execute(insert(rows).values(note="numbered on insert"))
        with db.transaction() as session:
            drawn = session.execute(select(next_id(rows.c.id))).scalar_one()
            session.execute(insert(rows).values(id=drawn, note="drawn ahead"))
        with db.transaction() as session:
            session.execute(insert(rows).values(note="numbered after"))
            got = session.execute(select(rows.c.id, rows.c.note).order_by(rows.c.id)).all()
    finally:
        db.dispose()
    assert [note for _, note in got] == ["numbered on insert", "drawn ahead", "numbered after"]
    first, ahead, after = (row_id for row_id, _ in got)
    assert first < ahead < after  # the drawn id was the next one, and numbering went on past it
