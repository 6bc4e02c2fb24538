"""Credit applications for borrowers: apply (decided in the same request), see them, ask for a human
review of an automated decline. Thin: parse, call ``credit.service``, shape the answer."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from miaodai.core.fields import RowId
from miaodai.credit import service
from miaodai.credit.features import Education, LoanPurpose, Occupation
from miaodai.credit.models import ReviewCase, ReviewKind, ReviewStatus
from miaodai.credit.ports import CreditPortsDep
from miaodai.credit.views import ApplicationView, application_view, approved_line_apr
from miaodai.identity.http import BearerToken, CurrentBorrower, borrower_of

router = APIRouter(tags=["credit applications"])


class ApplicationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monthly_income_fen: StrictInt = Field(gt=0, le=10**12, description="Declared monthly income after tax, in fen")
    occupation: Occupation
    education: Education
    loan_purpose: LoanPurpose
    product_code: str | None = Field(default=None, min_length=1, max_length=32,
                                     description="The product the line is for; the configured default if absent")


class HumanReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=500, description="Anything the reviewer should know")


class CaseView(BaseModel):
    id: int
    application_id: int
    kind: ReviewKind
    status: ReviewStatus
    created_at: datetime


@router.post("/v1/credit/applications", status_code=201,
             summary="Apply for a credit line: approved, declined (with reasons) or sent to review, in this request")
async def apply(body: ApplicationBody, token: BearerToken, ports: CreditPortsDep) -> ApplicationView:
    product_code = body.product_code or ports.settings.credit_default_product
    request = service.ApplicationRequest(
        monthly_income_fen=body.monthly_income_fen, occupation=body.occupation, education=body.education,
        loan_purpose=body.loan_purpose, product_code=product_code,
    )

    def authenticated_apply() -> ApplicationView:
        decided = service.apply(ports, borrower_of(ports, token), request)
        return application_view(decided, approved_line_apr(ports, decided, product_code))

    # The token's check and the decision both block on the database: they run in one threadpool hand-off
    # (a CurrentBorrower dependency would be a hand-off of its own), and FastAPI checks the answer on the
    # event loop (a sync endpoint would hand that to the threadpool again). A request with no token is
    # refused before its body is looked at; one with a wrong token and a malformed body gets the 422.
    return await run_in_threadpool(authenticated_apply)


@router.get("/v1/credit/applications", summary="My credit applications, newest first")
def my_applications(auth: CurrentBorrower, ports: CreditPortsDep) -> list[ApplicationView]:
    return [application_view(row, approved_line_apr(ports, row, row.product_id))
            for row in service.borrower_applications(ports, auth.borrower_id)]


@router.get("/v1/credit/applications/{application_id}", summary="One of my credit applications")
def my_application(application_id: RowId, auth: CurrentBorrower, ports: CreditPortsDep) -> ApplicationView:
    row = service.get_application(ports, auth.borrower_id, application_id)
    return application_view(row, approved_line_apr(ports, row, row.product_id))


@router.post("/v1/credit/applications/{application_id}/human-review", status_code=201,
             summary="Ask a person to review an automated decline (PIPL art. 24)")
def human_review(application_id: RowId, auth: CurrentBorrower, ports: CreditPortsDep,
                 body: HumanReviewBody = HumanReviewBody()) -> CaseView:
    case: ReviewCase = service.request_human_review(ports, auth, application_id, body.note)
    return CaseView(id=case.id, application_id=case.application_id, kind=case.kind, status=case.status,
                    created_at=case.created_at)
