"""The audit chain on both databases: same-transaction writes, sealing, tampering, late commits,
concurrent writers, and `miaodai audit verify`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from miaodai.core.audit import AuditChainHead, AuditEntry, AuditLog, Sealer, seal_pending, verify_chain
from miaodai.core.clock import FixedClock
from tests.cli_support import run_cli

BOUND = timedelta(seconds=10)


def write(container, count, *, action="loan.test_event"):
    with container.db.transaction() as session:
        for i in range(count):
            container.audit.record(session, actor="staff:1", action=action, subject=f"loan:{i}", details={"i": i})


def verify(container):
    return verify_chain(container.db, container.clock, unsealed_bound=BOUND)


def chain(container):
    """(id, seq) of every entry in id order."""
    with container.db.transaction() as session:
        return [tuple(row) for row in session.execute(select(AuditEntry.id, AuditEntry.seq).order_by(AuditEntry.id))]


def id_at(container, seq):
    with container.db.transaction() as session:
        return session.execute(select(AuditEntry.id).where(AuditEntry.seq == seq)).scalar_one()


def sealed_five(container):
    for _ in range(5):
        write(container, 1)
    assert seal_pending(container.db, container.clock) == 5


def test_entries_of_a_rolled_back_transaction_do_not_exist(container):
    with pytest.raises(RuntimeError), container.db.transaction() as session:
        container.audit.record(session, actor="staff:1", action="loan.write_off", subject="loan:9")
        session.flush()
        raise RuntimeError("the write-off failed; its audit entry must go with it")
    assert chain(container) == []
    assert seal_pending(container.db, container.clock) == 0
    assert verify(container).intact


def test_sealing_gives_contiguous_positions_linked_by_hash(container):
    write(container, 3)
    write(container, 4)
    assert seal_pending(container.db, container.clock, batch_size=3) == 7
    assert [seq for _, seq in chain(container)] == [1, 2, 3, 4, 5, 6, 7]
    with container.db.transaction() as session:
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
        head = session.get(AuditChainHead, 1)
        assert all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:], strict=False))
        assert (head.last_seq, head.last_hash) == (7, entries[-1].entry_hash)
    report = verify(container)
    assert report.intact and report.sealed == 7 and report.stale_unsealed == []
    # A second pass finds nothing new and does not move anything.
    assert seal_pending(container.db, container.clock) == 0


def _edit_body(session, seq):
    body = session.execute(select(AuditEntry.body).where(AuditEntry.seq == seq)).scalar_one()
    session.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(body=body.replace('"i":0', '"i":7')))


def _swap(session, a, b):
    session.execute(update(AuditEntry).where(AuditEntry.seq == a).values(seq=-1))
    session.execute(update(AuditEntry).where(AuditEntry.seq == b).values(seq=a))
    session.execute(update(AuditEntry).where(AuditEntry.seq == -1).values(seq=b))


TAMPERING = {
    # name: (tamper(session), the seq whose entry verify must name, words in the finding)
    "body edited": (lambda s: _edit_body(s, 3), 3, "hash does not match"),
    "action column edited": (
        lambda s: s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(action="loan.reversed")),
        3, "columns disagree",
    ),
    "actor column edited": (
        lambda s: s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="staff:2")), 2,
        "columns disagree",
    ),
    "timestamp edited": (
        lambda s: s.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC))), 4, "timestamp",
    ),
    "middle row deleted": (lambda s: s.execute(delete(AuditEntry).where(AuditEntry.seq == 3)), 4, "position 3"),
    "two rows swapped": (lambda s: _swap(s, 2, 4), 4, "link to the previous entry"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_names_the_first_bad_entry(container, case):
    tamper, bad_seq, words = TAMPERING[case]
    sealed_five(container)
    expected_id = id_at(container, bad_seq)
    with container.db.transaction() as session:
        tamper(session)
    report = verify(container)
    assert not report.intact
    assert report.first_break.entry_id == expected_id, str(report.first_break)
    assert words in report.first_break.problem


def test_deleting_the_last_entry_is_caught_by_the_chain_head(container):
    sealed_five(container)
    with container.db.transaction() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 5))
    report = verify(container)
    assert not report.intact and report.sealed == 4
    assert "entries seq 5..5 were deleted from the end" in str(report.first_break)


def test_an_entry_left_unsealed_past_the_bound_is_reported(container, clock):
    write(container, 2)
    assert verify(container).stale_unsealed == []
    clock.advance(BOUND + timedelta(seconds=1))
    report = verify(container)
    assert report.intact  # nothing is broken, the sealer is just not running
    assert [f.entry_id for f in report.stale_unsealed] == [i for i, _ in chain(container)]


def test_a_late_commit_lands_in_the_next_batch(container):
    """Simulated on both databases with explicit ids: id 500 commits after id 1000 was sealed."""
    write(container, 2)
    with container.db.transaction() as session:
        container.audit.record(session, actor="staff:1", action="loan.fast", subject="loan:1").id = 1000
    seal_pending(container.db, container.clock)
    with container.db.transaction() as session:
        container.audit.record(session, actor="staff:1", action="loan.slow", subject="loan:2").id = 500
    assert seal_pending(container.db, container.clock) == 1
    assert sorted(chain(container), key=lambda row: row[1]) == [(1, 1), (2, 2), (1000, 3), (500, 4)]
    assert verify(container).intact


def test_concurrent_writers_with_the_background_sealer_seal_every_entry_once(container):
    threads_n, per_thread = 8, 50
    sealer = Sealer(container.db, container.clock, interval=0.02)
    sealer.start()
    errors: list[BaseException] = []

    def writer(n):
        try:
            for i in range(per_thread):
                with container.db.transaction() as session:
                    container.audit.record(session, actor=f"staff:{n}", action="loan.test_event", subject=f"loan:{i}")
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sealer.stop()
    assert errors == []
    rows = chain(container)
    assert len(rows) == threads_n * per_thread
    assert sorted(seq for _, seq in rows) == list(range(1, threads_n * per_thread + 1))
    report = verify(container)
    assert report.intact and report.sealed == threads_n * per_thread


def test_audit_verify_command_exit_codes(container, settings):
    sealed_five(container)
    intact = run_cli(settings, "audit", "verify")
    assert intact.exit_code == 0, intact.output
    assert "intact: 5 entries" in intact.output

    with container.db.transaction() as session:
        _edit_body(session, 3)
    broken = run_cli(settings, "audit", "verify")
    assert broken.exit_code == 1
    assert f"id={id_at(container, 3)} seq=3" in broken.output and "hash does not match" in broken.output


def test_audit_verify_command_reports_entries_left_unsealed(container, settings):
    long_ago = AuditLog(FixedClock(datetime(2020, 1, 1, tzinfo=UTC)))
    with container.db.transaction() as session:
        entry = long_ago.record(session, actor="system", action="loan.test_event", subject="loan:1")
    result = run_cli(settings, "audit", "verify")
    assert result.exit_code == 2, result.output
    assert f"entry id={entry.id}" in result.output and "unsealed" in result.output
    sealed = run_cli(settings, "audit", "seal")
    assert sealed.exit_code == 0 and "sealed 1 entries" in sealed.output
    assert run_cli(settings, "audit", "verify").exit_code == 0

