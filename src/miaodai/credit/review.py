"""The manual-review queue (人工审核): referred applications and borrowers' requests for a human look.

A reviewer (``review.decide``) sees the application with masked personal data, the bureau summary,
every rule finding, the score and its reasons, and decides with a written reason. Deciding *against*
the automated recommendation is an override: it waits for a second staff member with
``review.approve_override`` (never the same person — also a CHECK constraint) before it takes effect.
Each step is claimed with a conditional UPDATE on the case's status, so two staff racing cannot both
decide, and each lands in the audit chain. The borrower is told the outcome by SMS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.core.masking import mask_id_number, mask_name, mask_phone
from miaodai.core.money import Money
from miaodai.core.ports import Platform
from miaodai.credit.errors import CreditErrors
from miaodai.credit.models import (
    SNAPSHOT_FIELD,
    ApplicationStatus,
    CreditApplication,
    ReviewCase,
    ReviewStatus,
)
from miaodai.credit.ports import CreditPorts
from miaodai.credit.service import open_lines
from miaodai.identity.models import KYC_ID_NUMBER_FIELD, KYC_NAME_FIELD, PHONE_FIELD, Borrower, KycIdentity, OtpChannel
from miaodai.identity.ports import IdentityPorts
from miaodai.identity.staff_service import StaffContext
from miaodai.loans.line_service import grant_line
from miaodai.loans.models import LoanProduct

log = structlog.get_logger(__name__)

APPROVE, DECLINE = "approve", "decline"


@dataclass(frozen=True)
class QueueItem:
    case: ReviewCase
    application: CreditApplication
    age_seconds: int


def queue(ports: Platform) -> list[QueueItem]:
    """Open cases and overrides awaiting a second approver, oldest first, with their age."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        rows = session.execute(
            select(ReviewCase, CreditApplication)
            .join(CreditApplication, CreditApplication.id == ReviewCase.application_id)
            .where(ReviewCase.status.in_((ReviewStatus.OPEN, ReviewStatus.AWAITING_SECOND)))
            .order_by(ReviewCase.created_at, ReviewCase.id)
        ).all()
    return [QueueItem(case, app, int((now - case.created_at).total_seconds())) for case, app in rows]


def case_detail(ports: Platform, staff: StaffContext, case_id: int) -> dict[str, Any]:
    """Everything a reviewer needs, personal data masked (revealing it is a separate, logged permission)."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        case, application = _case(session, case_id)
        borrower = session.get(Borrower, application.borrower_id)
        identity = session.execute(
            select(KycIdentity).where(KycIdentity.borrower_id == application.borrower_id)).scalar_one()
        vault = ports.vault
        snapshot = json.loads(vault.decrypt(application.snapshot_enc, SNAPSHOT_FIELD))
        ports.audit.record(session, actor=f"staff:{staff.staff_id}", action="credit.review.viewed",
                               subject=f"credit_review_case:{case.id}", details={})
        features, facts = snapshot["features"], snapshot["facts"]
        return {
            "case": case, "application": application, "age_seconds": int((now - case.created_at).total_seconds()),
            "borrower": {
                "borrower_id": application.borrower_id,
                "name": mask_name(vault.decrypt(identity.name_enc, KYC_NAME_FIELD)),
                "id_number": mask_id_number(vault.decrypt(identity.id_number_enc, KYC_ID_NUMBER_FIELD)),
                "phone": mask_phone(vault.decrypt(borrower.phone_enc, PHONE_FIELD)),
                "age": features["age"],
            },
            "declared": snapshot["application"],
            "bureau": {"status": application.bureau_status, "reference": application.bureau_reference,
                       **{k: v for k, v in features.items() if k.startswith("bureau_")},
                       "debt_to_income": features["debt_to_income"],
                       "current_overdue_fen": facts["bureau_current_overdue_fen"],
                       "written_off": facts["bureau_written_off"], "fraud_list_hit": facts["bureau_fraud_list_hit"]},
            "facts": facts,
            "findings": json.loads(application.findings),
            "score_reasons": json.loads(application.score_reasons),
        }


def _case(session: Session, case_id: int) -> tuple[ReviewCase, CreditApplication]:
    case = session.get(ReviewCase, case_id)
    if case is None:
        raise DomainError(CreditErrors.CASE_NOT_FOUND, params={"case_id": case_id})
    return case, session.get(CreditApplication, case.application_id)


def _claim(session: Session, case: ReviewCase, expected: ReviewStatus, **values: Any) -> None:
    claimed = session.execute(
        update(ReviewCase).where(ReviewCase.id == case.id, ReviewCase.status == expected).values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(case)
    if claimed != 1:
        spec = CreditErrors.CASE_CLOSED if expected is ReviewStatus.OPEN else CreditErrors.CASE_NOT_AWAITING_SECOND
        raise DomainError(spec, params={"case_id": case.id, "status": case.status.value})


def decide(
    ports: CreditPorts, staff: StaffContext, case_id: int, *, outcome: str, reason: str, limit_fen: int | None,
) -> ReviewCase:
    """A reviewer's decision: final if it follows the recommendation, else an override awaiting a checker."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        case, application = _case(session, case_id)
        if outcome == APPROVE:
            limit_fen = _approved_limit(session, application, limit_fen)
        override = outcome != case.recommendation
        status = ReviewStatus.AWAITING_SECOND if override else ReviewStatus.DECIDED
        _claim(session, case, ReviewStatus.OPEN, status=status, outcome=outcome, outcome_reason=reason,
               limit_fen=limit_fen, decided_by=staff.staff_id, decided_at=now)
        ports.audit.record(
            session, actor=f"staff:{staff.staff_id}", action="credit.review.decided",
            subject=f"credit_review_case:{case.id}",
            details={"outcome": outcome, "override": override, "recommendation": case.recommendation,
                     "limit_fen": limit_fen, "reason": reason},
        )
        if not override:
            _finalise(ports, session, case, application, now=now)
    if not override:
        _notify(ports, application.borrower_id, outcome)
    return case


def second_approval(ports: CreditPorts, staff: StaffContext, case_id: int, *, approve: bool, note: str) -> ReviewCase:
    """The checker of an override: approving applies it; rejecting sends the case back to the queue."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        case, application = _case(session, case_id)
        if case.decided_by == staff.staff_id:
            raise DomainError(CreditErrors.FOUR_EYES)
        if approve:
            _claim(session, case, ReviewStatus.AWAITING_SECOND, status=ReviewStatus.DECIDED, second_by=staff.staff_id,
                   second_at=now)
            _finalise(ports, session, case, application, now=now)
        else:
            _claim(session, case, ReviewStatus.AWAITING_SECOND, status=ReviewStatus.OPEN, outcome=None,
                   outcome_reason=None, limit_fen=None, decided_by=None, decided_at=None)
        verdict = "approved" if approve else "rejected"
        ports.audit.record(session, actor=f"staff:{staff.staff_id}", action=f"credit.review.override_{verdict}",
                               subject=f"credit_review_case:{case.id}", details={"note": note})
    if approve:
        _notify(ports, application.borrower_id, case.outcome or DECLINE)
    return case


def _approved_limit(session: Session, application: CreditApplication, limit_fen: int | None) -> int:
    product = session.get(LoanProduct, application.product_id).spec()
    limit = limit_fen if limit_fen is not None else application.offered_limit_fen
    if limit is None or not product.min_amount_fen <= limit <= product.max_amount_fen:
        raise DomainError(CreditErrors.REVIEW_LIMIT_INVALID, params={
            "min_yuan": Money(product.min_amount_fen).to_yuan(), "max_yuan": Money(product.max_amount_fen).to_yuan()})
    return limit


def _finalise(ports: CreditPorts, session: Session, case: ReviewCase, application: CreditApplication, *,
              now: datetime) -> None:
    today = business_date(now)
    ruleset = ports.credit_policy.active(session).ruleset
    values: dict[str, Any] = {"decided_at": now, "review_outcome": case.outcome}
    if case.outcome == APPROVE:
        if open_lines(session, application.borrower_id):  # granted meanwhile (another application): no second line
            values |= {"status": ApplicationStatus.DECLINED, "review_outcome": DECLINE, "reapply_on": today}
        else:
            # The automated offer's price; without one (the bureau did not answer) the product's highest rate.
            rate = application.offered_rate or session.get(LoanProduct, application.product_id).spec().max_annual_rate
            expires_on = ruleset.line_expires_on(today)
            line = grant_line(session, borrower_id=application.borrower_id, product_id=application.product_id,
                              limit_fen=case.limit_fen, annual_rate=rate, risk_grade=application.grade or "E",
                              expires_on=expires_on, source=f"credit:review:{case.id}", now=now)
            values |= {"status": ApplicationStatus.APPROVED, "credit_line_id": line.id,
                       "offered_limit_fen": case.limit_fen, "offered_rate": rate, "offered_expires_on": expires_on}
    else:
        values |= {"status": ApplicationStatus.DECLINED, "reapply_on": ruleset.reapply_on(today)}
    session.execute(update(CreditApplication).where(CreditApplication.id == application.id).values(**values)
                    .execution_options(synchronize_session=False))
    session.execute(update(ReviewCase).where(ReviewCase.id == case.id).values(closed_at=now)
                    .execution_options(synchronize_session=False))


_OUTCOME_SMS = {
    APPROVE: "【秒贷】您的额度申请已通过审核，可登录查看额度。"
             "Your credit application was approved after review.",
    DECLINE: "【秒贷】很抱歉，您的额度申请经审核未通过，可登录查看原因。"
             "Your credit application was not approved after review.",
}


def _notify(ports: IdentityPorts, borrower_id: int, outcome: str) -> None:
    """Tell the borrower by SMS (after the decision committed; a failed SMS is logged, never undoes it)."""
    with ports.db.transaction() as session:
        phone = ports.vault.decrypt(session.get(Borrower, borrower_id).phone_enc, PHONE_FIELD)
    delivery = ports.sms.send(phone, _OUTCOME_SMS[outcome], OtpChannel.SMS)
    if not delivery.accepted:
        log.warning("review_outcome_sms_failed", borrower_id=borrower_id, reason=delivery.failure_reason)
