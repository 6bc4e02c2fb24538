"""The customer desk of the console (客户视图) through a browser's requests: search by every kind, the borrower's
page masked, a reveal with a reason shown once and audited, and the refusals on the page."""

from __future__ import annotations

import re

import pytest

from miaodai.backoffice import reveal as reveals
from miaodai.core.audit import AuditEntry
from miaodai.demo import DEMO_BORROWERS
from tests.console_support import console_as, csrf, post_form
from tests.loan_support import active_loan, demo_borrower

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")

DEMO = DEMO_BORROWERS[0]  # 王小明, +8613800138001, 110101199003071233, a line and an ICBC card
PHONE = "13800138001"
REASON = {"reason_kind": "customer_request", "reason": "来电核实身份，工单 CS-20261207-0042"}
SECRETS = (DEMO.name, DEMO.id_number, PHONE)
SEARCH = "/console/customers"


@pytest.fixture
def book(client, container, clock):
    """The demo borrower with a paid-out loan (contract, schedule, payout order, statement)."""
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    return {"borrower_id": borrower["borrower_id"], "loan": loan}


def _reveals(container, borrower_id: int) -> list[AuditEntry]:
    with container.db.transaction() as session:
        return list(session.query(AuditEntry).filter(AuditEntry.subject == f"borrower:{borrower_id}",
                                                     AuditEntry.action == reveals.REVEALED))


def test_every_kind_of_search_finds_the_borrower_and_opens_the_page(client, container, clock, book):
    web = console_as(client, container, clock, "cs.agent", ("customer_service",))
    me = book["borrower_id"]
    card = DEMO.card
    assert card is not None
    loan_no = book["loan"]["loan_no"]
    for kind, q in (("phone", "+86 138-0013-8001"), ("id_number", DEMO.id_number.lower()), ("name", "王 小明"),
                    ("loan", loan_no.lower()), ("contract", book["loan"]["contract"]["contract_no"]),
                    ("card", f"{card[:6]}****{card[-4:]}")):
        answer = post_form(web, "/console/customers", {"kind": kind, "q": q}, page=SEARCH)
        assert answer.status_code == 303, (kind, answer.text)
        assert answer.headers["location"] == f"/console/customers/{me}", kind
    # The search is a post: what was typed never rides in a URL (history, logs); a GET only shows the form.
    typed_in_url = web.get(SEARCH, params={"kind": "phone", "q": PHONE})
    assert typed_in_url.status_code == 200 and 'data-testid="search-results"' not in typed_in_url.text
    assert '<form method="post" action="/console/customers"' in typed_in_url.text


def test_a_miss_says_nothing_found_and_bad_text_says_why(client, container, clock, book):
    web = console_as(client, container, clock, "cs.agent", ("customer_service",))
    miss = post_form(web, "/console/customers", {"kind": "phone", "q": "13800138009"}, page=SEARCH)
    assert miss.status_code == 200
    assert 'data-testid="search-nothing"' in miss.text and "没有找到符合条件的客户" in miss.text
    bad = post_form(web, "/console/customers", {"kind": "id_number", "q": "1101"}, page=SEARCH)
    assert bad.status_code == 422 and 'data-code="CUSTOMER_QUERY_INVALID"' in bad.text
    assert "请按该方式的格式输入，例如 110101199003070054" in bad.text
    unknown = post_form(web, "/console/customers", {"kind": "shoe_size", "q": "42"}, page=SEARCH)
    assert unknown.status_code == 422 and 'data-code="VALIDATION_FAILED"' in unknown.text
    form = web.get("/console/customers")
    assert form.status_code == 200 and 'data-testid="customer-search"' in form.text
    for secret in SECRETS:  # the examples are shapes, not the demo borrower's values
        assert secret not in form.text and secret not in miss.text, secret


def test_the_page_shows_the_whole_picture_masked(client, container, clock, book):
    web = console_as(client, container, clock, "cs.agent", ("customer_service",))
    page = web.get(f"/console/customers/{book['borrower_id']}")
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    for secret in (*SECRETS, DEMO.card, "1990-03-07"):
        assert secret not in page.text, secret
    for masked in ("王**", "110101********1233", "138****8001", f"{DEMO.card[:6]}****{DEMO.card[-4:]}"):
        assert masked in page.text, masked
    for section in ("identity", "consents", "devices", "applications", "lines", "loans", "methods", "orders",
                    "messages", "audit", "actions"):
        assert f'href="#{section}"' in page.text and f'id="{section}"' in page.text, section
    assert book["loan"]["loan_no"] in page.text and "¥10,000.00" in page.text  # the loan, in yuan
    assert 'data-testid="reveal-full_name"' in page.text  # customer service may reveal
    assert '<span class="muted">privacy_policy</span>' in page.text  # a consent's kind, by its stored name


def test_a_reveal_with_a_reason_shows_the_value_once_and_is_audited(client, container, clock, book):
    web = console_as(client, container, clock, "cs.agent", ("customer_service",))
    me = book["borrower_id"]
    page = f"/console/customers/{me}"
    answer = post_form(web, f"{page}/reveal", {"field": "id_number", **REASON}, page=page)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store" and answer.headers["pragma"] == "no-cache"
    assert re.search(rf'data-testid="revealed-id_number">{DEMO.id_number}<', answer.text)
    assert DEMO.name not in answer.text  # only the field asked for
    [entry] = _reveals(container, me)
    assert f'data-testid="audit-new" data-action="{reveals.REVEALED}"' in answer.text
    assert f"#{entry.id}" in answer.text and "CS-20261207-0042" in answer.text
    assert DEMO.id_number not in answer.headers.get("location", "") + answer.headers.get("set-cookie", "")
    # Opening the page again shows the mask, and the entry in the trail.
    again = web.get(page)
    assert DEMO.id_number not in again.text and f"#{entry.id}" in again.text


def test_a_card_number_is_revealed_for_the_card_named(client, container, clock, book):
    web = console_as(client, container, clock, "cs.agent", ("customer_service",))
    me = book["borrower_id"]
    page = f"/console/customers/{me}"
    method_id = re.search(r'name="payment_method_id" value="(\d+)"', web.get(page).text).group(1)
    answer = post_form(web, f"{page}/reveal", {"field": "card_number", "payment_method_id": method_id, **REASON},
                       page=page)
    assert answer.status_code == 200 and f'data-testid="revealed-card_number-{method_id}">{DEMO.card}<' in answer.text


def test_refusals_are_shown_on_the_page_with_the_form_kept(client, container, clock, book):
    web = console_as(client, container, clock, "cs.agent", ("customer_service",))
    me = book["borrower_id"]
    page = f"/console/customers/{me}"
    short = post_form(web, f"{page}/reveal", {"field": "full_name", "reason_kind": "complaint", "reason": "why"},
                      page=page)
    assert short.status_code == 422 and 'data-code="REVEAL_REASON_REQUIRED"' in short.text
    assert '<details class="reveal" open data-testid="reveal-full_name">' in short.text
    assert DEMO.name not in short.text and not _reveals(container, me)
    no_kind = post_form(web, f"{page}/reveal", {"field": "full_name", "reason": REASON["reason"]}, page=page)
    assert no_kind.status_code == 422 and 'data-code="VALIDATION_FAILED"' in no_kind.text
    assert DEMO.name not in no_kind.text
    for _ in range(reveals.REVEALS_PER_HOUR):
        assert post_form(web, f"{page}/reveal", {"field": "phone", **REASON}, page=page).status_code == 200
    over = post_form(web, f"{page}/reveal", {"field": "phone", **REASON}, page=page)
    assert over.status_code == 429 and 'data-code="REVEAL_LIMIT"' in over.text and PHONE not in over.text
    missing = post_form(web, "/console/customers/999999/reveal", {"field": "phone", **REASON}, page=page)
    assert missing.status_code == 404 and 'data-code="CUSTOMER_NOT_FOUND"' in missing.text


def test_a_role_without_reveal_reads_masked_and_cannot_reveal(client, container, clock, book):
    web = console_as(client, container, clock, "risk.reviewer", ("risk_reviewer",))  # borrower.read only
    me = book["borrower_id"]
    page = web.get(f"/console/customers/{me}")
    assert page.status_code == 200 and "王**" in page.text
    assert 'class="reveal"' not in page.text and "/reveal" not in page.text
    refused = web.post(f"/console/customers/{me}/reveal", data={"field": "full_name", **REASON,
                                                               "csrf_token": csrf(page)})
    assert refused.status_code == 403 and DEMO.name not in refused.text
    assert not _reveals(container, me)


def test_a_role_without_borrower_read_cannot_search(client, container, clock, book):
    web = console_as(client, container, clock, "fin", ("finance",))
    assert post_form(web, "/console/customers", {"kind": "phone", "q": PHONE}).status_code == 403
    assert web.get(f"/console/customers/{book['borrower_id']}").status_code == 403
    assert 'href="/console/customers"' not in web.get("/console").text  # not in the menu either


def test_an_unknown_customer_is_a_page_that_says_so(client, container, clock):
    web = console_as(client, container, clock, "cs.agent", ("customer_service",))
    page = web.get("/console/customers/424242")
    assert page.status_code == 404 and 'data-code="CUSTOMER_NOT_FOUND"' in page.text


def test_english_page(client, container, clock, book):
    web = console_as(client, container, clock, "cs.agent", ("customer_service",))
    page = web.get(f"/console/customers/{book['borrower_id']}", params={"lang": "en"})
    assert page.status_code == 200 and "Identity and KYC" in page.text and "Audit trail" in page.text


def test_a_declined_application_shows_reasons_rules_score_and_model(client, container, clock):
    from miaodai.demo import seed_demo
    from tests.credit_support import applicant, apply

    seed_demo(container)  # the product
    who = applicant(client, "13912345678", "110101199003089038", name="张三")  # currently overdue at the bureau
    decided = apply(client, who)
    assert decided.status_code == 201 and decided.json()["decision"] == "declined", decided.text
    web = console_as(client, container, clock, "cs.agent", ("customer_service",))
    found = post_form(web, "/console/customers", {"kind": "name", "q": "张三"}, page=SEARCH)
    assert found.status_code == 303
    page = web.get(found.headers["location"])
    assert page.status_code == 200, page.text
    application = decided.json()
    block = page.text[page.text.index(f'data-testid="application-{application["id"]}"'):]
    block = block[:block.index("</article>")]
    assert "CREDIT_BUREAU_CURRENT_OVERDUE" in block and "已拒绝" in block
    assert 'data-testid="rules-' in block and "bureau_current_overdue" in block.lower()
    assert "<code>" in block and "张三" not in page.text and "110101199003089038" not in page.text
    checks = page.text[page.text.index('data-testid="kyc-checks"'):]
    assert checks.count("通过") >= 2  # the carrier's check and the face's, each passed
    assert checks[:checks.index("</table>")].count("年") >= 2  # each with its time (identity's own row)
