"""The statements a credit application runs stay cheap to send on PostgreSQL.

psycopg converts a query's ``%(name)s`` placeholders to ``$n`` by parsing the whole text, and caches the
result only for queries up to ``MAX_CACHED_STATEMENT_LENGTH`` bytes (4096): a longer one is parsed again on
every execution, which cost about a tenth of an application's CPU when the applicant's row grew past it.
An IN list is an "expanding" parameter that SQLAlchemy renders anew on every execution.
"""

from __future__ import annotations

import pytest
from psycopg import _queries
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect

from miaodai.core.audit import _INSERT_ENTRY
from miaodai.credit import service
from miaodai.identity import consent_service, sessions
from miaodai.loans import line_service

HOT = {
    "session by token": sessions._BY_TOKEN,
    "session touch": sessions._TOUCH,
    "consents in force": consent_service._IN_FORCE,
    "applicant row": service._APPLICANT,
    "applicant row taking its slot (PostgreSQL)": service._APPLICANT_TAKING_SLOT,
    "row lock, open lines, next id": service._LOCK_AND_COUNT_LINES,
    "application insert": service._INSERT_APPLICATION,
    "line insert": line_service._INSERT_LINE,
    "audit entry": _INSERT_ENTRY,
}


@pytest.mark.parametrize("name", HOT)
def test_a_hot_statement_fits_psycopgs_query_cache_and_expands_nothing(name):
    sql = str(HOT[name].compile(dialect=pg_dialect.dialect()))
    limit = getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", 4096)
    assert len(sql.encode()) <= limit, f"{name}: {len(sql.encode())} bytes, psycopg parses it on every execution"
    assert "POSTCOMPILE" not in sql, f"{name}: an expanding IN is rendered on every execution"
