"""What of credit's tables waits for a second staff member (the back office's one inbox composes it), and what the
credit policy allows a line's limit to be (the back office's limit adjustment asks it). Reads only."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from miaodai.credit.models import ReviewCase, ReviewStatus, Ruleset, RulesetStatus, ScoringModel
from miaodai.credit.registry import PolicyCache
from miaodai.loans.models import CreditLine
from miaodai.loans.states import LineStatus


def overrides_awaiting_second(session: Session) -> list[ReviewCase]:
    """Review decisions that overrode the recommendation, awaiting a second approver (maker: ``decided_by``)."""
    return list(session.execute(select(ReviewCase).where(ReviewCase.status == ReviewStatus.AWAITING_SECOND)
                                .order_by(ReviewCase.id)).scalars())


def proposed_rulesets(session: Session) -> list[Ruleset]:
    """Rulesets proposed and not yet approved or rejected (maker: ``proposed_by``)."""
    return list(session.execute(select(Ruleset).where(Ruleset.status == RulesetStatus.PROPOSED)
                                .order_by(Ruleset.id)).scalars())


def pending_promotions(session: Session) -> list[ScoringModel]:
    """Models with a promotion awaiting its approver (maker: ``promotion_by``)."""
    return list(session.execute(select(ScoringModel).where(ScoringModel.promotion_to.is_not(None))
                                .order_by(ScoringModel.id)).scalars())


def line_limit_policy(session: Session, policy: PolicyCache, line: CreditLine) -> tuple[int, int]:
    """(the most the active credit policy allows this line's limit to be, the policy's limit step): the
    internet-consumer-credit cap (``limits.credit_cap_fen``) less the limits of the borrower's other open lines.
    The product's own maximum is the loans domain's to apply."""
    limits = policy.active(session).ruleset.limits
    others = session.execute(select(func.coalesce(func.sum(CreditLine.limit_fen), 0)).where(
        CreditLine.borrower_id == line.borrower_id, CreditLine.id != line.id,
        CreditLine.status != LineStatus.CLOSED)).scalar_one()
    return max(0, int(limits["credit_cap_fen"]) - int(others)), int(limits["limit_step_fen"])
