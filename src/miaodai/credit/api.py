"""Credit applications for borrowers: apply (decided in the same request), see them, ask for a human
review of an automated decline. Thin: parse, call ``credit.service``, shape the answer."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from miaodai.credit import service
from miaodai.credit.features import Education, LoanPurpose, Occupation
from miaodai.credit.models import ApplicationStatus, CreditApplication, ReviewCase, ReviewKind, ReviewStatus
from miaodai.deps import BearerToken, ContainerDep, CurrentBorrower, RowId, borrower_of
from miaodai.loans.api_products import RateOut
from miaodai.loans.disclosure import AprExample, LineApr, line_apr_of

router = APIRouter(tags=["credit applications"])


class ApplicationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monthly_income_fen: StrictInt = Field(gt=0, le=10**12, description="Declared monthly income after tax, in fen")
    occupation: Occupation
    education: Education
    loan_purpose: LoanPurpose
    product_code: str | None = Field(default=None, min_length=1, max_length=32,
                                     description="The product the line is for; the configured default if absent")


class Reason(BaseModel):
    code: str
    message_zh: str
    message_en: str
    tip_zh: str | None = None
    tip_en: str | None = None


class LineOffer(BaseModel):
    credit_line_id: int | None
    limit_fen: int
    apr: RateOut | None = Field(default=None, description=(
        "Annualized rate of all costs (IRR: interest and the service fee) for the line's default terms "
        "(apr_example) — the rate to show first and most prominently (PBoC announcement [2021] No. 3); "
        "annual_rate is the nominal interest rate only"))
    apr_example: AprExample | None = Field(default=None, description="The default terms apr is computed for")
    annual_rate: RateOut = Field(description="Nominal annual interest rate (before the service fee)")
    grade: str
    expires_on: date


class ApplicationView(BaseModel):
    id: int
    status: ApplicationStatus
    decision: str = Field(description="What the automated decision said: approved | declined | review")
    created_at: datetime
    decided_at: datetime | None
    line: LineOffer | None
    reasons: list[Reason]
    reapply_on: date | None = Field(description="When a declined borrower may apply again")
    next_step_zh: str
    next_step_en: str


class HumanReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=500, description="Anything the reviewer should know")


class CaseView(BaseModel):
    id: int
    application_id: int
    kind: ReviewKind
    status: ReviewStatus
    created_at: datetime


_NEXT = {
    ApplicationStatus.APPROVED: ("额度已生效，可以借款。", "Your credit line is ready: you can draw money now."),
    ApplicationStatus.DECLINED: ("可按提示改善后再申请；如有异议可申请人工复核。",
                                 "Follow the tips and apply again later; if you disagree, ask for a human review."),
    ApplicationStatus.IN_REVIEW: ("审核人员会尽快处理，结果将通过短信通知您。",
                                  "A reviewer will look at it soon; we will tell you the outcome by SMS."),
}


def application_view(row: CreditApplication | service.Decided, line_apr: LineApr | None = None) -> ApplicationView:
    """The application as the borrower sees it; an approved line with its all-in APR when ``line_apr`` is given
    (:func:`approved_line_apr`)."""
    line = None
    if row.status is ApplicationStatus.APPROVED and row.offered_limit_fen is not None:
        line = LineOffer(credit_line_id=row.credit_line_id, limit_fen=row.offered_limit_fen,
                         apr=None if line_apr is None else line_apr.apr,
                         apr_example=None if line_apr is None else line_apr.example,
                         annual_rate=row.offered_rate, grade=row.grade or "", expires_on=row.offered_expires_on)
    reasons: list[dict[str, Any]] = json.loads(row.reasons)
    zh, en = _NEXT[row.status]
    return ApplicationView(
        id=row.id, status=row.status, decision=row.decision.value, created_at=row.created_at,
        decided_at=row.decided_at, line=line, reasons=[Reason(**r) for r in reasons],
        reapply_on=row.reapply_on if row.status is ApplicationStatus.DECLINED else None,
        next_step_zh=zh, next_step_en=en,
    )


def approved_line_apr(container: ContainerDep, row: CreditApplication | service.Decided,
                      product: str | int) -> LineApr | None:
    """The all-in APR of an approved line (product by code or id): cached per (product terms, rate), so the
    decision's answer costs no database round trip for it (:mod:`miaodai.loans.disclosure`)."""
    if row.status is not ApplicationStatus.APPROVED or row.offered_rate is None:
        return None
    return line_apr_of(container, product, row.offered_rate)


@router.post("/v1/credit/applications", status_code=201,
             summary="Apply for a credit line: approved, declined (with reasons) or sent to review, in this request")
async def apply(body: ApplicationBody, token: BearerToken, container: ContainerDep) -> ApplicationView:
    product_code = body.product_code or container.settings.credit_default_product
    request = service.ApplicationRequest(
        monthly_income_fen=body.monthly_income_fen, occupation=body.occupation, education=body.education,
        loan_purpose=body.loan_purpose, product_code=product_code,
    )

    def authenticated_apply() -> ApplicationView:
        decided = service.apply(container, borrower_of(container, token), request)
        return application_view(decided, approved_line_apr(container, decided, product_code))

    # The token's check and the decision both block on the database: they run in one threadpool hand-off
    # (a CurrentBorrower dependency would be a hand-off of its own), and FastAPI checks the answer on the
    # event loop (a sync endpoint would hand that to the threadpool again). A request with no token is
    # refused before its body is looked at; one with a wrong token and a malformed body gets the 422.
    return await run_in_threadpool(authenticated_apply)


@router.get("/v1/credit/applications", summary="My credit applications, newest first")
def my_applications(auth: CurrentBorrower, container: ContainerDep) -> list[ApplicationView]:
    return [application_view(row, approved_line_apr(container, row, row.product_id))
            for row in service.borrower_applications(container, auth.borrower_id)]


@router.get("/v1/credit/applications/{application_id}", summary="One of my credit applications")
def my_application(application_id: RowId, auth: CurrentBorrower, container: ContainerDep) -> ApplicationView:
    row = service.get_application(container, auth.borrower_id, application_id)
    return application_view(row, approved_line_apr(container, row, row.product_id))


@router.post("/v1/credit/applications/{application_id}/human-review", status_code=201,
             summary="Ask a person to review an automated decline (PIPL art. 24)")
def human_review(application_id: RowId, auth: CurrentBorrower, container: ContainerDep,
                 body: HumanReviewBody = HumanReviewBody()) -> CaseView:
    case: ReviewCase = service.request_human_review(container, auth, application_id, body.note)
    return CaseView(id=case.id, application_id=case.application_id, kind=case.kind, status=case.status,
                    created_at=case.created_at)
