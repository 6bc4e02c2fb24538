"""What other layers read of credit decisioning's tables: one borrower's applications with their decisions and
the review cases on them, for the staff's customer view (``backoffice.customer360``). ORM rows read in the
caller's session, a fixed number of statements."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.credit.models import CreditApplication, ReviewCase


@dataclass(frozen=True)
class ApplicationPicture:
    application: CreditApplication
    reviews: list[ReviewCase]


def applications_picture(session: Session, borrower_id: int) -> list[ApplicationPicture]:
    """The borrower's credit applications, newest first, each with its review cases (two statements)."""
    applications = list(session.scalars(select(CreditApplication).where(CreditApplication.borrower_id == borrower_id)
                                        .order_by(CreditApplication.id.desc())))
    if not applications:
        return []
    reviews: dict[int, list[ReviewCase]] = {a.id: [] for a in applications}
    for case in session.scalars(select(ReviewCase).where(ReviewCase.application_id.in_(list(reviews)))
                                .order_by(ReviewCase.id)):
        reviews[case.application_id].append(case)
    return [ApplicationPicture(a, reviews[a.id]) for a in applications]
