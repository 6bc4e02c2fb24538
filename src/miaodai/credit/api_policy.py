"""Staff API for credit policy: rulesets (propose with a backtest, approve) and the model registry
(register, propose a promotion, approve it). Maker-checker on every change; thin."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from miaodai.credit import policy_admin
from miaodai.credit.models import ModelState, ScoringModel
from miaodai.credit.models import Ruleset as RulesetRow
from miaodai.credit.ports import CreditPortsDep
from miaodai.identity.staff_deps import require_permission
from miaodai.identity.staff_service import StaffContext

router = APIRouter(tags=["credit policy"])

Maker = Annotated[StaffContext, Depends(require_permission("credit_policy.propose"))]
Checker = Annotated[StaffContext, Depends(require_permission("credit_policy.approve"))]
Version = Annotated[str, Path(min_length=1, max_length=64)]
ModelId = Annotated[str, Path(min_length=1, max_length=64)]


class RulesetView(BaseModel):
    version: str
    sha256: str
    status: str
    proposed_by: int
    proposed_at: datetime
    decided_by: int | None
    decided_at: datetime | None
    backtest: dict[str, Any] | None
    document: dict[str, Any]


class ModelView(BaseModel):
    model_id: str
    sha256: str
    state: str = Field(description="candidate | challenger | champion | retired")
    promotion_to: str | None
    promotion_by: int | None
    registered_by: str
    registered_at: datetime
    metadata: dict[str, Any]


class PromotionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: ModelState


def _ruleset(row: RulesetRow) -> RulesetView:
    return RulesetView(version=row.version, sha256=row.sha256, status=row.status.value, proposed_by=row.proposed_by,
                       proposed_at=row.proposed_at, decided_by=row.decided_by, decided_at=row.decided_at,
                       backtest=json.loads(row.backtest) if row.backtest else None, document=json.loads(row.document))


def _model(row: ScoringModel) -> ModelView:
    return ModelView(model_id=row.model_id, sha256=row.sha256, state=row.state.value, promotion_to=row.promotion_to,
                     promotion_by=row.promotion_by, registered_by=row.registered_by, registered_at=row.registered_at,
                     metadata=json.loads(row.metadata_json))


@router.post("/v1/staff/credit/rulesets", status_code=201,
             summary="Propose a ruleset (the JSON document); it is backtested against stored decisions")
def propose_ruleset(document: dict[str, Any], staff: Maker, ports: CreditPortsDep) -> RulesetView:
    return _ruleset(policy_admin.propose_ruleset(ports, staff, document))


@router.get("/v1/staff/credit/rulesets", summary="Every ruleset, newest first, with its backtest")
def list_rulesets(_staff: Maker, ports: CreditPortsDep) -> list[RulesetView]:
    return [_ruleset(r) for r in policy_admin.rulesets(ports)]


@router.post("/v1/staff/credit/rulesets/{version}/approve",
             summary="Activate another staff member's proposed ruleset (the active one retires)")
def approve_ruleset(version: Version, staff: Checker, ports: CreditPortsDep) -> RulesetView:
    return _ruleset(policy_admin.decide_ruleset(ports, staff, version, approve=True))


@router.post("/v1/staff/credit/rulesets/{version}/reject", summary="Reject a proposed ruleset")
def reject_ruleset(version: Version, staff: Checker, ports: CreditPortsDep) -> RulesetView:
    return _ruleset(policy_admin.decide_ruleset(ports, staff, version, approve=False))


@router.post("/v1/staff/credit/models", status_code=201,
             summary="Register a model artifact (points-table JSON) as a candidate")
def register_model(artifact: dict[str, Any], staff: Maker, ports: CreditPortsDep) -> ModelView:
    return _model(policy_admin.register_model(ports, f"staff:{staff.staff_id}", artifact))


@router.get("/v1/staff/credit/models", summary="The model registry")
def list_models(_staff: Maker, ports: CreditPortsDep) -> list[ModelView]:
    return [_model(m) for m in policy_admin.models(ports)]


@router.post("/v1/staff/credit/models/{model_id}/promotion",
             summary="Propose a promotion: candidate → challenger → champion, or → retired")
def propose_promotion(model_id: ModelId, body: PromotionBody, staff: Maker, ports: CreditPortsDep) -> ModelView:
    return _model(policy_admin.propose_promotion(ports, staff, model_id, body.target))


@router.post("/v1/staff/credit/models/{model_id}/promotion/approve",
             summary="Approve another staff member's proposed promotion")
def approve_promotion(model_id: ModelId, staff: Checker, ports: CreditPortsDep) -> ModelView:
    return _model(policy_admin.approve_promotion(ports, staff, model_id))
