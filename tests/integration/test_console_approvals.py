"""The maker-checker desk: a servicing action proposed from its figures, approved by a second person (and
refused to the maker), a staff account's one-time password shown once to the checker, the other tables' items."""

from __future__ import annotations

import re

import pytest

from tests.console_support import browser, console_as, post_form
from tests.loan_support import demo_borrower

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


def _line_id(client, borrower):
    return client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["id"]


def test_a_freeze_is_proposed_from_its_figures_and_runs_when_another_approves(client, container, clock):
    borrower = demo_borrower(client, container)
    line_id = _line_id(client, borrower)
    maker = console_as(client, container, clock, "cs.maker", ("customer_service",))
    checker = console_as(client, container, clock, "rm.checker", ("risk_manager",))
    borrower_id = client.get("/v1/me", headers=borrower["headers"]).json()["borrower_id"]
    customer = maker.get(f"/console/customers/{borrower_id}")
    assert f'href="/console/servicing?kind=line_freeze&line_id={line_id}"' in customer.text  # offered there
    shown = maker.get(f"/console/servicing?kind=line_freeze&line_id={line_id}")
    assert shown.status_code == 200 and 'data-testid="figures"' in shown.text
    assert re.search(r"<code>status</code></td>\s*<td class=\"num\">active</td>\s*<td class=\"num\">frozen</td>",
                     shown.text)
    no_reason = post_form(maker, "/console/servicing", {"kind": "line_freeze", "line_id": line_id, "reason": ""},
                          page="/console/approvals")
    assert 'data-code="STAFF_REASON_REQUIRED"' in no_reason.text
    proposed = post_form(maker, "/console/servicing", {"kind": "line_freeze", "line_id": line_id,
                                                       "reason": "borrower reported a lost phone"},
                         page="/console/approvals")
    assert proposed.status_code == 303
    page = proposed.headers["location"].split("?")[0]
    approval_id = int(page.rsplit("/", 1)[1])
    own = maker.get(page)
    assert 'data-testid="own-request"' in own.text and 'data-testid="approve-form"' not in own.text
    forced = post_form(maker, f"{page}/approve", page=page)  # the form is not shown; the service refuses anyway
    assert forced.status_code == 403 and "data-code=\"APPROVAL_NOT_ALLOWED\"" in forced.text
    assert client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["status"] == "active"
    inbox = checker.get("/console/approvals")
    assert f'data-testid="open-{approval_id}"' in inbox.text and "冻结额度" in inbox.text
    assert f'data-testid="open-{approval_id}"' in maker.get("/console/approvals?mine=1").text
    approved = post_form(checker, f"{page}/approve", {"reason": "checked with the borrower"}, page=page)
    assert approved.status_code == 303 and approved.headers["location"].endswith("?done=approved")
    assert client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["status"] == "frozen"
    assert 'data-testid="inbox-empty"' in checker.get("/console/approvals").text


def test_a_new_staff_accounts_password_is_shown_once_to_the_checker(client, container, clock):
    maker = console_as(client, container, clock, "adm.maker", ("admin",))
    checker = console_as(client, container, clock, "adm.checker", ("admin",))
    post_form(maker, "/console/staff", {"username": "new.clerk", "display_name": "New Clerk",
                                        "roles": ["customer_service"], "reason": "hire HR-7"}, page="/console/staff")
    inbox = checker.get("/console/approvals").text
    approval_id = re.search(r'data-testid="open-(\d+)"', inbox).group(1)
    page = f"/console/approvals/{approval_id}"
    answer = post_form(checker, f"{page}/approve", page=page)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    password = re.search(r'data-testid="one-time-password">([^<]+)<', answer.text).group(1)
    assert len(password) >= 20
    assert password not in checker.get(page).text  # once
    newcomer = browser(client)
    first = post_form(newcomer, "/console/login", {"username": "new.clerk", "password": password, "totp_code": ""},
                      page="/console/login")
    assert first.status_code == 303 and first.headers["location"] == "/console/setup"
    assert newcomer.cookies.get("md_staff_setup")


def test_a_missing_figure_or_an_unknown_kind_is_a_clear_refusal(client, container, clock):
    web = console_as(client, container, clock, "cs.two", ("customer_service",))
    asks = web.get("/console/servicing?kind=penalty_waiver")
    assert asks.status_code == 200 and 'data-testid="propose-form"' not in asks.text
    unknown = web.get("/console/servicing?kind=staff_create")
    assert 'data-code="STAFF_UNKNOWN_CHANGE"' in unknown.text
    bare = post_form(web, "/console/servicing", {"kind": "line_limit", "line_id": "1", "reason": "more room"},
                     page="/console/approvals")
    assert 'data-code="VALIDATION_FAILED"' in bare.text


def test_the_maker_withdraws_their_own_request_from_its_page_and_no_one_else_can(client, container, clock):
    borrower = demo_borrower(client, container)
    line_id = _line_id(client, borrower)
    maker = console_as(client, container, clock, "cs.maker", ("customer_service",))
    other = console_as(client, container, clock, "cs.other", ("customer_service",))
    checker = console_as(client, container, clock, "rm.checker", ("risk_manager",))
    proposed = post_form(maker, "/console/servicing", {"kind": "line_freeze", "line_id": line_id,
                                                       "reason": "borrower reported a lost phone"},
                         page="/console/approvals")
    page = proposed.headers["location"].split("?")[0]
    assert 'data-testid="withdraw-form"' in maker.get(page).text
    assert 'data-testid="withdraw-form"' not in other.get(page).text
    assert 'data-testid="withdraw-form"' not in checker.get(page).text
    forced = post_form(other, f"{page}/withdraw", {"reason": "not mine to take back"}, page=page)
    assert forced.status_code == 403 and 'data-code="APPROVAL_NOT_MAKER"' in forced.text
    no_reason = post_form(maker, f"{page}/withdraw", {"reason": " "}, page=page)
    assert 'data-code="STAFF_REASON_REQUIRED"' in no_reason.text

    withdrawn = post_form(maker, f"{page}/withdraw", {"reason": "the phone was found"}, page=page)
    assert withdrawn.status_code == 303 and withdrawn.headers["location"].endswith("?done=withdrawn")
    shown = maker.get(withdrawn.headers["location"])
    assert 'data-testid="withdrawn"' in shown.text and "the phone was found" in shown.text
    assert "已由提出人撤回" in shown.text and 'data-testid="withdraw-form"' not in shown.text
    assert 'data-testid="approve-form"' not in checker.get(page).text
    late = post_form(checker, f"{page}/approve", page=page)
    assert late.status_code == 409 and 'data-code="APPROVAL_NOT_PENDING"' in late.text
    assert 'data-testid="inbox-empty"' in checker.get("/console/approvals").text
    assert client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["status"] == "active"
