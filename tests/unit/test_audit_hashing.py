"""How an audit entry is written and hashed, and what the per-entry check catches (no database)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from miaodai.core.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditLog,
    ChainFinding,
    _check_entry,
    canonical_json,
    entry_hash,
)
from miaodai.core.clock import FixedClock

AT = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


class _CollectingSession:
    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, obj: object) -> None:
        self.added.append(obj)


def recorded(clock=None, **overrides) -> AuditEntry:
    session = _CollectingSession()
    fields = {"actor": "staff:7", "action": "loan.write_off", "subject": "loan:42", "details": {"reason": "deceased"}}
    fields.update(overrides)
    entry = AuditLog(clock or FixedClock(AT)).record(session, **fields)  # type: ignore[arg-type]
    assert session.added == [entry]
    return entry


def sealed(entry: AuditEntry, entry_id=1, seq=1, prev=GENESIS_HASH) -> AuditEntry:
    entry.id, entry.seq, entry.prev_hash = entry_id, seq, prev
    entry.entry_hash = entry_hash(prev, seq, entry_id, entry.body)
    return entry


def test_canonical_json_is_sorted_compact_and_keeps_chinese():
    assert canonical_json({"b": 1, "a": {"y": "张三", "x": [1, 2]}}) == '{"a":{"x":[1,2],"y":"张三"},"b":1}'
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


def test_the_body_holds_every_column_and_the_details():
    body = json.loads(recorded().body)
    assert body == {
        "occurred_at": "2026-11-22T02:00:00+00:00", "actor": "staff:7", "action": "loan.write_off",
        "subject": "loan:42", "details": {"reason": "deceased"},
    }


def test_a_clock_in_another_timezone_is_recorded_in_utc():
    beijing = timezone(timedelta(hours=8))

    class BeijingClock:
        def now(self) -> datetime:
            return AT.astimezone(beijing)

    entry = recorded(clock=BeijingClock())
    assert entry.occurred_at.utcoffset() == timedelta(0)
    assert json.loads(entry.body)["occurred_at"] == "2026-11-22T02:00:00+00:00"


def test_entry_hash_is_sha256_of_the_link_position_id_and_body():
    expected = hashlib.sha256(f"{GENESIS_HASH}|1|9|{{}}".encode()).hexdigest()
    assert entry_hash(GENESIS_HASH, 1, 9, "{}") == expected


@pytest.mark.parametrize(
    "changed",
    [("f" * 64, 1, 9, "{}"), (GENESIS_HASH, 2, 9, "{}"), (GENESIS_HASH, 1, 8, "{}"), (GENESIS_HASH, 1, 9, "{ }")],
)
def test_every_input_changes_the_hash(changed):
    assert entry_hash(*changed) != entry_hash(GENESIS_HASH, 1, 9, "{}")


def test_an_untouched_sealed_entry_passes():
    assert _check_entry(sealed(recorded()), 1, GENESIS_HASH) is None


def _edit_body(e):
    e.body = e.body.replace("deceased", "paid")


def _set(name, value):
    return lambda e: setattr(e, name, value)


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        (_edit_body, "hash does not match"),
        (_set("actor", "staff:8"), "columns disagree"),
        (_set("action", "loan.repaid"), "columns disagree"),
        (_set("subject", "loan:43"), "columns disagree"),
        (_set("occurred_at", AT + timedelta(seconds=1)), "timestamp"),
        (_set("seq", 2), "expected chain position 1"),
        (_set("prev_hash", "e" * 64), "link to the previous entry"),
        (_set("id", 2), "hash does not match"),
    ],
)
def test_each_kind_of_edit_is_named(tamper, words):
    entry = sealed(recorded())
    tamper(entry)
    problem = _check_entry(entry, 1, GENESIS_HASH)
    assert problem is not None and words in problem


def test_a_body_that_is_not_json_is_named_even_when_its_hash_was_recomputed():
    entry = sealed(recorded())
    entry.body = "not json"
    entry.entry_hash = entry_hash(GENESIS_HASH, 1, 1, entry.body)
    assert "not valid JSON" in (_check_entry(entry, 1, GENESIS_HASH) or "")


def test_findings_read_well():
    assert str(ChainFinding(5, 3, "hash does not match")) == "entry id=5 seq=3: hash does not match"
    assert str(ChainFinding(None, None, "x")).startswith("chain head")
