"""Reconciliation (对账) on both databases: a channel's daily statement against our payment orders.

Matched payouts; a payout whose callback never came settled from the statement (the loan activates,
the book balances); an order the channel never got from us, a tampered amount, a succeeded order the
statement leaves out and a contradicting status each queued once with the evidence; the same statement
again changes nothing; a malformed statement stores nothing; the CLI's exit codes and JSON line; the
staff queue over HTTP with its permissions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from miaodai.core.audit import AuditEntry
from miaodai.core.clock import business_date, start_of_business_day
from miaodai.core.errors import DomainError
from miaodai.demo import DEMO_BORROWERS
from miaodai.payments import recon
from miaodai.payments.models import OrderStatus, PaymentOrder, PaymentOrderEvent, ReconException, ReconRun
from miaodai.sandbox.channel import ACCOUNT_NO_CALLBACK, RECONCILIATION_COLUMNS
from tests.cli_support import run_cli
from tests.helpers import assert_problem, staff_headers
from tests.integration.test_disbursement import _signed
from tests.loan_support import active_loan, assert_book_sound, demo_borrower

ACTOR = "system:test"


class EditedStatement:
    """The sandbox channel with its daily statement edited on the way out (everything else is the
    sandbox's): a channel that lists less than happened, or something else."""

    def __init__(self, channel: Any, edit: Callable[[str], str]) -> None:
        self._channel, self._edit = channel, edit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    def reconciliation_file(self, day: date) -> str:
        return self._edit(self._channel.reconciliation_file(day))


def _rows_edited(change: Callable[[dict[str, str]], dict[str, str] | None]) -> Callable[[str], str]:
    """An edit that passes each row through ``change`` (None drops the row)."""

    def edit(text: str) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=RECONCILIATION_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in csv.DictReader(io.StringIO(text)):
            changed = change(dict(row))
            if changed is not None:
                writer.writerow(changed)
        return out.getvalue()

    return edit


def _statement(container: Any, text: str) -> None:
    container.channel = EditedStatement(container.channel, lambda _: text)


def _today(clock) -> date:
    return business_date(clock.now())


def _order(container, loan_id: int) -> PaymentOrder:
    with container.db.transaction() as session:
        return session.execute(select(PaymentOrder).where(PaymentOrder.loan_id == loan_id)).scalar_one()


def _count(container, *what) -> int:
    with container.db.transaction() as session:
        return session.execute(select(func.count()).select_from(what[0]).where(*what[1:])).scalar_one()


def _exceptions(container) -> list[tuple[str, str]]:
    with container.db.transaction() as session:
        return [tuple(r) for r in session.execute(
            select(ReconException.kind, ReconException.order_no).order_by(ReconException.id))]


def _counts(**nonzero: int) -> dict[str, int]:
    return {key: nonzero.get(key, 0) for key in recon.COUNT_KEYS}


def test_the_statement_columns_are_the_sandbox_channels():
    assert set(recon.FILE_COLUMNS) == set(RECONCILIATION_COLUMNS)


def test_a_day_of_payouts_matches_and_the_unknown_payout_is_settled_from_the_statement(client, container, clock):
    matched = active_loan(client, clock, demo_borrower(client, container))
    clock.advance(timedelta(seconds=61))  # the login's resend cooldown
    borrower, loan_id, _ = _signed(client, container, clock, ACCOUNT_NO_CALLBACK)
    day = _today(clock)

    # The channel is still paying: the query says processing, so the order is pending, not an exception.
    early = recon.run(container, "sandbox", day, actor=ACTOR)
    assert early.counts == _counts(matched=1, pending=1) and early.open_exceptions == 0
    assert _order(container, loan_id).status is OrderStatus.PROCESSING

    clock.advance(timedelta(seconds=30))  # paid at the channel; no callback ever comes
    container.channel.inject_foreign_order("FOREIGN-0001", amount_fen=12_345)
    result = recon.run(container, "sandbox", day, actor=ACTOR)
    assert result.run.id != early.run.id and not result.already_recorded
    assert result.counts == _counts(matched=1, resolved=1, missing_ours=1)
    assert (result.new_exceptions, result.open_exceptions) == (1, 1)
    order = _order(container, loan_id)
    assert order.status is OrderStatus.SUCCEEDED and order.channel_txn_id
    assert client.get(f"/v1/loans/{loan_id}", headers=borrower["headers"]).json()["status"] == "active"
    assert _count(container, PaymentOrderEvent, PaymentOrderEvent.order_id == order.id,
                  PaymentOrderEvent.event == recon.RECONCILED_EVENT) == 1
    assert _count(container, PaymentOrder, PaymentOrder.status == OrderStatus.PROCESSING) == 0
    assert_book_sound(container)
    assert _exceptions(container) == [("missing_ours", "FOREIGN-0001")]
    with container.db.transaction() as session:
        foreign = session.execute(select(ReconException)).scalar_one()
    evidence = json.loads(foreign.evidence)
    assert evidence["ours"] is None and evidence["file_row"]["amount_fen"] == "12345"
    assert (foreign.channel_amount_fen, foreign.channel_status, foreign.our_status) == (12_345, "succeeded", None)

    again = recon.run(container, "sandbox", day, actor=ACTOR)
    assert again.already_recorded and again.run.id == result.run.id and again.counts == result.counts
    assert again.new_exceptions == 0 and _count(container, ReconException) == 1
    assert _count(container, ReconRun) == 2
    assert _count(container, AuditEntry, AuditEntry.action == "payments.recon.run") == 2
    assert matched["status"] == "active"


def test_amount_missing_and_status_disagreements_are_queued_once_each(client, container, clock):
    loan = active_loan(client, clock, demo_borrower(client, container))
    order_no = _order(container, loan["id"]).order_no
    day = _today(clock)
    sandbox = container.channel

    sandbox.tamper_amount(order_no, 999_999)
    tampered = recon.run(container, "sandbox", day, actor=ACTOR)
    assert tampered.counts == _counts(amount_mismatch=1)
    with container.db.transaction() as session:
        found = session.execute(select(ReconException)).scalar_one()
    assert (found.kind, found.our_amount_fen, found.channel_amount_fen) == ("amount_mismatch", 1_000_000, 999_999)
    evidence = json.loads(found.evidence)
    assert evidence["file_row"]["order_no"] == order_no and evidence["ours"]["status"] == "succeeded"
    assert [e["event"] for e in evidence["ours"]["events"]] == ["created", "sent", "answered", "callback"]
    assert DEMO_BORROWERS[0].card not in found.evidence and DEMO_BORROWERS[0].card[-4:] not in found.evidence

    container.channel = EditedStatement(sandbox, _rows_edited(lambda row: None))  # the statement leaves it out
    left_out = recon.run(container, "sandbox", day, actor=ACTOR)
    assert left_out.counts == _counts(missing_channel=1) and left_out.open_exceptions == 2

    container.channel = EditedStatement(sandbox, _rows_edited(lambda row: {**row, "status": "failed"}))
    contradicted = recon.run(container, "sandbox", day, actor=ACTOR)
    assert contradicted.counts == _counts(amount_mismatch=1, status_mismatch=1)
    assert contradicted.new_exceptions == 1 and contradicted.open_exceptions == 3
    assert _exceptions(container) == [("amount_mismatch", order_no), ("missing_channel", order_no),
                                      ("status_mismatch", order_no)]
    # Nothing was posted or changed on our side: exceptions are for staff.
    order = _order(container, loan["id"])
    assert order.status is OrderStatus.SUCCEEDED and order.amount_fen == 1_000_000
    assert _count(container, PaymentOrderEvent, PaymentOrderEvent.event == recon.RECONCILED_EVENT) == 0
    assert_book_sound(container)


def _line(order_no: str = "MD1", *, finished_at: str = "2026-11-22T10:00:02+08:00", **fields: str) -> str:
    row = {"order_no": order_no, "channel_txn_id": "SBX1", "kind": "payout", "amount_fen": "100",
           "status": "succeeded", "finished_at": finished_at, **fields}
    return ",".join(row[c] for c in RECONCILIATION_COLUMNS) + "\n"


HEADER = ",".join(RECONCILIATION_COLUMNS) + "\n"


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"),
    ("order_no,kind,amount_fen\nMD1,payout,100\n", "header"),
    (HEADER + "MD1,SBX1,payout,100,succeeded\n", "5 fields"),
    (HEADER + _line(amount_fen="12.50"), "amount_fen"),
    (HEADER + _line(amount_fen="-100"), "amount_fen"),
    (HEADER + _line(kind="refund"), "kind"),
    (HEADER + _line(status="processing"), "status"),
    (HEADER + _line(order_no="MD 1"), "order_no"),
    (HEADER + _line(finished_at="2026-11-22T10:00:02"), "UTC offset"),
    (HEADER + _line(finished_at="yesterday"), "ISO 8601"),
    (HEADER + _line(finished_at="2026-11-21T23:59:59+08:00"), "not on the statement's day"),
    (HEADER + _line() + _line(), "listed twice"),
])
def test_a_malformed_statement_is_refused_and_nothing_is_stored(container, clock, text, reason):
    _statement(container, text)
    with pytest.raises(DomainError) as refused:
        recon.run(container, "sandbox", _today(clock), actor=ACTOR)
    assert refused.value.code == "RECON_FILE_MALFORMED" and reason in refused.value.message_en
    assert _count(container, ReconRun) == 0 and _count(container, ReconException) == 0
    assert _count(container, AuditEntry, AuditEntry.action == "payments.recon.run") == 0


def test_a_statement_with_a_byte_order_mark_and_columns_in_another_order_is_read(container, clock):
    columns = list(reversed(RECONCILIATION_COLUMNS))
    row = {"order_no": "EXT-1", "channel_txn_id": "", "kind": "collection", "amount_fen": "100",
           "status": "failed", "finished_at": start_of_business_day(_today(clock)).isoformat()}
    _statement(container, "\ufeff" + ",".join(columns) + "\n" + ",".join(row[c] for c in columns) + "\n")
    result = recon.run(container, "sandbox", _today(clock), actor=ACTOR)
    assert result.counts == _counts(missing_ours=1)


def test_an_unknown_channel_and_a_day_not_begun_are_refused(container, clock):
    with pytest.raises(DomainError) as unknown:
        recon.run(container, "unionpay", _today(clock), actor=ACTOR)
    assert unknown.value.code == "RECON_CHANNEL_UNKNOWN" and "sandbox" in unknown.value.problem()["action"]["en"]
    with pytest.raises(DomainError) as future:
        recon.run(container, "sandbox", _today(clock) + timedelta(days=1), actor=ACTOR)
    assert future.value.code == "RECON_DATE_IN_FUTURE"
    assert _count(container, ReconRun) == 0


def _cli(settings, *args: str):
    return run_cli(settings, "recon", "run", *args, sandbox_channel_store=str(settings.sandbox_channel_store))


def _last_json(result) -> dict[str, Any]:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_cli_exit_code_says_whether_exceptions_are_open(settings, container, clock):
    # The CLI runs on the wall clock, which is past the tests' day, and opens the same sandbox store.
    day = _today(clock).isoformat()
    clean = _cli(settings, "--channel", "sandbox", "--date", day)
    assert clean.exit_code == 0, clean.output
    assert _last_json(clean)["counts"] == _counts() and "matched" in clean.stdout

    container.channel.inject_foreign_order("FOREIGN-CLI-1", amount_fen=5_000)
    found = _cli(settings, "--channel", "sandbox", "--date", day)
    assert found.exit_code == 1, found.output
    figures = _last_json(found)
    assert figures["counts"] == _counts(missing_ours=1) and figures["open_exceptions"] == 1
    assert figures["run_id"] != _last_json(clean)["run_id"] and figures["already_recorded"] is False

    [(exception_id,)] = [(e.id,) for e in recon.exceptions_page(container).items]
    recon.resolve(container, exception_id, resolution="test transfer, reversed by the channel", actor=ACTOR)
    again = _cli(settings, "--channel", "sandbox", "--date", day)
    assert again.exit_code == 0, again.output
    assert _last_json(again) == {**figures, "already_recorded": True, "new_exceptions": 0, "open_exceptions": 0}
    assert "reconciled before" in again.stdout

    unknown = _cli(settings, "--channel", "unionpay", "--date", day)
    assert unknown.exit_code == 2 and "RECON_CHANNEL_UNKNOWN" in unknown.output
    assert _cli(settings, "--channel", "sandbox", "--date", "22/11/2026").exit_code == 2
    assert _count(container, ReconRun) == 2


def test_staff_read_and_resolve_the_queue_with_their_permissions(client, container, clock, fast_staff_hasher):
    day = _today(clock)
    for n in range(3):
        container.channel.inject_foreign_order(f"FOREIGN-{n}", amount_fen=1_000 + n)
    run_id = recon.run(container, "sandbox", day, actor=ACTOR).run.id
    finance = staff_headers(client, container, clock, "fin.one", ("finance",))
    auditor = staff_headers(client, container, clock, "aud.one", ("auditor",))
    service = staff_headers(client, container, clock, "cs.one", ("customer_service",))
    base = "/v1/staff/recon"

    runs = client.get(f"{base}/runs", params={"channel": "sandbox", "date": day.isoformat()}, headers=auditor).json()
    assert [r["id"] for r in runs["runs"]] == [run_id] and runs["runs"][0]["counts"]["missing_ours"] == 3
    first = client.get(f"{base}/exceptions", params={"limit": 2}, headers=finance).json()
    assert [e["order_no"] for e in first["exceptions"]] == ["FOREIGN-2", "FOREIGN-1"]
    rest = client.get(f"{base}/exceptions", params={"limit": 2, "before_id": first["next_before_id"]},
                      headers=finance).json()
    assert [e["order_no"] for e in rest["exceptions"]] == ["FOREIGN-0"] and rest["next_before_id"] is None
    other_day = client.get(f"{base}/exceptions", params={"date": (day - timedelta(days=1)).isoformat()},
                           headers=finance).json()
    assert other_day["exceptions"] == []

    exception_id = rest["exceptions"][0]["id"]
    detail = client.get(f"{base}/exceptions/{exception_id}", headers=auditor).json()
    assert detail["kind"] == "missing_ours" and detail["evidence"]["file_row"]["order_no"] == "FOREIGN-0"
    assert detail["evidence"]["ours"] is None and detail["what_to_do_en"] and detail["meaning_zh"]

    assert_problem(client.get(f"{base}/exceptions", headers=service), 403, "STAFF_PERMISSION_DENIED")
    note = {"resolution": "Channel's test transfer; it reversed it on 2026-11-23"}
    assert_problem(client.post(f"{base}/exceptions/{exception_id}/resolve", json=note, headers=auditor),
                   403, "STAFF_PERMISSION_DENIED")
    assert_problem(client.get(f"{base}/exceptions"), 401, "STAFF_UNAUTHENTICATED")

    resolved = client.post(f"{base}/exceptions/{exception_id}/resolve", json=note, headers=finance)
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved" and body["resolution"] == note["resolution"]
    assert body["resolved_by"].startswith("staff:")
    replay = client.post(f"{base}/exceptions/{exception_id}/resolve", json=note, headers=finance)
    assert replay.status_code == 200 and replay.json() == body
    assert_problem(client.post(f"{base}/exceptions/{exception_id}/resolve", json={"resolution": "something else"},
                               headers=finance), 409, "RECON_EXCEPTION_ALREADY_RESOLVED")
    assert_problem(client.post(f"{base}/exceptions/{exception_id}/resolve", json={"resolution": "  ok  "},
                               headers=finance), 422, "VALIDATION_FAILED")
    assert_problem(client.get(f"{base}/exceptions/999999", headers=finance), 404, "RECON_EXCEPTION_NOT_FOUND")

    def listed(status: str) -> list[str]:
        page = client.get(f"{base}/exceptions", params={"status": status}, headers=finance).json()
        return [e["order_no"] for e in page["exceptions"]]

    assert listed("open") == ["FOREIGN-2", "FOREIGN-1"] and listed("resolved") == ["FOREIGN-0"]
    assert len(listed("all")) == 3
    assert _count(container, AuditEntry, AuditEntry.action == "payments.recon.resolve") == 1
