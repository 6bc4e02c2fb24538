"""Customer 360 (客户视图): staff find a customer through the blind indexes, read their whole picture masked, and
reveal a field only with the permission, a reason and within the limits — audited, and shown to the borrower."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import get_type_hints

import pytest
from sqlalchemy import event, select

from miaodai.backoffice import reveal as reveals
from miaodai.backoffice.customer360 import IdentitySection, customer360
from miaodai.core.audit import AuditEntry
from miaodai.demo import DEMO_BORROWERS
from miaodai.identity.models import ConsentKind, StaffUser
from miaodai.identity.read_models import ConsentRow, DeviceRow, FlagRow, KycAttemptRow, SessionRow
from miaodai.identity.staff_service import StaffContext
from tests.helpers import assert_problem, staff_headers
from tests.loan_support import active_loan, demo_borrower

DEMO = DEMO_BORROWERS[0]  # 王小明, +8613800138001, 110101199003071233, a line and an ICBC card
OTHER = DEMO_BORROWERS[1]
SEARCH = "/v1/staff/customers"
DENIED = "STAFF_PERMISSION_DENIED"
REASON = {"reason_kind": "customer_request", "reason": "来电核实身份，工单 CS-20261207-0042"}
VIEWER = StaffContext(1, "admin", "Admin", frozenset({"customer_service"}), 0)  # the seeded first staff account


@pytest.fixture
def book(client, container, clock, fast_staff_hasher):
    """The demo borrower with a paid-out loan (contract, schedule, payout order, statement) and a staff member of
    customer service (who may reveal)."""
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    staff = staff_headers(client, container, clock, "cs.agent", ("customer_service",))
    return {"borrower": borrower, "loan": loan, "staff": staff}


def _found(client, headers, kind: str, q: str) -> list[int]:
    response = client.get(SEARCH, params={"kind": kind, "q": q}, headers=headers)
    assert response.status_code == 200, response.text
    return [hit["borrower_id"] for hit in response.json()["hits"]]


def test_search_hits_each_kind_and_misses_a_near_value(client, book):
    staff, me = book["staff"], book["borrower"]["borrower_id"]
    loan_no = book["loan"]["loan_no"]
    card = DEMO.card
    assert card is not None
    near_loan = loan_no[:-1] + ("0" if loan_no[-1] != "0" else "1")
    cases = [
        ("phone", "13800138001", "13800138009"),
        ("phone", "+86 138-0013-8001", "13800138004"),
        ("id_number", DEMO.id_number, DEMO.id_number[:-1] + "4"),
        ("name", "王小明", "王小月"),
        ("name", "王 小明", "王小"),  # spaces do not matter; a part of the name is not the name
        ("loan", loan_no.lower(), near_loan),
        ("contract", book["loan"]["contract"]["contract_no"], near_loan),
        ("card", f"{card[:6]}****{card[-4:]}", f"{card[:6]}****{int(card[-4:]) ^ 1:04d}"),
        ("card", f"{card[:6]} {card[-4:]}", f"{card[:5]}9 {card[-4:]}"),
        ("card", card, card[:-2] + card[-1] + card[-2]),
    ]
    for kind, hit, near in cases:
        assert _found(client, staff, kind, hit) == [me], (kind, hit)
        assert _found(client, staff, kind, near) == [], (kind, near)


def test_a_name_verified_through_the_api_is_found_by_name(client, container, clock, fast_staff_hasher):
    from tests.credit_support import applicant

    who = applicant(client, "13912345678", "110101199003077774", name="张三丰")
    staff = staff_headers(client, container, clock, "cs.agent", ("customer_service",))
    assert _found(client, staff, "name", "张　三丰") == [who["borrower_id"]]  # a full-width space
    assert _found(client, staff, "name", "张三") == []


def test_search_answers_masked_and_refuses_text_that_is_not_the_kind(client, container, book, captured_logs):
    response = client.get(SEARCH, params={"kind": "phone", "q": "13800138001"}, headers=book["staff"])
    hit = response.json()["hits"][0]
    assert hit["masked"] == {"phone": "138****8001", "name": "王**", "id_number": "110101********1233"}
    for secret in (DEMO.name, DEMO.id_number, "13800138001"):
        assert secret not in response.text
    for kind, q in (("name", DEMO.name), ("id_number", DEMO.id_number), ("name", "李四光")):
        assert client.get(SEARCH, params={"kind": kind, "q": q}, headers=book["staff"]).status_code == 200
    # What was searched for reaches neither the logs nor the audit entries of the searches.
    searches = _entries(container, "customer.searched")
    assert [json.loads(e.body)["details"]["kind"] for e in searches] == ["phone", "name", "id_number", "name"]
    for secret in (DEMO.name, DEMO.id_number, "13800138001", "李四光"):
        assert secret not in captured_logs.getvalue() and all(secret not in e.body for e in searches)
    for kind, q in (("phone", "12345"), ("id_number", "11010119900307"), ("loan", "LN-1"), ("card", "6222")):
        problem = assert_problem(client.get(SEARCH, params={"kind": kind, "q": q}, headers=book["staff"]),
                                 422, "CUSTOMER_QUERY_INVALID")
        assert problem["params"]["kind"] == kind


def test_search_and_the_360_need_borrower_read(client, container, clock, book):
    finance = staff_headers(client, container, clock, "fin", ("finance",))  # loan.read, not borrower.read
    me = book["borrower"]["borrower_id"]
    assert_problem(client.get(SEARCH, params={"kind": "name", "q": "王小明"}, headers=finance), 403, DENIED)
    assert_problem(client.get(f"{SEARCH}/{me}", headers=finance), 403, DENIED)
    assert_problem(client.get(f"{SEARCH}/{me}"), 401, "STAFF_UNAUTHENTICATED")


def test_the_360_shows_the_whole_picture_masked(client, container, book):
    me = book["borrower"]["borrower_id"]
    response = client.get(f"{SEARCH}/{me}", headers=book["staff"])
    assert response.status_code == 200, response.text
    view = response.json()
    card = DEMO.card
    assert card is not None
    # Nothing in the clear: not the phone, the name, the ID number, the card number or the birth date.
    for secret in ("13800138001", DEMO.name, DEMO.id_number, card, "1990-03-07"):
        assert secret not in response.text, secret
    assert view["identity"]["masked"] == {"phone": "138****8001", "name": "王**", "id_number": "110101********1233"}
    assert view["identity"]["kyc_status"] == "verified"
    assert {c["kind"] for c in view["consents"]} >= {"privacy_policy", "user_agreement"}
    assert view["devices"] and view["sessions"][0]["state"] == "active"
    assert view["lines"][0]["limit_fen"] == DEMO.line_fen
    [loan] = view["loans"]
    assert loan["loan_no"] == book["loan"]["loan_no"] and loan["status"] == "active"
    assert len(loan["installments"]) == 12 and loan["contract"]["signed_at"]
    assert [s["kind"] for s in loan["statement"]][:2] == ["payout_ordered", "payout_paid"]
    [method] = view["payment_methods"]
    assert method["masked_number"] == f"{card[:6]}****{card[-4:]}"
    [payout] = [o for o in view["orders"] if o["purpose"] == "disbursement"]
    assert payout["status"] == "succeeded" and [e["event"] for e in payout["timeline"]][0] == "created"
    assert {"code.login", "code.contract_sign"} <= {m["kind"] for m in view["messages"]}
    actions = {e["action"] for e in view["audit_trail"]}
    assert {"loan.request", "contract.sign", "consent.granted", "login.succeeded"} <= actions
    assert set(view["revealable"]) == {"phone", "full_name", "id_number", "card_number"}
    assert_problem(client.get(f"{SEARCH}/999999", headers=book["staff"]), 404, "CUSTOMER_NOT_FOUND")


def _statements(container, borrower_id: int) -> int:
    count = 0

    def counted(*_args) -> None:
        nonlocal count
        count += 1

    event.listen(container.db.engine, "before_cursor_execute", counted)
    try:
        customer360(container, borrower_id, viewer=VIEWER, via="api")
    finally:
        event.remove(container.db.engine, "before_cursor_execute", counted)
    return count


def test_the_360_reads_in_a_fixed_number_of_statements(client, container, clock, book):
    me = book["borrower"]["borrower_id"]
    one_loan = _statements(container, me)
    active_loan(client, clock, book["borrower"], key="loan-2", principal_fen=500_000)
    client.post(f"/sandbox/loans/{book['loan']['id']}/repayments", json={"amount_fen": 10_000},
                headers={"Idempotency-Key": "repay-1"})
    two_loans = _statements(container, me)
    assert len(customer360(container, me, viewer=VIEWER, via="api").loans) == 2
    assert two_loans == one_loan  # no statement per loan, order or entry
    assert one_loan <= 25


def test_opening_a_customer_is_audited_who_whose_and_when_without_their_data(client, container, clock, book):
    me = book["borrower"]["borrower_id"]
    [other] = _found(client, book["staff"], "phone", OTHER.phone)
    with container.db.transaction() as session:
        staff_id = session.scalars(select(StaffUser.id).where(StaffUser.username == "cs.agent")).one()
    assert client.get(f"{SEARCH}/{me}", headers=book["staff"]).status_code == 200
    clock.advance(timedelta(minutes=3))
    second = client.get(f"{SEARCH}/{me}", headers=book["staff"]).json()
    assert client.get(f"{SEARCH}/{other}", headers=book["staff"]).status_code == 200
    assert_problem(client.get(f"{SEARCH}/999999", headers=book["staff"]), 404, "CUSTOMER_NOT_FOUND")

    viewed = _entries(container, "customer.viewed")
    assert [(e.actor, e.subject) for e in viewed] == [
        (f"staff:{staff_id}", f"borrower:{me}"), (f"staff:{staff_id}", f"borrower:{me}"),
        (f"staff:{staff_id}", f"borrower:{other}")]  # the miss is not a view of anyone
    assert viewed[1].occurred_at - viewed[0].occurred_at == timedelta(minutes=3)
    assert json.loads(viewed[0].body)["details"] == {"roles": ["customer_service"], "via": "api"}
    for entry in viewed:  # nothing of what was shown
        assert all(value not in entry.body for value in (DEMO.phone, DEMO.id_number, DEMO.name, "138****8001"))
    # The second view's picture lists the first view in the borrower's trail, not itself.
    shown = [e for e in second["audit_trail"] if e["action"] == "customer.viewed"]
    assert [e["entry_id"] for e in shown] == [viewed[0].id]


def test_the_360_hands_on_identitys_own_rows(client, container, clock, book):
    me = book["borrower"]["borrower_id"]
    picture = customer360(container, me, viewer=VIEWER, via="api")
    assert picture.consents and {type(c) for c in picture.consents} == {ConsentRow}
    assert all(isinstance(c.kind, ConsentKind) for c in picture.consents)
    assert picture.devices and {type(d) for d in picture.devices} == {DeviceRow}
    assert picture.sessions and {type(s) for s in picture.sessions} == {SessionRow}
    hints = get_type_hints(IdentitySection)  # (the demo borrower was seeded verified: no check, no flag rows)
    assert (hints["checks"], hints["flags"]) == (list[KycAttemptRow], list[FlagRow])
    assert {s.state for s in picture.sessions} == {"active"}
    clock.advance(timedelta(days=400))  # every session has ended since
    later = customer360(container, me, viewer=VIEWER, via="api")
    assert {s.state for s in later.sessions} == {"expired"}


def _entries(container, action: str) -> list[AuditEntry]:
    with container.db.transaction() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_reveal_needs_the_permission_and_a_reason(client, container, clock, book):
    me = book["borrower"]["borrower_id"]
    url = f"{SEARCH}/{me}/reveal"
    reviewer = staff_headers(client, container, clock, "reviewer", ("risk_reviewer",))  # borrower.read only
    assert_problem(client.post(url, json={"field": "full_name", **REASON}, headers=reviewer), 403, DENIED)
    short = {"field": "full_name", "reason_kind": "complaint", "reason": "  看一下   "}
    assert_problem(client.post(url, json=short, headers=book["staff"]), 422, "REVEAL_REASON_REQUIRED")
    no_kind = {"field": "full_name", "reason": REASON["reason"]}
    assert_problem(client.post(url, json=no_kind, headers=book["staff"]), 422, "VALIDATION_FAILED")
    not_theirs = {"field": "card_number", "payment_method_id": 999999, **REASON}
    assert_problem(client.post(url, json=not_theirs, headers=book["staff"]), 404, "REVEAL_VALUE_ABSENT")
    assert _entries(container, reveals.REVEALED) == []


def test_a_reveal_answers_once_uncached_and_is_audited_without_the_value(client, container, book, captured_logs):
    me = book["borrower"]["borrower_id"]
    url = f"{SEARCH}/{me}/reveal"
    card = DEMO.card
    assert card is not None
    method_id = client.get(f"{SEARCH}/{me}", headers=book["staff"]).json()["payment_methods"][0]["method_id"]
    expected = {"full_name": DEMO.name, "id_number": DEMO.id_number, "phone": DEMO.phone, "card_number": card}
    for field, value in expected.items():
        body = {"field": field, **REASON, **({"payment_method_id": method_id} if field == "card_number" else {})}
        response = client.post(url, json=body, headers=book["staff"])
        assert response.status_code == 200, response.text
        assert response.json()["value"] == value
        assert "no-store" in response.headers["Cache-Control"]
    entries = _entries(container, reveals.REVEALED)
    assert [json.loads(e.body)["details"]["field"] for e in entries] == list(expected)
    for entry in entries:
        details = json.loads(entry.body)["details"]
        assert entry.subject == f"borrower:{me}" and entry.actor.startswith("staff:")
        assert details["reason_kind"] == "customer_request" and details["roles"] == ["customer_service"]
        for value in (*expected.values(), DEMO.phone.removeprefix("+86")):
            assert value not in entry.body
    logs = captured_logs.getvalue()
    for value in (*expected.values(), DEMO.phone.removeprefix("+86")):
        assert value not in logs
    # The borrower sees who looked, at what and why; another borrower sees nothing of it.
    seen = client.get("/v1/me/data-access", headers=book["borrower"]["headers"])
    assert seen.status_code == 200, seen.text
    assert [a["field"] for a in seen.json()] == list(reversed(expected))
    first = seen.json()[-1]
    assert first["staff_id"] == int(entries[0].actor.removeprefix("staff:"))
    assert first["roles"] == ["customer_service"] and first["reason"] == REASON["reason"]
    assert first["reason_kind_zh"] == "客户来电或来函核实身份"
    from tests.helpers import login

    other = login(client, OTHER.phone, device="another-phone-0001")
    assert client.get("/v1/me/data-access", headers=other["headers"]).json() == []


def test_a_typed_phone_number_in_the_reason_is_masked(client, container, book):
    me = book["borrower"]["borrower_id"]
    body = {"field": "phone", "reason_kind": "complaint", "reason": "客户从 13912345678 来电投诉，需要核对号码"}
    assert client.post(f"{SEARCH}/{me}/reveal", json=body, headers=book["staff"]).status_code == 200
    [entry] = _entries(container, reveals.REVEALED)
    assert "13912345678" not in entry.body and "139****5678" in entry.body


def test_reveals_are_capped_per_staff_member_by_hour_and_by_day(client, container, clock, book, monkeypatch):
    monkeypatch.setattr(reveals, "REVEALS_PER_HOUR", 2)
    monkeypatch.setattr(reveals, "REVEALS_PER_DAY", 3)
    me = book["borrower"]["borrower_id"]
    url, body = f"{SEARCH}/{me}/reveal", {"field": "id_number", **REASON}
    assert [client.post(url, json=body, headers=book["staff"]).status_code for _ in range(2)] == [200, 200]
    problem = assert_problem(client.post(url, json=body, headers=book["staff"]), 429, "REVEAL_LIMIT")
    assert problem["params"]["cap"] == 2
    # Another staff member has their own count.
    colleague = staff_headers(client, container, clock, "cs.colleague", ("collections",))
    assert client.post(url, json=body, headers=colleague).status_code == 200
    clock.advance(timedelta(hours=1))
    assert client.post(url, json=body, headers=book["staff"]).status_code == 200
    problem = assert_problem(client.post(url, json=body, headers=book["staff"]), 429, "REVEAL_LIMIT")
    assert problem["params"]["cap"] == 3  # the day's cap now
    assert len(_entries(container, reveals.REVEALED)) == 4
    refused = _entries(container, reveals.REFUSED)
    assert [json.loads(e.body)["details"]["refusal"] for e in refused] == ["REVEAL_LIMIT", "REVEAL_LIMIT"]
    assert all(DEMO.id_number not in e.body for e in refused)


def test_the_backfill_indexes_names_verified_before_the_name_index(client, container, settings, book):
    from sqlalchemy import update

    from miaodai.identity.models import KycIdentity
    from tests.cli_support import run_cli

    with container.db.transaction() as session:  # as rows verified before migration 0016 are
        session.execute(update(KycIdentity).values(name_bidx=None))
    assert _found(client, book["staff"], "name", DEMO.name) == []
    result = run_cli(settings, "customers", "backfill-index", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"indexed": len(DEMO_BORROWERS)}
    assert DEMO.name not in result.output
    assert _found(client, book["staff"], "name", DEMO.name) == [book["borrower"]["borrower_id"]]
    assert json.loads(run_cli(settings, "customers", "backfill-index").output) == {"indexed": 0}
