"""Real out-of-order commits, which only PostgreSQL can produce.

SQLite takes the write lock at BEGIN IMMEDIATE, so its ids always commit in order;
``test_audit_chain.py`` covers the same rule there with explicit ids.
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from miaodai.core.audit import seal_pending
from tests.integration.test_audit_chain import chain, verify

PINNED_FIXTURES = ("backend",)


@pytest.fixture
def backend() -> str:
    return "postgresql"


def test_out_of_order_commits_from_a_sequence_are_never_skipped(container):
    early, late = Session(container.db.engine), Session(container.db.engine)
    try:
        early.begin()
        low = container.audit.record(early, actor="staff:1", action="loan.slow", subject="loan:1")
        early.flush()
        low_id = low.id
        with late.begin():
            high = container.audit.record(late, actor="staff:2", action="loan.fast", subject="loan:2")
            late.flush()
            high_id = high.id
        assert low_id < high_id
        assert seal_pending(container.db, container.clock) == 1  # only the committed, higher id
        early.commit()
    finally:
        early.close()
        late.close()
    assert seal_pending(container.db, container.clock) == 1
    assert dict(chain(container)) == {high_id: 1, low_id: 2}
    assert verify(container).intact
