"""The staff review queue: list, look at a case (masked), decide, and approve or reject an override."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from miaodai.core.fields import RowId
from miaodai.core.ports import Platform
from miaodai.credit import review
from miaodai.credit.models import CreditApplication, ReviewCase, ReviewKind, ReviewStatus
from miaodai.credit.ports import CreditPortsDep
from miaodai.identity.staff_deps import require_permission
from miaodai.identity.staff_service import StaffContext
from miaodai.loans.views import Fen, RateOut

router = APIRouter(tags=["credit review"])

Reader = Annotated[StaffContext, Depends(require_permission("review.read"))]
Decider = Annotated[StaffContext, Depends(require_permission("review.decide"))]
Checker = Annotated[StaffContext, Depends(require_permission("review.approve_override"))]


class CaseSummary(BaseModel):
    id: int
    application_id: int
    kind: ReviewKind
    status: ReviewStatus
    recommendation: str = Field(description="What the automated policy suggests: approve | decline")
    age_seconds: int = Field(description="How long the case has waited")
    created_at: datetime
    grade: str | None
    score: Decimal | None
    offered_limit_fen: int | None
    reason_codes: list[str]
    outcome: str | None
    decided_by: int | None


class CaseDetail(CaseSummary):
    borrower: dict[str, Any]
    declared: dict[str, Any]
    bureau: dict[str, Any]
    findings: list[dict[str, Any]]
    score_reasons: list[dict[str, Any]]
    pd: Decimal | None
    offered_rate: RateOut | None
    challenger: dict[str, Any] | None
    ruleset_version: str
    model_id: str | None
    borrower_note: str | None
    outcome_reason: str | None


class DecideBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["approve", "decline"]
    reason: str = Field(min_length=5, max_length=500, description="Why: kept with the case and in the audit chain")
    limit_fen: Fen | None = Field(default=None, description="The line to grant; the automated offer if absent")


class SecondBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: StrictBool
    note: str = Field(default="", max_length=500)


def _summary(case: ReviewCase, application: CreditApplication, age_seconds: int) -> dict[str, Any]:
    return dict(
        id=case.id, application_id=application.id, kind=case.kind.value, status=case.status.value,
        recommendation=case.recommendation, age_seconds=age_seconds, created_at=case.created_at,
        grade=application.grade, score=application.score, offered_limit_fen=application.offered_limit_fen,
        reason_codes=[r["code"] for r in json.loads(application.reasons)], outcome=case.outcome,
        decided_by=case.decided_by,
    )


@router.get("/v1/staff/credit/review-cases", summary="The review queue, oldest first (needs review.read)")
def list_cases(_staff: Reader, ports: CreditPortsDep) -> list[CaseSummary]:
    return [CaseSummary(**_summary(i.case, i.application, i.age_seconds)) for i in review.queue(ports)]


@router.get("/v1/staff/credit/review-cases/{case_id}", summary="One case with everything a reviewer needs")
def get_case(case_id: RowId, staff: Reader, ports: CreditPortsDep) -> CaseDetail:
    d = review.case_detail(ports, staff, case_id)
    application: CreditApplication = d["application"]
    challenger = None
    if application.challenger_model_id:
        challenger = {"model_id": application.challenger_model_id, "score": application.challenger_score,
                      "pd": application.challenger_pd}
    return CaseDetail(
        **_summary(d["case"], application, d["age_seconds"]), borrower=d["borrower"], declared=d["declared"],
        bureau=d["bureau"], findings=d["findings"], score_reasons=d["score_reasons"], pd=application.pd,
        offered_rate=application.offered_rate, challenger=challenger, ruleset_version=application.ruleset_version,
        model_id=application.model_id, borrower_note=d["case"].borrower_note, outcome_reason=d["case"].outcome_reason,
    )


def _after(ports: Platform, case: ReviewCase) -> CaseSummary:
    item = next((i for i in review.queue(ports) if i.case.id == case.id), None)
    if item is not None:
        return CaseSummary(**_summary(item.case, item.application, item.age_seconds))
    with ports.db.transaction() as session:
        application = session.get_one(CreditApplication, case.application_id)
        age = int((ports.clock.now() - case.created_at).total_seconds())
        return CaseSummary(**_summary(case, application, age))


@router.post("/v1/staff/credit/review-cases/{case_id}/decision",
             summary="Decide a case with a written reason; against the recommendation it waits for a second approver")
def decide(case_id: RowId, body: DecideBody, staff: Decider, ports: CreditPortsDep) -> CaseSummary:
    case = review.decide(ports, staff, case_id, outcome=body.outcome, reason=body.reason, limit_fen=body.limit_fen)
    return _after(ports, case)


@router.post("/v1/staff/credit/review-cases/{case_id}/second-approval",
             summary="Approve or reject another reviewer's override (needs review.approve_override)")
def second(case_id: RowId, body: SecondBody, staff: Checker, ports: CreditPortsDep) -> CaseSummary:
    case = review.second_approval(ports, staff, case_id, approve=body.approve, note=body.note)
    return _after(ports, case)
