"""The console's credit review desk on both databases: the queue oldest first with age and SLA colouring, the
case with its bureau summary, findings, score and reasons, the reviewer's decision, and an override that only a
second approver (never the first reviewer) makes final — every refusal shown on the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from miaodai.core.audit import AuditEntry
from miaodai.credit import bureau
from miaodai.credit.carrier_data import SHORT_TENURE_PHONE
from miaodai.credit.models import CreditApplication, ReviewCase, ReviewStatus
from miaodai.demo import seed_demo
from miaodai.loans.models import CreditLine
from miaodai.web.console.reviews import SLA
from tests.console_support import console_as, post_form
from tests.credit_support import applicant, apply, install_test_model, quick_parties

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")

PHONE = "13700137001"


@pytest.fixture
def credit(container):
    seed_demo(container)
    install_test_model(container)
    quick_parties(container)


def _referred(client) -> dict:
    """A clean file on a new SIM: referred to a person, the engine suggesting approval."""
    who = applicant(client, SHORT_TENURE_PHONE, bureau.CLEAN_FILE_ID, name="李小华")
    body = apply(client, who).json()
    assert body["status"] == "in_review", body
    return body


def _asked_for_review(client) -> dict:
    """Declined for nine inquiries, then the borrower asks for a person: the engine suggests declining."""
    who = applicant(client, PHONE, bureau.MULTI_BORROWING_ID)
    declined = apply(client, who).json()
    asked = client.post(f"/v1/credit/applications/{declined['id']}/human-review", json={"note": "I repaid them"},
                        headers=who["headers"])
    assert asked.status_code == 201, asked.text
    return declined


def _case_id(container, application_id: int) -> int:
    with container.db.transaction() as session:
        return session.execute(select(ReviewCase.id).where(ReviewCase.application_id == application_id)).scalar_one()


def _case(container, case_id: int) -> ReviewCase:
    with container.db.transaction() as session:
        case = session.get_one(ReviewCase, case_id)
        session.expunge(case)
    return case


def _lines(container, application_id: int) -> list[int]:
    """The limits of the applicant's credit lines."""
    with container.db.transaction() as session:
        borrower_id = session.get_one(CreditApplication, application_id).borrower_id
        return list(session.scalars(select(CreditLine.limit_fen).where(CreditLine.borrower_id == borrower_id)))


def _problem(page) -> str | None:
    found = re.search(r'class="problem" role="alert" data-code="([A-Z_]+)"', page.text)
    return found.group(1) if found else None


def test_the_queue_is_oldest_first_masked_with_age_and_sla_colour(client, container, clock, credit):
    clock.set(datetime(2026, 12, 7, 2, 0, tzinfo=UTC))  # 10:00 Beijing: the desk is open
    first = _referred(client)
    clock.advance(timedelta(hours=1))
    second = _asked_for_review(client)
    clock.advance(timedelta(hours=2, minutes=10))  # the first has waited 3 h 10 min (79 % of 4 h), the second 2 h 10
    web = console_as(client, container, clock, "rita.reviewer", ("risk_reviewer",))
    page = web.get("/console/reviews")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    ids = [int(x) for x in re.findall(r'data-testid="review-row-(\d+)"', page.text)]
    assert ids == [_case_id(container, first["id"]), _case_id(container, second["id"])]
    assert re.findall(r'data-sla="(\w+)"', page.text) == ["near", "ok"]
    assert "3 小时 10 分" in page.text and "李**" in page.text and "李小华" not in page.text
    assert "您的手机号在网时长为" in page.text  # why the first was referred, in the page's language
    clock.advance(timedelta(hours=1))  # 4 h 10 min and 3 h 10 min (and the first session idled out)
    web = console_as(client, container, clock, "rory.reviewer", ("risk_reviewer",))
    assert re.findall(r'data-sla="(\w+)"', web.get("/console/reviews").text) == ["late", "near"]
    english = web.get("/console/reviews?lang=en")
    assert "4 h 10 min" in english.text and "Your phone number has been in service" in english.text


def test_the_sla_counts_the_desks_working_hours_only():
    opened = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # 20:00 Beijing: one working hour left that day
    assert SLA.working_seconds(opened, opened + timedelta(hours=14)) == 7200  # to 10:00 next day: 1 h + 1 h
    assert SLA.deadline(opened) == datetime(2026, 12, 8, 4, 0, tzinfo=UTC)  # 12:00 Beijing the next day
    assert SLA.state(opened, datetime(2026, 12, 8, 3, 0, tzinfo=UTC)) == "near"  # 3 of 4 working hours
    assert SLA.state(opened, datetime(2026, 12, 7, 22, 0, tzinfo=UTC)) == "ok"  # 06:00: the desk was closed


def test_the_case_shows_what_the_engine_saw_and_viewing_it_is_audited(client, container, clock, credit):
    case_id = _case_id(container, _asked_for_review(client)["id"])
    web = console_as(client, container, clock, "rita.reviewer", ("risk_reviewer",))
    page = web.get(f"/console/reviews/{case_id}")
    assert page.status_code == 200
    text = page.text
    assert "王**" in text and "王小明" not in text and "110101199003089" not in text  # masked
    assert "I repaid them" in text  # the borrower's note
    assert re.search(r"近 3 个月.*?</dt><dd>9</dd>", text, re.S)  # the bureau summary: nine inquiries
    assert "CREDIT_TOO_MANY_INQUIRIES" in text  # the rule finding that declined it
    assert 'data-testid="decide-form"' in text and 'data-testid="second-form"' not in text
    with container.db.transaction() as session:
        viewed = session.scalars(select(AuditEntry.action).where(
            AuditEntry.subject == f"credit_review_case:{case_id}")).all()
    assert viewed == ["credit.review.viewed"]
    assert web.get("/console/reviews/999999").status_code == 404


def test_a_decision_that_follows_the_engine_is_final_at_once(client, container, clock, credit):
    referred = _referred(client)
    case_id = _case_id(container, referred["id"])
    web = console_as(client, container, clock, "rita.reviewer", ("risk_reviewer",))
    page = f"/console/reviews/{case_id}"
    done = post_form(web, f"{page}/decision", {"outcome": "approve", "limit": "8,000",
                                               "reason": "clean file, new SIM only"}, page=page)
    assert done.status_code == 303 and done.headers["location"] == f"{page}?done=decided"
    assert "决定已记录，系统将短信通知借款人。" in web.get(done.headers["location"]).text
    assert _case(container, case_id).status is ReviewStatus.DECIDED
    assert _lines(container, referred["id"]) == [800_000]
    # The queue no longer holds it; deciding again is refused on the page.
    assert f'review-row-{case_id}"' not in web.get("/console/reviews").text
    again = post_form(web, f"{page}/decision", {"outcome": "decline", "reason": "changed my mind"}, page=page)
    assert again.status_code == 409 and _problem(again) == "CREDIT_CASE_CLOSED"


@pytest.mark.parametrize(("form", "code"), [
    ({"outcome": "approve", "limit": "8000", "reason": "ok"}, "CREDIT_REVIEW_REASON_MISSING"),
    ({"outcome": "approve", "limit": "8000", "reason": "      "}, "CREDIT_REVIEW_REASON_MISSING"),
    ({"outcome": "approve", "limit": "eight thousand", "reason": "clean file"}, "CREDIT_REVIEW_LIMIT_INVALID"),
    ({"outcome": "approve", "limit": "99999999", "reason": "clean file"}, "CREDIT_REVIEW_LIMIT_INVALID"),
    ({"outcome": "maybe", "reason": "clean file"}, "VALIDATION_FAILED"),
])
def test_a_bad_decision_form_is_shown_back_with_the_refusal(client, container, clock, credit, form, code):
    case_id = _case_id(container, _referred(client)["id"])
    web = console_as(client, container, clock, "rita.reviewer", ("risk_reviewer",))
    page = f"/console/reviews/{case_id}"
    answer = post_form(web, f"{page}/decision", form, page=page)
    assert answer.status_code == 422 and _problem(answer) == code
    assert 'data-testid="decide-form"' in answer.text  # the form again, with what was typed
    assert _case(container, case_id).status is ReviewStatus.OPEN


def test_an_override_waits_for_a_second_approver_who_is_not_the_first(client, container, clock, credit):
    declined = _asked_for_review(client)
    case_id = _case_id(container, declined["id"])
    page = f"/console/reviews/{case_id}"
    max_ = console_as(client, container, clock, "max.manager", ("risk_manager",))
    decided = post_form(max_, f"{page}/decision", {"outcome": "approve", "limit": "10000",
                                                   "reason": "inquiries were one mortgage shopping"}, page=page)
    assert decided.headers["location"] == f"{page}?done=override"
    assert _case(container, case_id).status is ReviewStatus.AWAITING_SECOND
    own = max_.get(page)
    assert 'data-testid="second-form"' not in own.text and 'data-testid="awaiting-other"' in own.text
    assert "推翻" in own.text  # marked as an override
    # The same person posting anyway (an old tab, a forged form): the service refuses, the page says so.
    refused = post_form(max_, f"{page}/second-approval", {"verdict": "approve"}, page=page)
    assert refused.status_code == 403 and _problem(refused) == "CREDIT_FOUR_EYES"
    assert _case(container, case_id).status is ReviewStatus.AWAITING_SECOND
    # A reviewer without review.approve_override is not offered the form and may not post it.
    rita = console_as(client, container, clock, "rita.reviewer", ("risk_reviewer",))
    assert 'data-testid="second-form"' not in rita.get(page).text
    assert post_form(rita, f"{page}/second-approval", {"verdict": "approve"}, page=page).status_code == 403
    # A second manager sees it and approves: the line is granted.
    mia = console_as(client, container, clock, "mia.manager", ("risk_manager",))
    assert 'data-testid="second-form"' in mia.get(page).text
    approved = post_form(mia, f"{page}/second-approval", {"verdict": "approve", "note": "agreed"}, page=page)
    assert approved.headers["location"] == f"{page}?done=approved"
    case = _case(container, case_id)
    assert case.status is ReviewStatus.DECIDED and case.second_by is not None and case.second_by != case.decided_by
    assert _lines(container, declined["id"]) == [1_000_000]
    closed = mia.get(page).text
    assert "Max.Manager @max.manager" in closed and "Mia.Manager @mia.manager" in closed
    again = post_form(mia, f"{page}/second-approval", {"verdict": "reject"}, page=page)
    assert again.status_code == 409 and _problem(again) == "CREDIT_CASE_NOT_AWAITING_SECOND"


def test_a_rejected_override_goes_back_to_the_queue(client, container, clock, credit):
    case_id = _case_id(container, _referred(client)["id"])
    page = f"/console/reviews/{case_id}"
    max_ = console_as(client, container, clock, "max.manager", ("risk_manager",))
    post_form(max_, f"{page}/decision", {"outcome": "decline", "reason": "new SIM, no history"}, page=page)
    mia = console_as(client, container, clock, "mia.manager", ("risk_manager",))
    rejected = post_form(mia, f"{page}/second-approval", {"verdict": "reject", "note": "tenure alone is not enough"},
                         page=page)
    assert rejected.headers["location"] == f"{page}?done=rejected"
    assert _case(container, case_id).status is ReviewStatus.OPEN
    assert 'data-testid="decide-form"' in mia.get(page).text


def test_roles_without_the_permission_get_403_on_the_forms(client, container, clock, credit):
    case_id = _case_id(container, _referred(client)["id"])
    page = f"/console/reviews/{case_id}"
    finance = console_as(client, container, clock, "fin.one", ("finance",))
    assert finance.get("/console/reviews").status_code == 403
    assert post_form(finance, f"{page}/decision", {"outcome": "approve", "reason": "clean file"}).status_code == 403
    assert _case(container, case_id).status is ReviewStatus.OPEN
