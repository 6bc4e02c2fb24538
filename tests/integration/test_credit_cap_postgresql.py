"""A burst of one borrower's applications at once, on PostgreSQL: the cap per day and the one-open-line rule
hold however the requests interleave.

The borrower's row lock serializes the decisions, but a PostgreSQL statement reads the database as it was
when it began: counting in the statement that waited for the lock would see none of the decisions it
waited for. Each thread's bureau answer takes a moment, so every thread has read the applicant's standing
(nothing stored yet) before the first one stores its decision. The slot each takes with that read (an atomic
counter) keeps the bureau's queries within the cap too.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from miaodai.core.errors import DomainError
from miaodai.credit import bureau, service
from miaodai.credit.bureau import SandboxBureau
from miaodai.credit.features import Education, LoanPurpose, Occupation
from miaodai.credit.models import CreditApplication
from miaodai.demo import seed_demo
from miaodai.identity import counters
from miaodai.identity.http import borrower_of
from miaodai.loans.models import CreditLine
from miaodai.loans.states import LineStatus
from tests.credit_support import applicant, install_test_model, quick_parties

PINNED_FIXTURES = ("backend",)
pytestmark = pytest.mark.usefixtures("fast_staff_hasher")

AT_ONCE = 8


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def slow_bureau(container) -> SandboxBureau:
    seed_demo(container)
    install_test_model(container)
    quick_parties(container)
    container.bureau = SandboxBureau(timeout_seconds=container.settings.provider_timeout_seconds,
                                     latency_seconds=0.3)
    return container.bureau


def _at_once(container: Any, who: dict[str, Any]) -> list[str]:
    """``AT_ONCE`` applications of one borrower released together; each: "stored" or the refusal's code."""
    auth = borrower_of(container, who["token"])
    request = service.ApplicationRequest(
        monthly_income_fen=2_000_000, occupation=Occupation.EMPLOYEE, education=Education.BACHELOR,
        loan_purpose=LoanPurpose.HOME_FURNISHING, product_code=container.settings.credit_default_product)
    start = threading.Barrier(AT_ONCE)

    def one(_: int) -> str:
        start.wait(30)
        try:
            service.apply(container, auth, request)
        except DomainError as refused:
            return refused.code
        return "stored"

    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        return list(pool.map(one, range(AT_ONCE)))


def _count(container, model: Any, *where: Any) -> int:
    with container.db.transaction() as session:
        return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_a_burst_of_declined_applications_stores_no_more_than_the_cap_per_day(client, container, slow_bureau):
    container.settings.credit_max_applications_per_day = 2
    who = applicant(client, "13700137201", bureau.CURRENT_OVERDUE_ID)  # declined: no line, no review to stop it
    outcomes = _at_once(container, who)
    stored = _count(container, CreditApplication, CreditApplication.borrower_id == who["borrower_id"])
    assert stored == outcomes.count("stored") == 2, outcomes
    assert set(outcomes) <= {"stored", "CREDIT_APPLICATION_LIMIT"}, outcomes


class CountingBureau(SandboxBureau):
    """The slow sandbox bureau, counting the reports asked of it (from any thread)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.queries: list[str] = []
        self._lock = threading.Lock()

    def report(self, id_number: str, name: str) -> Any:
        with self._lock:
            self.queries.append(id_number)
        return super().report(id_number, name)


def test_a_burst_asks_the_bureau_no_more_often_than_the_cap_allows(client, container, slow_bureau):
    """Every application of the burst reads the applicant's standing before any is stored: the slot each one
    takes before the bureau is asked (an atomic counter) lets only the cap's number of them ask it."""
    container.settings.credit_max_applications_per_day = 2
    counting = CountingBureau(timeout_seconds=container.settings.provider_timeout_seconds, latency_seconds=0.3)
    container.bureau = counting
    who = applicant(client, "13700137203", bureau.CURRENT_OVERDUE_ID)  # declined: no line, no review to stop it
    outcomes = _at_once(container, who)
    assert len(counting.queries) == outcomes.count("stored") == 2, (counting.queries, outcomes)
    assert outcomes.count("CREDIT_APPLICATION_LIMIT") == AT_ONCE - 2, outcomes
    # The refused gave their slots back: the day's count is of the applications that asked the bureau.
    with container.db.transaction() as session:
        slots = counters.peek(session, counters.Kind.CREDIT_APPLICATION_DAY, str(who["borrower_id"]),
                              container.clock.now())
    assert slots.n == 2


def test_a_burst_of_approvable_applications_grants_one_line(client, container, slow_bureau):
    who = applicant(client, "13700137202", bureau.CLEAN_FILE_ID)
    outcomes = _at_once(container, who)
    lines = _count(container, CreditLine, CreditLine.borrower_id == who["borrower_id"],
                   CreditLine.status != LineStatus.CLOSED)
    assert lines == 1 and outcomes.count("stored") == 1, outcomes
    # Beyond the cap (3 a day), the burst is refused before the bureau is asked.
    assert set(outcomes) <= {"stored", "CREDIT_TOO_MANY_LINES", "CREDIT_APPLICATION_LIMIT"}, outcomes
