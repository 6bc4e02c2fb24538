"""The console's audit viewer (/console/audit) on both databases: filters that hit and miss exactly, keyset pages,
the chain verified from a button naming a tampered entry (without holding a lock writers wait on), and the
export streamed with its hashes and itself audited."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, update

from miaodai.core import audit as audit_module
from miaodai.core.audit import AuditEntry, seal_pending, verify_chain
from miaodai.core.clock import BUSINESS_TZ
from miaodai.identity.staff_audit import AuditFilter, audit_search
from tests.console_support import add_staff, console_as, post_form
from tests.loan_support import active_loan, demo_borrower

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")

AUDIT = "/console/audit"
START = datetime(2026, 12, 1, 10, 0, tzinfo=BUSINESS_TZ)


def record(container, *, actor="staff:12", action="loan.test", subject="loan:1", details=None):
    with container.db.transaction() as session:
        entry = container.audit.record(session, actor=actor, action=action, subject=subject, details=details or {})
        session.flush()
        return entry.id


def shown(page) -> list[int]:
    assert page.status_code == 200, page.text
    return [int(i) for i in re.findall(r'data-entry-id="(\d+)"', page.text)]


def ids_where(container, condition) -> list[int]:
    """The ids of the entries ``condition`` finds, newest first: the page's order, computed apart from it."""
    with container.db.transaction() as session:
        return list(session.scalars(select(AuditEntry.id).where(condition)
                                    .order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())))


@pytest.fixture
def log(container, clock):
    """A small log over four days with near misses for each filter; returns (name → id)."""
    clock.set(START)
    made = {}

    def at(name, hours, **fields):
        clock.set(START + timedelta(hours=hours))
        made[name] = record(container, **fields)

    at("staff12_login", 0, actor="staff:12", action="staff.login_failed", subject="staff:12")
    at("staff120", 1, actor="staff:120", action="staff.logout", subject="staff:120")
    at("staff1", 2, actor="staff:1", action="staffing.planned", subject="staff:1")
    at("eod", 24, actor="eod", action="loan.write_off", subject="loan:7", details={"principal_fen": 100})
    at("writeXoff", 25, actor="eod", action="loan.writeXoff", subject="loan:8")
    at("pii", 48, actor="staff:12", action="pii.revealed", subject="borrower:5", details={"field": "phone"})
    at("borrower5", 49, actor="borrower:5", action="session.logged_out", subject="borrower:5")
    at("late", 72, actor="staff:12", action="pii.staff.note", subject="borrower:6")
    return made


def test_each_filter_hits_exactly_its_entries_and_misses_the_near_ones(client, container, clock, log):
    web = console_as(client, container, clock, "au.one", ("auditor",))
    everything = shown(web.get(AUDIT))
    assert [i for i in everything if i in log.values()] == ids_where(container, AuditEntry.id.in_(log.values()))
    cases = [
        ({"actor": "staff:12"}, ["late", "pii", "staff12_login"]),
        ({"actor": "eod"}, ["writeXoff", "eod"]),
        ({"action": "staff."}, ["staff120", "staff12_login"]),  # not staffing.*, not pii.staff.*
        ({"action": "loan.write_"}, ["eod"]),  # the underscore is a letter, not a wildcard
        ({"action": "pii."}, ["late", "pii"]),
        ({"action": "loan.write_off"}, ["eod"]),
        ({"since": "2026-12-02T10:00", "until": "2026-12-03T10:00"}, ["writeXoff", "eod"]),  # from included
        ({"since": "2026-12-02T10:00:01", "until": "2026-12-03T10:00:00"}, ["writeXoff"]),
        ({"until": "2026-12-02T10:00"}, ["staff1", "staff120", "staff12_login"]),  # until excluded
        ({"actor": "staff:12", "action": "pii.", "until": "2026-12-04T10:00"}, ["pii"]),
        ({"actor": "staff:13"}, []),
        ({"action": "staff.login_failed."}, []),
    ]
    for params, names in cases:
        found = [i for i in shown(web.get(AUDIT, params=params)) if i in log.values()]
        assert found == [log[n] for n in names], params
        extra = set(shown(web.get(AUDIT, params=params))) - set(log.values())
        assert all(i > max(log.values()) for i in extra), params  # only the console's own sign-in entries


def test_the_borrower_filter_finds_their_things_and_nobody_elses(client, container, clock):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    me = borrower["borrower_id"]
    methods = client.get("/v1/payment-methods", headers=borrower["headers"]).json()
    lines = client.get("/v1/credit-lines", headers=borrower["headers"]).json()
    mine = {f"borrower:{me}", f"loan:{loan['id']}", *(f"payment_method:{m['id']}" for m in methods),
            *(f"credit_line:{line['id']}" for line in lines)}
    with container.db.transaction() as session:
        card_bindings = session.scalars(select(AuditEntry.subject).where(AuditEntry.subject.like("card_binding:%")))
        phone = session.scalars(select(AuditEntry.subject).where(AuditEntry.subject.like("phone:%"),
                                                                 AuditEntry.action == "otp.requested"))
        mine |= set(card_bindings) | set(phone)  # one borrower logged in and bound a card in this test
    other = record(container, actor="staff:3", action="loan.noted", subject=f"loan:{loan['id'] + 1000}")
    near = record(container, actor="staff:3", action="pii.revealed", subject=f"borrower:{me}0")
    web = console_as(client, container, clock, "au.two", ("auditor",))
    found = []
    page = web.get(AUDIT, params={"borrower": str(me)})
    while True:
        found += shown(page)
        older = re.search(r'href="([^"]+)" data-testid="audit-older"', page.text)
        if not older:
            break
        page = web.get(older.group(1).replace("&amp;", "&"))
    expected = ids_where(container, AuditEntry.subject.in_(mine) | (AuditEntry.actor == f"borrower:{me}"))
    assert found == expected and len(found) > 10
    assert other not in found and near not in found
    kinds = {subject.split(":")[0] for subject in _subjects(container, found)}
    assert {"borrower", "loan", "payment_method", "credit_line", "phone"} <= kinds


def _subjects(container, ids):
    with container.db.transaction() as session:
        return list(session.scalars(select(AuditEntry.subject).where(AuditEntry.id.in_(ids))))


def test_pages_are_keyset_pages_newest_first_without_gaps_or_repeats(client, container, clock):
    clock.set(START)
    written = []
    for i in range(7):
        clock.advance(timedelta(minutes=1 if i != 3 else 0))  # two entries share a time: the id breaks the tie
        written.append(record(container, action="loan.paged", subject=f"loan:{i}"))
    where = AuditFilter(action_prefix="loan.paged")
    seen, before = [], None
    while True:
        page = audit_search(container.db, where, limit=3, before_id=before)
        seen += [e.id for e in page.entries]
        if page.next_before_id is None:
            break
        before = page.next_before_id
    assert seen == ids_where(container, AuditEntry.action == "loan.paged") == list(reversed(written))
    # Through the page: more than a page of entries has an "older" link that carries the filters.
    for i in range(55):
        record(container, action="loan.many", subject=f"loan:{i}")
    web = console_as(client, container, clock, "au.three", ("auditor",))
    first = web.get(AUDIT, params={"action": "loan.many"})
    older = re.search(r'href="([^"]+)" data-testid="audit-older"', first.text).group(1).replace("&amp;", "&")
    assert "action=loan.many" in older
    assert len(shown(first)) == 50 and len(shown(web.get(older))) == 5
    assert set(shown(first)).isdisjoint(shown(web.get(older)))


def test_bad_filters_are_refused_on_the_page_never_a_500(client, container, clock):
    web = console_as(client, container, clock, "au.four", ("auditor",))
    for params in ({"borrower": "abc"}, {"borrower": "0"}, {"since": "yesterday"}, {"until": "2026-13-01T00:00"}):
        page = web.get(AUDIT, params=params)
        assert page.status_code == 422 and 'data-code="VALIDATION_FAILED"' in page.text, params
    assert web.get(AUDIT, params={"actor": "x" * 65}).status_code == 422
    assert web.get(AUDIT, params={"before": "999999"}).status_code == 200  # not an entry: an empty page
    assert web.get(f"{AUDIT}/entries/999999").status_code == 404


def _tamper_body(container, entry_id):
    with container.db.transaction() as session:
        body = session.scalar(select(AuditEntry.body).where(AuditEntry.id == entry_id))
        session.execute(update(AuditEntry).where(AuditEntry.id == entry_id)
                        .values(body=body.replace('"amount_fen":100', '"amount_fen":1')))


def test_verify_names_the_tampered_entry_with_a_link_and_is_audited(client, container, clock):
    for i in range(6):
        record(container, action="payments.refund.requested", subject=f"loan:{i}", details={"amount_fen": 100})
    web = console_as(client, container, clock, "au.five", ("auditor",))
    seal_pending(container.db, container.clock)
    intact = post_form(web, f"{AUDIT}/verify", page=AUDIT)
    assert intact.status_code == 200 and 'class="tag ok"' in intact.text
    with container.db.transaction() as session:
        victim, victim_seq = session.execute(select(AuditEntry.id, AuditEntry.seq)
                                             .where(AuditEntry.subject == "loan:3")).one()
    _tamper_body(container, victim)
    broken = post_form(web, f"{AUDIT}/verify", page=AUDIT)
    assert broken.status_code == 200
    named = re.search(r'data-testid="audit-first-bad"><a href="([^"]+)">', broken.text)
    assert named and named.group(1) == f"/console/audit/entries/{victim}"
    checked = re.search(r'data-testid="audit-checked">([\d,]+)<', broken.text).group(1)
    assert int(checked.replace(",", "")) == victim_seq - 1  # every entry before it held
    assert "hash does not match" in broken.text
    assert web.get(named.group(1)).status_code == 200
    with container.db.transaction() as session:
        checks = session.scalars(select(AuditEntry.body).where(AuditEntry.action == "audit.chain_verified")
                                 .order_by(AuditEntry.id)).all()
    details = [json.loads(body)["details"] for body in checks]
    assert [d["intact"] for d in details] == [True, False]
    assert details[1]["first_bad_entry_id"] == victim and details[1]["first_bad_seq"] == victim_seq
    assert all(json.loads(body)["actor"].startswith("staff:") for body in checks)


def test_verify_in_chunks_walks_on_while_writers_and_the_sealer_work(container, clock, database_url, monkeypatch):
    """The walk holds no lock: mid-walk a writer commits and the sealer seals (on SQLite a transaction would
    hold BEGIN IMMEDIATE), and the walk goes on to the entries sealed meanwhile instead of calling them lost."""
    for i in range(7):
        record(container, subject=f"loan:{i}")
    seal_pending(container.db, container.clock)
    real_check, calls = audit_module._check_entry, []

    def check_and_write(entry, expected, prev):
        calls.append(entry.seq)
        if len(calls) == 2:
            if database_url.startswith("sqlite"):
                other = sqlite3.connect(database_url.split("///", 1)[1], timeout=0.1)
                try:
                    other.execute("BEGIN IMMEDIATE")  # "database is locked" if the walk held the write lock
                    other.execute("ROLLBACK")
                finally:
                    other.close()
            for i in range(3):
                record(container, subject=f"loan:late{i}")
            assert seal_pending(container.db, container.clock) == 3
        return real_check(entry, expected, prev)

    monkeypatch.setattr(audit_module, "_check_entry", check_and_write)
    report = verify_chain(container.db, container.clock, unsealed_bound=timedelta(seconds=10), chunk=3)
    assert report.intact, str(report.first_break)
    assert report.sealed == 10 and calls == list(range(1, 11))


def test_verify_in_small_chunks_names_the_same_first_bad_entry(container, clock):
    for i in range(9):
        record(container, subject=f"loan:{i}", details={"amount_fen": 100})
    seal_pending(container.db, container.clock)
    with container.db.transaction() as session:
        victim = session.scalar(select(AuditEntry.id).where(AuditEntry.seq == 7))
    _tamper_body(container, victim)
    for chunk in (1, 2, 3, 6, 7, 5000):
        report = verify_chain(container.db, container.clock, unsealed_bound=timedelta(seconds=10), chunk=chunk)
        assert report.first_break.entry_id == victim and report.sealed == 6, chunk


def _exported(answer):
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.headers["content-disposition"], answer.text


def test_export_streams_the_filtered_entries_with_hashes_and_is_audited(client, container, clock, log):
    web = console_as(client, container, clock, "au.six", ("auditor",))
    seal_pending(container.db, container.clock)
    form = {"actor": "staff:12", "since": "2026-12-01T10:00", "until": "2026-12-04T10:00"}
    disposition, text = _exported(post_form(web, f"{AUDIT}/export", {**form, "form": "csv"}, page=AUDIT))
    assert re.fullmatch(r'attachment; filename="miaodai-audit-\d{8}-\d{6}\.csv"', disposition)
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = ids_where(container, AuditEntry.id.in_([log["pii"], log["staff12_login"]]))
    assert [int(r["id"]) for r in rows] == expected
    with container.db.transaction() as session:
        for row in rows:
            entry = session.get(AuditEntry, int(row["id"]))
            assert (row["body"], row["entry_hash"], row["prev_hash"], int(row["seq"]), row["actor"]) == (
                entry.body, entry.entry_hash, entry.prev_hash, entry.seq, entry.actor)
            assert datetime.fromisoformat(row["occurred_at"]) == entry.occurred_at
    disposition, text = _exported(post_form(web, f"{AUDIT}/export", {"action": "loan.", "form": "jsonl"},
                                            page=AUDIT))
    assert disposition.endswith('.jsonl"')
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["id"] for line in lines] == ids_where(container, AuditEntry.action.like("loan.%"))
    assert {line["action"] for line in lines} == {"loan.write_off", "loan.writeXoff"}
    with container.db.transaction() as session:
        exports = session.scalars(select(AuditEntry).where(AuditEntry.action == "audit.exported")
                                  .order_by(AuditEntry.id)).all()
    assert [json.loads(e.body)["details"]["format"] for e in exports] == ["csv", "jsonl"]
    first = json.loads(exports[0].body)["details"]
    assert first["actor"] == "staff:12" and exports[0].actor.startswith("staff:")
    assert datetime.fromisoformat(first["since"]) == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert datetime.fromisoformat(first["until"]) == datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


def test_a_role_without_audit_read_is_refused_everywhere(client, container, clock, log):
    web = console_as(client, container, clock, "cs.nine", ("customer_service",))
    assert web.get(AUDIT).status_code == 403
    assert web.get(f"{AUDIT}/entries/{log['pii']}").status_code == 403
    assert post_form(web, f"{AUDIT}/verify").status_code == 403
    assert post_form(web, f"{AUDIT}/export", {"form": "csv"}).status_code == 403
    assert 'data-testid="menu-audit"' not in web.get("/console").text
    with container.db.transaction() as session:
        assert session.scalar(select(AuditEntry.id).where(AuditEntry.action.in_(
            ["audit.exported", "audit.chain_verified"]))) is None


def test_a_common_action_prefix_finds_the_same_entries_by_the_time_index(container, clock, log, monkeypatch):
    """On SQLite a prefix of many entries is read through the time index instead (staff_audit.PREFIX_PROBE)."""
    from miaodai.identity import staff_audit

    prefixes = ("staff.", "loan.write_", "pii.", "loan.", "nothing.")
    rare = {p: [e.id for e in audit_search(container.db, AuditFilter(action_prefix=p), limit=50).entries]
            for p in prefixes}
    monkeypatch.setattr(staff_audit, "PREFIX_PROBE", 1)
    statements = []

    def seen(_conn, _cursor, statement, *_rest):
        statements.append(statement)

    event.listen(container.db.autocommit_engine, "before_cursor_execute", seen)
    try:
        for prefix in prefixes:
            common = audit_search(container.db, AuditFilter(action_prefix=prefix), limit=50).entries
            assert [e.id for e in common] == rare[prefix] == ids_where(container, AuditEntry.action.startswith(
                prefix, autoescape=True)), prefix
    finally:
        event.remove(container.db.autocommit_engine, "before_cursor_execute", seen)
    if container.db.dialect == "sqlite":  # the index on action is hidden from the page's query when common
        pages = [sql for sql in statements if "ORDER BY" in sql]
        assert sum("audit_entries.action || " in sql for sql in pages) == 4  # not for nothing.: it is rare
    assert rare["loan.write_"] == [log["eod"]]


def _statements_of(container, fetch):
    """(the answer, how many statements the database ran for it)."""
    count = 0

    def counted(*_args) -> None:
        nonlocal count
        count += 1

    event.listen(container.db.engine, "before_cursor_execute", counted)
    try:
        answer = fetch()
    finally:
        event.remove(container.db.engine, "before_cursor_execute", counted)
    return answer, count


def _actor_cell(page, entry_id) -> str:
    row = re.search(rf'<tr data-entry-id="{entry_id}">(.*?)</tr>', page.text, re.DOTALL).group(1)
    return re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)[2]


def test_a_customer_page_opened_in_the_console_is_in_the_audit_log_under_the_viewers_name(client, container,
                                                                                           clock):
    borrower = demo_borrower(client, container)
    me = borrower["borrower_id"]
    agent = console_as(client, container, clock, "cs.viewer", ("customer_service",))
    assert agent.get(f"/console/customers/{me}").status_code == 200
    web = console_as(client, container, clock, "au.names", ("auditor",))
    page = web.get(AUDIT, params={"borrower": str(me), "action": "customer.viewed"})
    [entry_id] = shown(page)
    with container.db.transaction() as session:
        entry = session.get(AuditEntry, entry_id)
    assert entry.subject == f"borrower:{me}" and json.loads(entry.body)["details"]["via"] == "console"
    cell = _actor_cell(page, entry_id)
    assert "Cs.Viewer" in cell and "cs.viewer" in cell  # the display name and the username
    assert f"<code class=\"muted\">{entry.actor}</code>" in cell  # and the raw actor, still there
    detail = web.get(f"{AUDIT}/entries/{entry_id}")
    assert 'data-testid="actor-name"' in detail.text and "Cs.Viewer" in detail.text and entry.actor in detail.text


def test_the_audit_page_names_its_staff_actors_in_one_statement_however_many(client, container, clock):
    web = console_as(client, container, clock, "au.count", ("auditor",))
    clock.advance(timedelta(minutes=1))
    record(container, actor="staff:1", action="test.named")  # the seeded administrator
    record(container, actor="staff:999999", action="test.named")  # no such account: shown as it is
    record(container, actor="eod", action="test.named")
    web.get(AUDIT)  # the session's activity, noted once (the clock stands still from here)
    one, few = _statements_of(container, lambda: web.get(AUDIT, params={"action": "test.named"}))
    assert 'data-testid="actor-name"' in one.text
    assert "<code>staff:999999</code>" in one.text and "<code>eod</code>" in one.text
    for n in range(5):
        record(container, actor=f"staff:{add_staff(container, f'au.more{n}', ('auditor',)).staff_id}",
               action="test.named")
    six, many = _statements_of(container, lambda: web.get(AUDIT, params={"action": "test.named"}))
    assert six.text.count('data-testid="actor-name"') == 6
    assert many == few  # one statement for the names, not one per row
