"""Staff console API: login with password + TOTP, logout, who am I, and the audit log.

Thin: parse, call the staff service, shape the response. Staff routes live under
/v1/staff and accept only staff session tokens.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from miaodai.core.fields import ROW_ID_MAX
from miaodai.core.http import ClientIp
from miaodai.identity import staff_service
from miaodai.identity.ports import IdentityPortsDep
from miaodai.identity.staff_audit import audit_page, entry_details
from miaodai.identity.staff_deps import CurrentStaff, require_permission
from miaodai.identity.staff_service import StaffContext

router = APIRouter(prefix="/v1/staff", tags=["staff"])


class StaffLoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    totp_code: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$", description="6-digit authenticator code")


class StaffProfile(BaseModel):
    id: int
    username: str
    display_name: str
    roles: list[str]
    permissions: list[str]


class StaffLoginResponse(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: datetime
    staff: StaffProfile


class AuditEntryView(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any] | None
    sealed: bool
    seq: int | None
    prev_hash: str | None
    entry_hash: str | None
    sealed_at: datetime | None


class AuditEntryPage(BaseModel):
    entries: list[AuditEntryView]
    next_before_id: int | None = Field(description="Pass as before_id to get the next (older) page")


def _profile(staff: StaffContext) -> StaffProfile:
    return StaffProfile(
        id=staff.staff_id, username=staff.username, display_name=staff.display_name,
        roles=sorted(staff.roles), permissions=sorted(staff.permissions),
    )


@router.post("/login", summary="Log in with username, password and a TOTP code")
def login(body: StaffLoginRequest, ports: IdentityPortsDep, ip: ClientIp) -> StaffLoginResponse:
    result = staff_service.login(
        ports, username=body.username, password=body.password, totp_code=body.totp_code, ip=ip
    )
    return StaffLoginResponse(token=result.token, expires_at=result.expires_at, staff=_profile(result.staff))


@router.post("/logout", status_code=204, summary="End this staff session")
def logout(staff: CurrentStaff, ports: IdentityPortsDep) -> Response:
    staff_service.logout(ports, staff)
    return Response(status_code=204)


@router.get("/me", summary="The logged-in staff member, their roles and permissions")
def me(staff: CurrentStaff) -> StaffProfile:
    return _profile(staff)


@router.get("/audit-entries", summary="The audit log, newest first (needs audit.read)")
def audit_entries(
    _staff: Annotated[StaffContext, Depends(require_permission("audit.read"))],
    ports: IdentityPortsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None,
) -> AuditEntryPage:
    page = audit_page(ports.db, limit=limit, before_id=before_id)
    views = [
        AuditEntryView(
            id=e.id, occurred_at=e.occurred_at, actor=e.actor, action=e.action, subject=e.subject,
            details=entry_details(e), sealed=e.seq is not None, seq=e.seq, prev_hash=e.prev_hash,
            entry_hash=e.entry_hash, sealed_at=e.sealed_at,
        )
        for e in page.entries
    ]
    return AuditEntryPage(entries=views, next_before_id=page.next_before_id)
