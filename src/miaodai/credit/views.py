"""A credit application as the borrower sees it: the API's answer (``credit.api``) and the app's page
(``web.credit``) both shape it here, so the two never differ."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from miaodai.core.ports import Platform
from miaodai.credit import service
from miaodai.credit.features import LoanPurpose
from miaodai.credit.models import SNAPSHOT_FIELD, ApplicationStatus, CreditApplication
from miaodai.loans.disclosure import AprExample, LineApr, line_apr_of
from miaodai.loans.ports import LoanPorts
from miaodai.loans.views import RateOut


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
    if (row.status is ApplicationStatus.APPROVED and row.offered_limit_fen is not None
            and row.offered_rate is not None and row.offered_expires_on is not None):  # an approval sets all three
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


def approved_line_apr(ports: LoanPorts, row: CreditApplication | service.Decided,
                      product: str | int) -> LineApr | None:
    """The all-in APR of an approved line (product by code or id): cached per (product terms, rate), so the
    decision's answer costs no database round trip for it (:mod:`miaodai.loans.disclosure`)."""
    if row.status is not ApplicationStatus.APPROVED or row.offered_rate is None:
        return None
    return line_apr_of(ports, product, row.offered_rate)


def line_purposes(ports: Platform, borrower_id: int) -> dict[int, LoanPurpose]:
    """What the borrower said the money is for (借款用途), by credit line: the purpose declared on the application
    that granted each of their lines (kept in its encrypted snapshot). A line a person granted has none."""
    with ports.db.transaction() as session:
        rows = session.execute(select(CreditApplication.credit_line_id, CreditApplication.snapshot_enc).where(
            CreditApplication.borrower_id == borrower_id, CreditApplication.credit_line_id.is_not(None))).all()
    purposes: dict[int, LoanPurpose] = {}
    for line_id, snapshot in rows:
        declared = json.loads(ports.vault.decrypt(snapshot, SNAPSHOT_FIELD))["application"].get("loan_purpose")
        if line_id is not None and declared in LoanPurpose.__members__.values():
            purposes[line_id] = LoanPurpose(declared)
    return purposes
