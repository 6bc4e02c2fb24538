"""The credit review desk (人工审核): the queue oldest first with each case's age against the review SLA, the
case (application, bureau summary, rule findings, score and reasons, the model and ruleset that decided), the
reviewer's decision and the second approver's answer to an override.

The rules are :mod:`miaodai.credit.review`'s: deciding against the engine's recommendation is an override that
waits for a second staff member with ``review.approve_override`` who is not the first reviewer (the service
refuses the same person, the database too). The page offers that form only to such a person, and shows the
service's refusal when it comes anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from miaodai.core.clock import BUSINESS_TZ
from miaodai.core.errors import DomainError, Errors
from miaodai.core.fields import RowId
from miaodai.core.masking import mask_name
from miaodai.core.money import Money
from miaodai.credit import review
from miaodai.credit.errors import CreditErrors
from miaodai.credit.models import CreditApplication, ReviewCase, ReviewKind, ReviewStatus
from miaodai.credit.reasons import explain
from miaodai.identity import rbac
from miaodai.identity.models import KYC_NAME_FIELD, KycIdentity, StaffUser
from miaodai.identity.staff_service import StaffContext
from miaodai.loans.models import LoanProduct
from miaodai.loans.products import ProductSpec
from miaodai.web.console.core import (
    PREFIX,
    _,
    container_of,
    csrf_protect,
    gettext,
    locale_of,
    menu_item,
    redirect,
    render,
    require,
)
from miaodai.web.credit import EDUCATIONS, LOAN_PURPOSES, OCCUPATIONS

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)
menu_item(f"{PREFIX}/reviews", _("Credit review"), "review.read")

Reader = Annotated[StaffContext, Depends(require("review.read"))]
Decider = Annotated[StaffContext, Depends(require("review.decide"))]
Checker = Annotated[StaffContext, Depends(require("review.approve_override"))]
Text = Annotated[str, Form(max_length=2000)]


# -- the review SLA: the one place its numbers live (docs/console.md, "Credit review") -------------------------


@dataclass(frozen=True)
class ReviewSla:
    """A case is answered within ``hours`` working hours of the review desk (``opens``–``closes`` Beijing time,
    every day of the week: borrowers apply at weekends too); from ``near`` of that it is near its deadline."""

    hours: int
    near: Decimal
    opens: time
    closes: time

    def working_seconds(self, start: datetime, end: datetime) -> int:
        """The desk's working time between two instants."""
        start, end = start.astimezone(BUSINESS_TZ), end.astimezone(BUSINESS_TZ)
        total, day = 0.0, start.date()
        while day <= end.date():
            opens = datetime.combine(day, self.opens, BUSINESS_TZ)
            closes = datetime.combine(day, self.closes, BUSINESS_TZ)
            total += max(0.0, (min(closes, end) - max(opens, start)).total_seconds())
            day += timedelta(days=1)
        return int(total)

    def deadline(self, start: datetime) -> datetime:
        """When ``hours`` working hours after ``start`` are spent."""
        left = timedelta(hours=self.hours)
        at = start.astimezone(BUSINESS_TZ)
        while True:
            opens = datetime.combine(at.date(), self.opens, BUSINESS_TZ)
            closes = datetime.combine(at.date(), self.closes, BUSINESS_TZ)
            begin = max(at, opens)
            if begin < closes:
                if begin + left <= closes:
                    return begin + left
                left -= closes - begin
            at = datetime.combine(at.date() + timedelta(days=1), time(0), BUSINESS_TZ)

    def state(self, start: datetime, now: datetime) -> str:
        """``ok``, ``near`` or ``late``: the row's colour."""
        used = Decimal(self.working_seconds(start, now)) / (self.hours * 3600)
        return "late" if used >= 1 else "near" if used >= self.near else "ok"


SLA = ReviewSla(hours=4, near=Decimal("0.75"), opens=time(9), closes=time(21))

REASON_MIN, REASON_MAX = 5, 500  # as the API's decision body: a reason kept with the case and in the audit chain

STATUS_LABELS = {
    ReviewStatus.OPEN: _("Open"), ReviewStatus.AWAITING_SECOND: _("Awaiting second approval"),
    ReviewStatus.DECIDED: _("Decided"),
}
KIND_LABELS = {ReviewKind.REFERRED: _("Referred by policy"),
               ReviewKind.HUMAN_REVIEW_REQUEST: _("Borrower asked for a person")}
OUTCOME_LABELS = {review.APPROVE: _("Approve"), review.DECLINE: _("Decline")}
SLA_LABELS = {"ok": _("Within SLA"), "near": _("Near SLA"), "late": _("Past SLA")}
DONE = {
    "decided": _("Decision recorded: the borrower is told by SMS."),
    "override": _("Override recorded: it takes effect when a second approver agrees."),
    "approved": _("Override approved: the decision is final and the borrower is told by SMS."),
    "rejected": _("Override rejected: the case is back in the queue for a fresh decision."),
}


def age_text(request: Request, seconds: int) -> str:
    minutes = max(seconds, 0) // 60
    days, hours, minutes = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return gettext(request, "%(days)d d %(hours)d h", days=days, hours=hours)
    if hours:
        return gettext(request, "%(hours)d h %(minutes)d min", hours=hours, minutes=minutes)
    return gettext(request, "%(minutes)d min", minutes=minutes)


def _reason_text(reason: dict[str, Any], locale: str) -> str:
    return str(reason.get("message_zh" if locale == "zh_CN" else "message_en") or reason.get("code", ""))


def _masked_names(container: Any, borrower_ids: Iterable[int]) -> dict[int, str]:
    """Each applicant's name, decrypted only to be masked (王**)."""
    ids = sorted(set(borrower_ids))
    if not ids:
        return {}
    with container.db.transaction() as session:
        rows = session.execute(select(KycIdentity.borrower_id, KycIdentity.name_enc)
                               .where(KycIdentity.borrower_id.in_(ids))).all()
    return {borrower_id: mask_name(container.vault.decrypt(name_enc, KYC_NAME_FIELD)) for borrower_id, name_enc in rows}


def staff_names(container: Any, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    with container.db.transaction() as session:
        rows = session.execute(select(StaffUser.id, StaffUser.display_name, StaffUser.username)
                               .where(StaffUser.id.in_(wanted))).all()
    return {staff_id: f"{name} @{username}" for staff_id, name, username in rows}


@router.get("/reviews", response_class=HTMLResponse)
def review_queue(request: Request, staff: Reader, done: str | None = None) -> HTMLResponse:
    container = container_of(request)
    locale = locale_of(request)
    items = review.queue(container)
    now = container.clock.now()
    names = _masked_names(container, (i.application.borrower_id for i in items))
    rows = []
    for item in items:
        case, application = item.case, item.application
        reasons = json.loads(application.reasons)
        rows.append({
            "case": case, "application": application, "applicant": names.get(application.borrower_id, "—"),
            "age": age_text(request, item.age_seconds),
            "sla": SLA.state(case.created_at, now), "due": SLA.deadline(case.created_at),
            "reasons": [_reason_text(r, locale) for r in reasons],
        })
    return render(request, "console/reviews.html", staff=staff, rows=rows, sla=SLA, status_labels=STATUS_LABELS,
                  kind_labels=KIND_LABELS, outcome_labels=OUTCOME_LABELS, sla_labels=SLA_LABELS,
                  notice=gettext(request, DONE[done]) if done in DONE else None)


# What the bureau summary shows, in this order (the features of the decision's snapshot).
BUREAU_LABELS = {
    "bureau_file_age_months": _("Credit file age (months)"), "bureau_open_accounts": _("Open accounts"),
    "bureau_utilisation": _("Card utilisation"), "bureau_inquiries_1m": _("Lender inquiries, 1 month"),
    "bureau_inquiries_3m": _("Lender inquiries, 3 months"), "bureau_inquiries_6m": _("Lender inquiries, 6 months"),
    "bureau_worst_overdue_days_24m": _("Worst days overdue, 24 months"),
    "bureau_months_since_last_overdue": _("Months since last overdue"),
    "bureau_total_balance_yuan": _("Balances owed"), "debt_to_income": _("Debt payments to income"),
}
FINDING_LABELS = {"decline": _("Decline"), "refer": _("Refer"), "approve": _("Pass"), "pass": _("Pass")}


def _product(container: Any, product_id: int) -> ProductSpec:
    with container.db.transaction() as session:
        return session.get_one(LoanProduct, product_id).spec()


def _case_page(request: Request, staff: StaffContext, case_id: int, *, error: DomainError | None = None,
               form: dict[str, str] | None = None, notice: str | None = None) -> HTMLResponse:
    container = container_of(request)
    locale = locale_of(request)
    detail = review.case_detail(container, staff, case_id)
    case: ReviewCase = detail["case"]
    application: CreditApplication = detail["application"]
    product = _product(container, application.product_id)
    score_reasons = [{**r, **explain(f"SCORE_{r['variable']}")} for r in detail["score_reasons"]]
    may_check = (case.status is ReviewStatus.AWAITING_SECOND and case.decided_by != staff.staff_id
                 and rbac.is_allowed(staff.roles, "review.approve_override"))
    limit = application.offered_limit_fen
    return render(
        request, "console/review_case.html", error=error, staff=staff, case=case, application=application,
        product=product, borrower=detail["borrower"], declared=detail["declared"], bureau=detail["bureau"],
        findings=detail["findings"], score_reasons=score_reasons, told=json.loads(application.reasons),
        reason_text=lambda r: _reason_text(r, locale), age=age_text(request, detail["age_seconds"]),
        sla_state=SLA.state(case.created_at, container.clock.now()), due=SLA.deadline(case.created_at),
        names=staff_names(container, (case.decided_by, case.second_by)),
        may_decide=case.status is ReviewStatus.OPEN and rbac.is_allowed(staff.roles, "review.decide"),
        may_check=may_check, bureau_labels=BUREAU_LABELS, finding_labels=FINDING_LABELS,
        status_labels=STATUS_LABELS, kind_labels=KIND_LABELS, outcome_labels=OUTCOME_LABELS, sla_labels=SLA_LABELS,
        choice_labels={**OCCUPATIONS, **EDUCATIONS, **LOAN_PURPOSES}, reason_min=REASON_MIN, reason_max=REASON_MAX,
        form=form or {"outcome": case.recommendation,
                      "limit": Money(limit).to_yuan() if limit is not None else "", "reason": "", "note": ""},
        notice=notice,
    )


@router.get("/reviews/{case_id}", response_class=HTMLResponse)
def review_case(request: Request, case_id: RowId, staff: Reader, done: str | None = None) -> HTMLResponse:
    try:
        return _case_page(request, staff, case_id, notice=gettext(request, DONE[done]) if done in DONE else None)
    except DomainError as error:  # no such case
        return render(request, "console/review_missing.html", error=error, staff=staff)


def _limit_fen(text: str, product: ProductSpec) -> int | None:
    """The limit typed in yuan; blank: the automated offer. Unreadable: the service's own refusal's words."""
    text = text.replace(",", "").replace("，", "").strip()
    if not text:
        return None
    try:
        return Money.from_yuan(text).fen
    except (ValueError, ArithmeticError):
        raise DomainError(CreditErrors.REVIEW_LIMIT_INVALID, params={
            "min_yuan": Money(product.min_amount_fen).to_yuan(),
            "max_yuan": Money(product.max_amount_fen).to_yuan()}) from None


def _reason(text: str) -> str:
    reason = " ".join(text.split())
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise DomainError(CreditErrors.REVIEW_REASON_MISSING, params={"min_chars": REASON_MIN,
                                                                      "max_chars": REASON_MAX})
    return reason


@router.post("/reviews/{case_id}/decision", response_class=HTMLResponse)
def decide(request: Request, case_id: RowId, staff: Decider, outcome: Text = "", limit: Text = "",
           reason: Text = "") -> Response:
    container = container_of(request)
    form = {"outcome": outcome, "limit": limit[:32], "reason": reason[:REASON_MAX], "note": ""}
    try:
        if outcome not in OUTCOME_LABELS:
            raise DomainError(Errors.VALIDATION_FAILED, params={"fields": "outcome"})
        with container.db.transaction() as session:
            case = session.get(ReviewCase, case_id)
            product_id = session.get_one(CreditApplication, case.application_id).product_id if case else None
        limit_fen = _limit_fen(limit, _product(container, product_id)) if outcome == review.APPROVE and product_id \
            else None
        decided = review.decide(container, staff, case_id, outcome=outcome, reason=_reason(reason),
                                limit_fen=limit_fen)
    except DomainError as error:
        try:
            return _case_page(request, staff, case_id, error=error, form=form)
        except DomainError:
            return render(request, "console/review_missing.html", error=error, staff=staff)
    done = "override" if decided.status is ReviewStatus.AWAITING_SECOND else "decided"
    return redirect(request, f"{PREFIX}/reviews/{case_id}?done={done}")


@router.post("/reviews/{case_id}/second-approval", response_class=HTMLResponse)
def second_approval(request: Request, case_id: RowId, staff: Checker, verdict: Text = "",
                    note: Text = "") -> Response:
    container = container_of(request)
    form = {"outcome": "", "limit": "", "reason": "", "note": note[:REASON_MAX]}
    try:
        if verdict not in ("approve", "reject"):
            raise DomainError(Errors.VALIDATION_FAILED, params={"fields": "verdict"})
        if len(note) > REASON_MAX:
            raise DomainError(CreditErrors.REVIEW_REASON_MISSING, params={"min_chars": 0, "max_chars": REASON_MAX})
        review.second_approval(container, staff, case_id, approve=verdict == "approve", note=" ".join(note.split()))
    except DomainError as error:
        try:
            return _case_page(request, staff, case_id, error=error, form=form)
        except DomainError:
            return render(request, "console/review_missing.html", error=error, staff=staff)
    return redirect(request, f"{PREFIX}/reviews/{case_id}?done={'approved' if verdict == 'approve' else 'rejected'}")
