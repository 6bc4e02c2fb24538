"""An overdue borrower cannot draw: on both databases, through the API and the app, a drawdown while any
installment is unpaid past its due date plus grace is refused (LOAN_BORROWER_OVERDUE, with what is owed and
where to repay it), the line reads as frozen with nothing available, the start page says the loan is overdue
and what is owed with a repay button and no draw button — and once the borrower is current, all of it comes
back. Within grace the borrower may still draw. The credit policy's ``delinquency`` section decides (a ruleset
counting from the due date refuses within grace too), and the answer holds between end-of-day runs."""

from __future__ import annotations

import copy
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from miaodai.core.clock import business_date
from miaodai.credit.registry import default_ruleset
from miaodai.loans.models import Loan, LoanInstallment
from miaodai.web.i18n import day, yuan
from tests.helpers import assert_problem, login, staff_headers
from tests.integration.test_web_draw import draw_form
from tests.integration.test_web_loans import code_of, text, web_login
from tests.integration.test_web_login import web as web  # noqa: F401  (the fixture)
from tests.loan_support import PHONE, active_loan, close_through, demo_borrower, repay


@pytest.fixture
def borrower(client, container):
    return demo_borrower(client, container)


@pytest.fixture
def loan(client, clock, borrower):
    return active_loan(client, clock, borrower)  # 10,000 yuan over 12 months on a 20,000-yuan line; grace 3 days


def first_due(container, loan) -> date:
    with container.db.transaction() as session:
        return session.execute(select(LoanInstallment.due_date).where(
            LoanInstallment.loan_id == loan["id"], LoanInstallment.period == 1)).scalar_one()


def owed_now(container, loan) -> tuple[int, int]:
    """(principal + interest + fee + penalty of the first installment unpaid, its penalty)."""
    with container.db.transaction() as session:
        i = session.execute(select(LoanInstallment).where(
            LoanInstallment.loan_id == loan["id"], LoanInstallment.period == 1)).scalar_one()
        return (i.principal_fen + i.interest_fen + i.fee_fen + i.penalty_fen
                - i.principal_paid_fen - i.interest_paid_fen - i.fee_paid_fen - i.penalty_paid_fen), i.penalty_fen


def days_later(client, container, clock, last: date) -> dict:
    """Close every business date through ``last`` (the clock ends the morning after) and log in again: the
    login of the day the loan was drawn has expired by then."""
    close_through(container, clock, last)
    return login(client, PHONE)


def draw(client, borrower, key: str, principal_fen: int = 200_000):
    line_id = client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["id"]
    return client.post("/v1/loans", json={"line_id": line_id, "principal_fen": principal_fen, "term_months": 6},
                       headers={**borrower["headers"], "Idempotency-Key": key})


def the_line(client, borrower) -> dict:
    (line,) = client.get("/v1/credit-lines", headers=borrower["headers"]).json()
    return line


def test_six_days_past_due_with_penalty_is_refused_and_paying_up_opens_the_line_again(
        client, container, clock, borrower, loan):
    borrower = days_later(client, container, clock, first_due(container, loan) + timedelta(days=5))  # 6 days late
    owed, penalty = owed_now(container, loan)
    assert penalty > 0  # the batch charged penalty interest and the late fee after the 3 days of grace
    with container.db.transaction() as session:
        assert session.get(Loan, loan["id"]).days_past_due == 6

    refused = assert_problem(draw(client, borrower, "while-overdue"), 409, "LOAN_BORROWER_OVERDUE")
    assert refused["params"] == {"loan_id": loan["id"], "days_past_due": 6, "owed_fen": owed,
                                 "owed_yuan": f"{owed // 100}.{owed % 100:02d}"}
    assert "6" in refused["message_zh"] and "逾期" in refused["message_zh"] and "overdue" in refused["message_en"]
    assert f"/v1/loans/{loan['id']}/repayments" in refused["action"]["en"] and refused["action"]["zh"]
    line = the_line(client, borrower)
    assert (line["status"], line["available_fen"], line["frozen_reason"]) == ("frozen", 0, "overdue")
    assert line["overdue"] == {"loan_id": loan["id"], "days_past_due": 6, "owed_now_fen": owed}
    with container.db.transaction() as session:  # nothing was reserved or stored by the refusal
        assert session.execute(select(Loan.id)).scalars().all() == [loan["id"]]

    assert repay(client, loan["id"], owed, "pay-up").status_code in (200, 201)
    line = the_line(client, borrower)
    with container.db.transaction() as session:
        outstanding = session.get(Loan, loan["id"]).principal_outstanding_fen
    assert (line["status"], line["available_fen"], line["overdue"]) == ("active", 2_000_000 - outstanding, None)
    assert draw(client, borrower, "current-again").status_code == 201


def test_within_grace_the_borrower_may_still_draw(client, container, clock, borrower, loan):
    borrower = days_later(client, container, clock, first_due(container, loan) + timedelta(days=1))  # 2 late, grace 3
    with container.db.transaction() as session:
        assert session.get(Loan, loan["id"]).status == "overdue"  # the batch's word: past due, not yet past grace
    line = the_line(client, borrower)
    assert (line["status"], line["available_fen"]) == ("active", 1_000_000)
    assert draw(client, borrower, "in-grace").status_code == 201
    # The last day of grace too (3 days past due); the day after, not.
    borrower = days_later(client, container, clock, first_due(container, loan) + timedelta(days=2))
    assert draw(client, borrower, "last-day-of-grace", principal_fen=100_000).status_code == 201
    borrower = days_later(client, container, clock, first_due(container, loan) + timedelta(days=3))
    assert_problem(draw(client, borrower, "past-grace", principal_fen=100_000), 409, "LOAN_BORROWER_OVERDUE")


def test_past_grace_is_refused_before_any_batch_has_run(client, container, clock, borrower, loan):
    """Between end-of-day runs the loan still reads ``active`` with 0 days past due: the installments decide."""
    due = first_due(container, loan)
    clock.advance(timedelta(days=(due - business_date(clock.now())).days + 4))  # 4 days past due, no batch run
    borrower = login(client, PHONE)
    with container.db.transaction() as session:
        stored = session.get(Loan, loan["id"])
        assert (stored.status, stored.days_past_due) == ("active", 0)
    refused = assert_problem(draw(client, borrower, "no-batch"), 409, "LOAN_BORROWER_OVERDUE")
    assert refused["params"]["days_past_due"] >= 4
    assert the_line(client, borrower)["status"] == "frozen"


@pytest.mark.usefixtures("fast_staff_hasher")
def test_a_policy_counting_from_the_due_date_refuses_within_grace_and_older_documents_keep_the_default(
        client, container, clock, borrower, loan):
    # A ruleset written before the section existed: valid, and it freezes after grace as the default does.
    older = copy.deepcopy(dict(default_ruleset().document)) | {"version": "before-delinquency"}
    del older["delinquency"]
    strict = copy.deepcopy(dict(default_ruleset().document)) | {"version": "strict-overdue"}
    strict["delinquency"] = {"line_while_overdue": "freeze", "overdue_from": "after_due_date"}
    borrower = days_later(client, container, clock, first_due(container, loan) + timedelta(days=1))  # 2 days late
    maker = staff_headers(client, container, clock, "max.manager", ("risk_manager",))
    checker = staff_headers(client, container, clock, "mia.manager", ("risk_manager",))
    bad = copy.deepcopy(strict) | {"version": "bad", "delinquency": {"line_while_overdue": "ignore"}}
    assert_problem(client.post("/v1/staff/credit/rulesets", json=bad, headers=maker), 422, "CREDIT_RULESET_INVALID")

    def activate(document: dict) -> None:
        assert client.post("/v1/staff/credit/rulesets", json=document, headers=maker).status_code == 201
        approved = client.post(f"/v1/staff/credit/rulesets/{document['version']}/approve", headers=checker)
        assert approved.status_code == 200, approved.text

    activate(older)
    assert draw(client, borrower, "older-policy").status_code == 201
    activate(strict)
    assert_problem(draw(client, borrower, "strict-policy", principal_fen=100_000), 409, "LOAN_BORROWER_OVERDUE")
    assert the_line(client, borrower)["status"] == "frozen"


def test_the_app_says_the_loan_is_overdue_and_what_is_owed_and_refuses_the_draw(
        web, client, container, clock, borrower, loan):
    close_through(container, clock, first_due(container, loan) + timedelta(days=5))
    owed, _penalty = owed_now(container, loan)
    web_login(web, clock)
    home = web.get("/app")
    assert home.status_code == 200
    notice = re.search(r'<section class="card overdue-alert" data-testid="overdue" data-state="overdue".*?</section>',
                       home.text, re.S)
    assert notice is not None and home.text.index('data-testid="overdue"') < home.text.index('data-testid="line-card"')
    assert re.search(r'data-testid="overdue-owed">([^<]+)<', home.text).group(1) == yuan(owed)
    assert "您的借款已逾期" in text(home) and "已逾期 6 天" in text(home)
    assert f'href="/app/loans/{loan["id"]}/repay?what=due"' in notice.group(0)
    assert 'href="/app/loans/new"' not in home.text and 'data-testid="line-frozen"' in home.text
    english = web.get("/app?lang=en")
    assert "Your loan is overdue" in text(english) and "6 days past due" in text(english)

    # The draw page's form, sent anyway, is refused by the same service with the app's words.
    _page, fields = draw_form(web, amount="1000", term="m6")
    refused = web.post("/app/loans/new", data=fields)
    assert refused.status_code == 409 and code_of(refused) == "LOAN_BORROWER_OVERDUE"
    assert "Repay what is overdue from the start page" in text(refused) and "/v1/" not in text(refused)

    assert repay(client, loan["id"], owed, "pay-up").status_code in (200, 201)
    home = web.get("/app")
    assert 'data-testid="overdue"' not in home.text and 'href="/app/loans/new"' in home.text
    _page, fields = draw_form(web, amount="1000", term="m6")
    assert web.post("/app/loans/new", data=fields).status_code == 303


def test_the_app_within_grace_says_what_is_owed_and_still_offers_the_draw(web, client, container, clock, borrower,
                                                                           loan):
    due = first_due(container, loan)
    close_through(container, clock, due + timedelta(days=1))
    owed, penalty = owed_now(container, loan)
    assert penalty == 0
    web_login(web, clock)
    home = web.get("/app")
    assert 'data-testid="overdue" data-state="grace"' in home.text
    assert re.search(r'data-testid="overdue-owed">([^<]+)<', home.text).group(1) == yuan(owed)
    assert f"在 {day(due + timedelta(days=3), 'zh_CN')} 前还清不收罚息" in text(home)  # the last day of grace
    assert 'href="/app/loans/new"' in home.text and 'data-testid="line-frozen"' not in home.text
