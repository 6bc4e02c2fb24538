"""Staff accounts over HTTP: the directory, and proposing a change (create, disable, enable, reset the password
or the authenticator, grant or revoke a role) — each a maker-checker request that another administrator approves
at ``POST /v1/staff/approvals/{id}/approve`` (whose answer hands over a one-time password once). Thin: parse,
call :mod:`miaodai.backoffice.approvals`, shape the answer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from miaodai.backoffice import approvals
from miaodai.backoffice.actions import ActionKind, ServicingPortsDep
from miaodai.backoffice.api_approvals import ApprovalView, approval_view
from miaodai.core.fields import RowId
from miaodai.identity import staff_admin
from miaodai.identity.rbac import Role
from miaodai.identity.staff_deps import require_permission
from miaodai.identity.staff_service import StaffContext

router = APIRouter(tags=["staff accounts"])

Reader = Annotated[StaffContext, Depends(require_permission("staff.read"))]
Manager = Annotated[StaffContext, Depends(require_permission("staff.manage"))]


class StaffAccountView(BaseModel):
    id: int
    username: str
    display_name: str
    active: bool
    roles: list[str]
    must_change_password: bool
    totp_enrolled: bool
    created_at: datetime
    last_login_at: datetime | None


@router.get("/v1/staff/accounts", summary="Every staff account with its roles and last sign-in (needs staff.read)")
def directory(staff: Reader, ports: ServicingPortsDep) -> list[StaffAccountView]:
    return [StaffAccountView(id=r.staff_id, username=r.username, display_name=r.display_name, active=r.active,
                             roles=r.roles, must_change_password=r.must_change_password, totp_enrolled=r.totp_enrolled,
                             created_at=r.created_at, last_login_at=r.last_login_at)
            for r in staff_admin.directory(ports)]


class NewAccountBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=64)
    display_name: str = Field(min_length=1, max_length=120)
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    reason: str = Field(min_length=4, max_length=500, description="Why (the ticket, the hire): kept with the request")


@router.post("/v1/staff/accounts", status_code=202,
             summary="Propose a new staff account (maker; another administrator approves it)")
def propose_account(body: NewAccountBody, staff: Manager, ports: ServicingPortsDep) -> ApprovalView:
    request = approvals.propose(ports, staff, ActionKind.STAFF_CREATE, {
        "username": body.username, "display_name": body.display_name,
        "roles": sorted({role.value for role in body.roles})}, reason=body.reason)
    return approval_view(request)


class Change(StrEnum):
    DISABLE = "disable"
    ENABLE = "enable"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a change's name, not a secret
    RESET_TOTP = "reset_totp"
    GRANT_ROLE = "grant_role"
    REVOKE_ROLE = "revoke_role"


CHANGE_KINDS = {
    Change.DISABLE: ActionKind.STAFF_DISABLE, Change.ENABLE: ActionKind.STAFF_ENABLE,
    Change.RESET_PASSWORD: ActionKind.STAFF_RESET_PASSWORD, Change.RESET_TOTP: ActionKind.STAFF_RESET_TOTP,
    Change.GRANT_ROLE: ActionKind.STAFF_GRANT_ROLE, Change.REVOKE_ROLE: ActionKind.STAFF_REVOKE_ROLE,
}


class ChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    change: Change
    role: Role | None = Field(default=None, description="For grant_role and revoke_role")
    reason: str = Field(min_length=4, max_length=500)


@router.post("/v1/staff/accounts/{staff_id}/changes", status_code=202,
             summary="Propose a change to a staff account (maker; never one's own; another administrator approves)")
def propose_change(staff_id: RowId, body: ChangeBody, staff: Manager, ports: ServicingPortsDep) -> ApprovalView:
    params: dict[str, object] = {"staff_id": staff_id, **({"role": body.role.value} if body.role else {})}
    return approval_view(approvals.propose(ports, staff, CHANGE_KINDS[body.change], params, reason=body.reason))
