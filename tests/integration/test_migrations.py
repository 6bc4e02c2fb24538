"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from miaodai.core.db import make_engine
from miaodai.schema import metadata


def test_migrated_schema_matches_the_models(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree; run scripts/regen-initial-migration: {diff}"


def test_every_model_table_exists_with_reference_data(database_url):
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            documents = conn.exec_driver_sql("SELECT count(*) FROM consent_documents").scalar_one()
            head = conn.exec_driver_sql("SELECT last_seq FROM audit_chain_head WHERE id = 1").scalar_one()
    finally:
        engine.dispose()
    assert set(metadata.tables) <= tables
    assert documents == 4
    assert head == 0
