"""Changing credit policy safely: rulesets and models, each change proposed by one staff member and
approved by another (``credit_policy.propose`` / ``credit_policy.approve``), every step audited.

* A ruleset is proposed with its backtest against stored decisions attached, so the approver sees how
  approvals would move; approving it makes it the active ruleset and retires the one before.
* A model is registered as a ``candidate`` (artifact, SHA-256, metadata); a promotion is proposed and
  approved: ``candidate → challenger`` (it scores in shadow on every application), ``challenger →
  champion`` (it decides; the old champion retires), any state ``→ retired``. At most one challenger
  and one champion at a time.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.credit.backtest import backtest
from miaodai.credit.errors import CreditErrors
from miaodai.credit.models import ModelState, RulesetStatus, ScoringModel
from miaodai.credit.models import Ruleset as RulesetRow
from miaodai.credit.ports import CreditPorts
from miaodai.credit.registry import load_model
from miaodai.credit.rules import Ruleset, RulesetError
from miaodai.identity.staff_service import StaffContext

# Where a model may go from each state (a promotion is one step; retiring is always possible).
PROMOTIONS: dict[ModelState, frozenset[ModelState]] = {
    ModelState.CANDIDATE: frozenset({ModelState.CHALLENGER, ModelState.RETIRED}),
    ModelState.CHALLENGER: frozenset({ModelState.CHAMPION, ModelState.RETIRED}),
    ModelState.CHAMPION: frozenset({ModelState.RETIRED}),
    ModelState.RETIRED: frozenset(),
}


def _actor(staff: StaffContext) -> str:
    return f"staff:{staff.staff_id}"


def propose_ruleset(ports: CreditPorts, staff: StaffContext, document: dict[str, Any]) -> RulesetRow:
    try:
        ruleset = Ruleset.from_document(document)
    except RulesetError as exc:
        raise DomainError(CreditErrors.RULESET_INVALID, params={"problem": str(exc)[:300]}) from None
    report = backtest(ports, ruleset, limit=5_000)
    now = ports.clock.now()
    try:
        with ports.db.transaction() as session:
            row = RulesetRow(version=ruleset.version, document=json.dumps(document, ensure_ascii=False),
                             sha256=ruleset.sha256, status=RulesetStatus.PROPOSED, proposed_by=staff.staff_id,
                             proposed_at=now, backtest=json.dumps({**report.summary(), "changes": report.changed[:50]}))
            session.add(row)
            session.flush()
            ports.audit.record(session, actor=_actor(staff), action="credit.ruleset.proposed",
                                   subject=f"credit_ruleset:{ruleset.version}",
                                   details={"sha256": ruleset.sha256, "backtest": report.summary()})
    except IntegrityError:
        raise DomainError(CreditErrors.RULESET_EXISTS, params={"version": ruleset.version}) from None
    return row


def rulesets(ports: Platform) -> list[RulesetRow]:
    with ports.db.transaction() as session:
        return list(session.execute(select(RulesetRow).order_by(RulesetRow.id.desc())).scalars())


def decide_ruleset(ports: Platform, staff: StaffContext, version: str, *, approve: bool) -> RulesetRow:
    now = ports.clock.now()
    with ports.db.transaction() as session:
        row = session.execute(select(RulesetRow).where(RulesetRow.version == version)).scalar_one_or_none()
        if row is None:
            raise DomainError(CreditErrors.RULESET_NOT_FOUND, params={"version": version[:64]})
        if row.proposed_by == staff.staff_id:
            raise DomainError(CreditErrors.FOUR_EYES)
        status = RulesetStatus.ACTIVE if approve else RulesetStatus.REJECTED
        if approve:  # the active one retires in the same transaction: there is never a moment with two
            session.execute(update(RulesetRow).where(RulesetRow.status == RulesetStatus.ACTIVE)
                            .values(status=RulesetStatus.RETIRED).execution_options(synchronize_session=False))
        claimed = session.execute(
            update(RulesetRow).where(RulesetRow.id == row.id, RulesetRow.status == RulesetStatus.PROPOSED)
            .values(status=status, decided_by=staff.staff_id, decided_at=now)
            .execution_options(synchronize_session=False)).rowcount
        session.refresh(row)
        if claimed != 1:
            # (Raising rolls back the retirement above too.)
            raise DomainError(CreditErrors.RULESET_NOT_PROPOSED,
                              params={"version": version, "status": row.status.value})
        ports.audit.record(session, actor=_actor(staff), action=f"credit.ruleset.{status.value}",
                               subject=f"credit_ruleset:{version}", details={"sha256": row.sha256})
    return row


def register_model(ports: Platform, actor: str, artifact: dict[str, Any]) -> ScoringModel:
    """Add a model as a candidate. The artifact must load and score (a malformed one is refused here)."""
    try:
        model = load_model(artifact)
    except (ValueError, KeyError, TypeError, ImportError) as exc:  # ImportError: a LightGBM model, no extra
        raise DomainError(CreditErrors.MODEL_INVALID, params={"problem": str(exc)[:300]}) from None
    canonical = json.dumps(artifact, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    now = ports.clock.now()
    metadata = {k: artifact.get(k) for k in ("algorithm", "training", "metrics", "scaling") if k in artifact}
    try:
        with ports.db.transaction() as session:
            row = ScoringModel(model_id=model.model_id, artifact=canonical,
                               sha256=hashlib.sha256(canonical.encode()).hexdigest(),
                               metadata_json=json.dumps(metadata, ensure_ascii=False), state=ModelState.CANDIDATE,
                               registered_by=actor, registered_at=now, updated_at=now)
            session.add(row)
            session.flush()
            ports.audit.record(session, actor=actor, action="credit.model.registered",
                                   subject=f"credit_model:{model.model_id}", details={"sha256": row.sha256})
    except IntegrityError:
        raise DomainError(CreditErrors.MODEL_EXISTS, params={"model_id": model.model_id}) from None
    return row


def models(ports: Platform) -> list[ScoringModel]:
    with ports.db.transaction() as session:
        return list(session.execute(select(ScoringModel).order_by(ScoringModel.id.desc())).scalars())


def _model(session: Session, model_id: str) -> ScoringModel:
    row = session.execute(select(ScoringModel).where(ScoringModel.model_id == model_id)).scalar_one_or_none()
    if row is None:
        raise DomainError(CreditErrors.MODEL_NOT_FOUND, params={"model_id": model_id[:64]})
    return row


def propose_promotion(ports: Platform, staff: StaffContext, model_id: str, target: ModelState) -> ScoringModel:
    with ports.db.transaction() as session:
        row = _model(session, model_id)
        if target not in PROMOTIONS[row.state]:
            raise DomainError(CreditErrors.MODEL_TRANSITION,
                              params={"model_id": model_id, "state": row.state.value, "target": target.value})
        row.promotion_to, row.promotion_by, row.updated_at = target.value, staff.staff_id, ports.clock.now()
        ports.audit.record(session, actor=_actor(staff), action="credit.model.promotion_proposed",
                               subject=f"credit_model:{model_id}",
                               details={"from": row.state.value, "to": target.value})
    return row


def approve_promotion(ports: Platform, staff: StaffContext, model_id: str) -> ScoringModel:
    now = ports.clock.now()
    with ports.db.transaction() as session:
        row = _model(session, model_id)
        if row.promotion_to is None:
            raise DomainError(CreditErrors.MODEL_TRANSITION,
                              params={"model_id": model_id, "state": row.state.value, "target": "(none proposed)"})
        if row.promotion_by == staff.staff_id:
            raise DomainError(CreditErrors.FOUR_EYES)
        target, before = ModelState(row.promotion_to), row.state
        if target in (ModelState.CHAMPION, ModelState.CHALLENGER):  # one of each: the holder steps down
            session.execute(update(ScoringModel).where(ScoringModel.state == target, ScoringModel.id != row.id)
                            .values(state=ModelState.RETIRED, updated_at=now)
                            .execution_options(synchronize_session=False))
        row.state, row.promotion_to, row.promotion_by, row.updated_at = target, None, None, now
        ports.audit.record(session, actor=_actor(staff), action="credit.model.promoted",
                               subject=f"credit_model:{model_id}", details={"from": before.value, "to": target.value})
    return row
