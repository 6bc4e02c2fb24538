"""Real-name verification API (实名认证): status, name + ID number (+ carrier check), face.

Thin: parse, call the KYC service, shape the response. Personal data leaves only
masked (``张*``, ``110101********1234``).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from miaodai.identity import kyc_service
from miaodai.identity.http import CurrentBorrower
from miaodai.identity.kyc_service import KycOverview
from miaodai.identity.models import KycStatus
from miaodai.identity.ports import IdentityPortsDep

router = APIRouter(prefix="/v1/kyc", tags=["real-name verification"])


class IdentityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description="Legal name as on the ID card, e.g. 张三 or 阿卜杜·热合曼")
    id_number: str = Field(max_length=32, description="18-character resident ID number (last may be X)")


class FaceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    liveness_token: str = Field(
        min_length=1, max_length=256, description="Result token of the face SDK's liveness session"
    )


class AttemptsView(BaseModel):
    used: int
    limit: int
    remaining: int


class KycView(BaseModel):
    status: KycStatus
    next_step: str = Field(description="grant_consents | identity | face | done")
    name: str | None = Field(description="Masked, e.g. 张*")
    id_number: str | None = Field(description="Masked, e.g. 110101********1234")
    carrier_verified_at: datetime | None
    face_verified_at: datetime | None
    attempts_today: dict[str, AttemptsView] = Field(description="Per step, counted per Beijing business day")
    missing_consents: list[str] = Field(description="Consents the carrier check needs that are not in force")


def _view(overview: KycOverview) -> KycView:
    return KycView(
        status=overview.status,
        next_step=overview.next_step,
        name=overview.masked_name,
        id_number=overview.masked_id_number,
        carrier_verified_at=overview.carrier_verified_at,
        face_verified_at=overview.face_verified_at,
        attempts_today={
            kind.value: AttemptsView(used=b.used, limit=b.limit, remaining=b.remaining)
            for kind, b in overview.attempts.items()
        },
        missing_consents=overview.missing_consents,
    )


@router.get("", summary="Where my real-name verification stands")
def get_kyc(ports: IdentityPortsDep, auth: CurrentBorrower) -> KycView:
    return _view(kyc_service.overview(ports, auth.borrower_id))


@router.post("/identity", summary="Verify name + ID number, then the carrier three-element check")
def submit_identity(body: IdentityRequest, ports: IdentityPortsDep, auth: CurrentBorrower) -> KycView:
    kyc_service.submit_identity(ports, auth, body.name, body.id_number)
    return _view(kyc_service.overview(ports, auth.borrower_id))


@router.post("/face", summary="Face liveness and match against the verified ID")
def submit_face(body: FaceRequest, ports: IdentityPortsDep, auth: CurrentBorrower) -> KycView:
    kyc_service.submit_face(ports, auth, body.liveness_token)
    return _view(kyc_service.overview(ports, auth.borrower_id))
