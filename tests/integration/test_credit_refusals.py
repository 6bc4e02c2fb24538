"""What the applicant's own standing decides is refused before the bureau is asked (each query costs money
and shows on the borrower's credit record), and applications are capped per borrower per day and per 7
days. The bureau's queries are counted: a refusal makes none, and stores nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from miaodai.credit import bureau
from miaodai.credit.bureau import SandboxBureau
from miaodai.credit.carrier_data import SHORT_TENURE_PHONE
from miaodai.credit.models import CreditApplication, ReviewCase
from miaodai.demo import seed_demo
from miaodai.loans.models import CreditLine
from miaodai.loans.states import LineStatus
from tests.credit_support import applicant, apply, install_test_model, quick_parties
from tests.helpers import assert_problem, login

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")

PHONE = "13700137101"


class CountingBureau(SandboxBureau):
    """The sandbox bureau, counting the reports asked of it."""

    def __init__(self, **options):
        super().__init__(**options)
        self.queries: list[str] = []

    def report(self, id_number, name):
        self.queries.append(id_number)
        return super().report(id_number, name)


@pytest.fixture
def queries(container) -> list[str]:
    seed_demo(container)
    install_test_model(container)
    quick_parties(container)
    counting = CountingBureau(timeout_seconds=container.settings.provider_timeout_seconds, latency_seconds=0,
                              sleep=lambda _s: None)
    container.bureau = counting
    return counting.queries


def _stored(container, borrower_id: int | None = None) -> int:
    with container.db.transaction() as session:
        query = select(func.count()).select_from(CreditApplication)
        if borrower_id is not None:
            query = query.where(CreditApplication.borrower_id == borrower_id)
        return session.execute(query).scalar_one()


def _cases(container) -> int:
    with container.db.transaction() as session:
        return session.execute(select(func.count()).select_from(ReviewCase)).scalar_one()


def test_an_open_line_refuses_a_new_application_without_asking_the_bureau(client, container, queries):
    who = applicant(client, PHONE, bureau.CLEAN_FILE_ID)
    assert apply(client, who).json()["status"] == "approved"
    assert len(queries) == 1
    for _ in range(3):
        problem = assert_problem(apply(client, who), 409, "CREDIT_TOO_MANY_LINES")
        assert problem["action"]["en"]
    assert len(queries) == 1 and _stored(container) == 1


def test_inside_the_cooling_off_period_the_refusal_says_when_without_asking_the_bureau(
        client, container, clock, queries):
    who = applicant(client, PHONE, bureau.CURRENT_OVERDUE_ID)
    declined = apply(client, who).json()
    assert declined["status"] == "declined" and declined["reapply_on"] == "2026-12-22"
    clock.advance(timedelta(days=29))
    problem = assert_problem(apply(client, who), 409, "CREDIT_COOLING_OFF")
    assert problem["params"] == {"reapply_on": "2026-12-22"} and "2026-12-22" in problem["message_zh"]
    assert len(queries) == 1 and _stored(container) == 1
    # On the date it names, the applicant is decided again (and the bureau asked again).
    clock.advance(timedelta(days=1))
    who = login(client, PHONE, device=f"device-{PHONE}")  # the session of 30 days ago has lapsed
    assert apply(client, who).status_code == 201
    assert len(queries) == 2 and _stored(container) == 2


def test_an_application_in_review_refuses_another_and_opens_no_second_case(client, container, queries):
    who = applicant(client, SHORT_TENURE_PHONE, bureau.CLEAN_FILE_ID)
    referred = apply(client, who).json()
    assert referred["status"] == "in_review" and _cases(container) == 1
    problem = assert_problem(apply(client, who), 409, "CREDIT_REVIEW_PENDING")
    assert problem["params"] == {"application_id": referred["id"]}
    assert len(queries) == 1 and _stored(container) == 1 and _cases(container) == 1


def _close_lines(container, borrower_id: int) -> None:
    with container.db.transaction() as session:
        session.execute(update(CreditLine).where(CreditLine.borrower_id == borrower_id)
                        .values(status=LineStatus.CLOSED))


def test_the_cap_per_day_refuses_the_next_application_without_asking_the_bureau(client, container, clock, queries):
    container.settings.credit_max_applications_per_day = 2
    who = applicant(client, PHONE, bureau.CLEAN_FILE_ID)
    for _ in range(2):  # approved, the line closed: the borrower's standing allows another application
        body = apply(client, who).json()
        assert body["status"] == "approved"
        _close_lines(container, who["borrower_id"])
    problem = assert_problem(apply(client, who), 429, "CREDIT_APPLICATION_LIMIT")
    assert problem["params"] == {"count": 2, "days": 1, "reapply_on": "2026-11-23"}
    assert len(queries) == 2 and _stored(container) == 2
    clock.advance(timedelta(days=1))
    assert apply(client, who).json()["status"] == "approved"
    assert len(queries) == 3


def test_the_cap_per_7_days_names_the_day_the_window_allows_one_again(client, container, clock, queries):
    container.settings.credit_max_applications_per_7_days = 3
    who = applicant(client, PHONE, bureau.CLEAN_FILE_ID)
    for days in (0, 2, 1):  # 2026-11-22, -24 and -25
        clock.advance(timedelta(days=days))
        assert apply(client, who).json()["status"] == "approved"
        _close_lines(container, who["borrower_id"])
    clock.advance(timedelta(days=2))  # 2026-11-27: three in the last 7 days
    problem = assert_problem(apply(client, who), 429, "CREDIT_APPLICATION_LIMIT")
    # The window slides past 2026-11-22 on 2026-11-29.
    assert problem["params"] == {"count": 3, "days": 7, "reapply_on": "2026-11-29"}
    assert len(queries) == 3
    clock.advance(timedelta(days=2))
    assert apply(client, who).status_code == 201 and len(queries) == 4
