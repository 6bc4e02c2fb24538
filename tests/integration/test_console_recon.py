"""The console's reconciliation exceptions desk on both databases: open exceptions newest first with their
amounts and age, an exception's evidence (our order and its events, the channel's statement row), resolving it
with a required note, the recent runs, and who may do what."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from miaodai.core.audit import AuditEntry
from miaodai.core.clock import business_date
from miaodai.payments import recon
from miaodai.payments.models import PaymentOrder, ReconException, ReconExceptionStatus
from tests.console_support import console_as, post_form
from tests.loan_support import active_loan, demo_borrower

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")

ACTOR = "system:test"


def _exception(container, kind: str) -> ReconException:
    with container.db.transaction() as session:
        found = session.execute(select(ReconException).where(ReconException.kind == kind)).scalar_one()
        session.expunge(found)
    return found


def _problem(page) -> str | None:
    found = re.search(r'class="problem" role="alert" data-code="([A-Z_]+)"', page.text)
    return found.group(1) if found else None


@pytest.fixture
def exceptions(client, container, clock):
    """A payout whose amount the channel's statement misstates, then (an hour later) money the channel moved
    under an order number we never sent: two exceptions of two runs."""
    loan = active_loan(client, clock, demo_borrower(client, container))
    with container.db.transaction() as session:
        order_no = session.execute(select(PaymentOrder.order_no).where(PaymentOrder.loan_id == loan["id"])).scalar_one()
    day = business_date(clock.now())
    container.channel.tamper_amount(order_no, 999_999)
    recon.run(container, "sandbox", day, actor=ACTOR)
    clock.advance(timedelta(hours=1))
    container.channel.inject_foreign_order("FOREIGN-0001", amount_fen=12_345)
    recon.run(container, "sandbox", day, actor=ACTOR)
    return order_no


def test_the_desk_lists_open_exceptions_newest_first_and_the_runs(client, container, clock, exceptions):
    clock.advance(timedelta(minutes=5))
    web = console_as(client, container, clock, "fin.one", ("finance",))
    page = web.get("/console/recon")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    foreign, tampered = _exception(container, recon.MISSING_OURS), _exception(container, recon.AMOUNT_MISMATCH)
    assert [int(x) for x in re.findall(r'data-testid="recon-row-(\d+)"', page.text)] == [foreign.id, tampered.id]
    assert "非我方订单" in page.text and "金额不符" in page.text
    assert "¥10,000.00" in page.text and "¥9,999.99" in page.text and "¥123.45" in page.text  # ours, theirs
    assert "1 小时 5 分" in page.text and "5 分钟" in page.text  # their ages
    runs = re.search(r'data-testid="recon-runs".*?</table>', page.text, re.S).group(0)
    assert runs.count("<tr>") == 3 and "金额不符 1" in runs and "非我方订单 1" in runs  # header + two runs
    english = web.get("/console/recon?lang=en").text
    assert "Not ours" in english and "Amount differs" in english


def test_an_exception_shows_its_evidence_and_is_resolved_with_a_note(client, container, clock, exceptions):
    tampered = _exception(container, recon.AMOUNT_MISMATCH)
    web = console_as(client, container, clock, "fin.one", ("finance",))
    path = f"/console/recon/exceptions/{tampered.id}"
    page = web.get(path)
    assert page.status_code == 200
    ours = re.search(r'data-testid="evidence-ours".*?</section>', page.text, re.S).group(0)
    channel = re.search(r'data-testid="evidence-channel".*?</section>', page.text, re.S).group(0)
    assert exceptions in ours and "¥10,000.00" in ours
    assert [e for e in ("created", "sent", "answered", "callback") if f"<td>{e}</td>" in ours] == [
        "created", "sent", "answered", "callback"]  # our order's events
    assert "<code>999999</code>" in channel and exceptions in channel  # the statement's row as the channel wrote it
    assert "以银行流水为准与通道核对" in page.text  # what to do about this kind

    for note in ("", "   ok   "):  # a note is required: at least five characters
        refused = post_form(web, f"{path}/resolve", {"resolution": note}, page=path)
        assert refused.status_code == 422 and _problem(refused) == "RECON_RESOLUTION_MISSING"
        assert 'data-testid="resolve-form"' in refused.text
    assert _exception(container, recon.AMOUNT_MISMATCH).status is ReconExceptionStatus.OPEN

    note = "Channel confirmed a typo in its file; re-issued statement agrees"
    done = post_form(web, f"{path}/resolve", {"resolution": note}, page=path)
    assert done.status_code == 303 and done.headers["location"] == f"{path}?done=resolved"
    shown = web.get(done.headers["location"]).text
    assert "差异已处理" in shown and note in shown and "Fin.One @fin.one" in shown
    assert 'data-testid="resolve-form"' not in shown
    resolved = _exception(container, recon.AMOUNT_MISMATCH)
    assert resolved.status is ReconExceptionStatus.RESOLVED and resolved.resolution == note
    with container.db.transaction() as session:
        assert session.scalars(select(AuditEntry.action).where(
            AuditEntry.subject == f"recon_exception:{tampered.id}")).all() == ["payments.recon.resolve"]
    # Off the open list, on the resolved one; another note later is refused on the page.
    assert f'recon-row-{tampered.id}"' not in web.get("/console/recon").text
    assert f'recon-row-{tampered.id}"' in web.get("/console/recon?status=resolved").text
    again = post_form(web, f"{path}/resolve", {"resolution": "something else entirely"}, page=path)
    assert again.status_code == 409 and _problem(again) == "RECON_EXCEPTION_ALREADY_RESOLVED"


def test_who_may_see_and_who_may_resolve(client, container, clock, exceptions):
    foreign = _exception(container, recon.MISSING_OURS)
    path = f"/console/recon/exceptions/{foreign.id}"
    auditor = console_as(client, container, clock, "aud.one", ("auditor",))
    page = auditor.get(path)
    assert page.status_code == 200 and 'data-testid="resolve-form"' not in page.text  # reads, cannot resolve
    assert "我方没有这个订单号" in page.text  # missing_ours: no order of ours to show
    assert post_form(auditor, f"{path}/resolve", {"resolution": "looked at it"}).status_code == 403
    service = console_as(client, container, clock, "cs.one", ("customer_service",))
    assert service.get("/console/recon").status_code == 403 and service.get(path).status_code == 403
    assert _exception(container, recon.MISSING_OURS).status is ReconExceptionStatus.OPEN
    finance = console_as(client, container, clock, "fin.one", ("finance",))
    assert finance.get("/console/recon/exceptions/999999").status_code == 404
