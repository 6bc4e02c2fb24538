"""The one maker-checker inbox (待审批): every pending four-eyes item, whichever table holds it.

The back office's own requests (:mod:`miaodai.backoffice.approvals`) and the items that already had their own
tables before it: manual credit-line proposals (loans), review overrides awaiting a second approver, proposed
rulesets and model promotions (credit). Each domain answers through a small read function of its own
(``loans.servicing.pending_line_proposals``, ``credit.pending_approvals``); this module only lists them in one
shape — kind, subject, maker, age, the permission that approves it and where it is decided — filtered to what
the asking staff member may approve (never their own: the maker cannot approve it), newest or oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from miaodai.backoffice.actions import ACTIONS, ActionKind, ServicingPorts
from miaodai.backoffice.approval_models import ApprovalRequest, ApprovalState
from miaodai.credit import pending_approvals
from miaodai.identity import rbac
from miaodai.identity.rbac import Permission
from miaodai.identity.staff_service import StaffContext
from miaodai.loans.servicing import pending_line_proposals


class Source(StrEnum):
    """Which table an item lives in (and so which endpoint decides it)."""

    APPROVAL = "approval"
    CREDIT_LINE_PROPOSAL = "credit_line_proposal"
    REVIEW_OVERRIDE = "review_override"
    RULESET = "ruleset"
    MODEL_PROMOTION = "model_promotion"


class Order(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


@dataclass(frozen=True)
class InboxItem:
    source: Source
    id: str  # the item's id in its table (a ruleset's version, a model's id)
    kind: str  # the action kind, or the source for the items of other tables
    subject: str
    maker_id: int | None
    created_at: datetime
    age_seconds: int
    approve_permission: str
    link: str  # where it is read and decided (API path)
    summary: dict[str, Any]


def _approval_items(session: Any) -> list[tuple[Source, str, str, str, int | None, datetime, str, str, dict]]:
    rows = session.execute(select(ApprovalRequest).where(ApprovalRequest.state == ApprovalState.PENDING)).scalars()
    return [(Source.APPROVAL, str(r.id), r.kind, r.subject, r.maker_id, r.created_at,
             ACTIONS[ActionKind(r.kind)].approve_permission.value, f"/v1/staff/approvals/{r.id}",
             {"reason": r.maker_reason, **r.figures_dict}) for r in rows]


def _domain_items(session: Any) -> list[tuple[Source, str, str, str, int | None, datetime, str, str, dict]]:
    items: list[tuple[Source, str, str, str, int | None, datetime, str, str, dict]] = []
    for p in pending_line_proposals(session):
        items.append((Source.CREDIT_LINE_PROPOSAL, str(p.id), Source.CREDIT_LINE_PROPOSAL.value,
                      f"borrower:{p.borrower_id}", p.proposed_by, p.proposed_at, Permission.CREDIT_LINE_APPROVE.value,
                      f"/v1/staff/credit-line-proposals/{p.id}/approve",
                      {"limit_fen": p.limit_fen, "annual_rate": str(p.annual_rate), "reason": p.reason}))
    for case in pending_approvals.overrides_awaiting_second(session):
        assert case.decided_at is not None  # an override was decided by its maker
        items.append((Source.REVIEW_OVERRIDE, str(case.id), Source.REVIEW_OVERRIDE.value,
                      f"credit_application:{case.application_id}", case.decided_by, case.decided_at,
                      Permission.REVIEW_APPROVE_OVERRIDE.value, f"/v1/staff/credit/review-cases/{case.id}",
                      {"outcome": case.outcome, "recommendation": case.recommendation,
                       "limit_fen": case.limit_fen, "reason": case.outcome_reason}))
    for ruleset in pending_approvals.proposed_rulesets(session):
        items.append((Source.RULESET, ruleset.version, Source.RULESET.value, f"ruleset:{ruleset.version}",
                      ruleset.proposed_by, ruleset.proposed_at, Permission.CREDIT_POLICY_APPROVE.value,
                      f"/v1/staff/credit/rulesets/{ruleset.version}/approve", {"sha256": ruleset.sha256}))
    for model in pending_approvals.pending_promotions(session):
        items.append((Source.MODEL_PROMOTION, model.model_id, Source.MODEL_PROMOTION.value, f"model:{model.model_id}",
                      model.promotion_by, model.updated_at, Permission.CREDIT_POLICY_APPROVE.value,
                      f"/v1/staff/credit/models/{model.model_id}/promotion/approve",
                      {"from": model.state.value, "to": model.promotion_to}))
    return items


def inbox(ports: ServicingPorts, staff: StaffContext, *, order: Order = Order.OLDEST,
          mine: bool = False) -> list[InboxItem]:
    """What ``staff`` may approve now (``mine``: what they proposed and still waits for someone else)."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        rows = _approval_items(session) + _domain_items(session)
    items = [
        InboxItem(source, item_id, kind, subject, maker, created, max(0, int((now - created).total_seconds())),
                  permission, link, summary)
        for source, item_id, kind, subject, maker, created, permission, link, summary in rows
        if (maker == staff.staff_id if mine else
            maker != staff.staff_id and rbac.is_allowed(staff.roles, permission))
    ]
    items.sort(key=lambda item: (item.created_at, item.source.value, item.id), reverse=order is Order.NEWEST)
    return items
