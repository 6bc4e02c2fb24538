"""The staff desk (员工管理): every staff account with its roles, and proposing a change — a new account, disable or
re-enable, reset the password or the authenticator, grant or revoke a role. Each proposal is a maker-checker
request that another administrator approves in the inbox (which hands them a one-time password once); nobody
proposes a change to their own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from miaodai.backoffice import approvals
from miaodai.backoffice.actions import ActionKind
from miaodai.core.errors import DomainError
from miaodai.core.fields import RowId
from miaodai.identity import rbac, staff_admin
from miaodai.identity.staff_errors import StaffErrors
from miaodai.identity.staff_service import StaffContext
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

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)
menu_item(f"{PREFIX}/staff", _("Staff accounts"), "staff.read")

Reader = Annotated[StaffContext, Depends(require("staff.read"))]
Manager = Annotated[StaffContext, Depends(require("staff.manage"))]
Reason = Annotated[str, Form(max_length=500)]

CHANGES = {
    "disable": (ActionKind.STAFF_DISABLE, _("Disable the account")),
    "enable": (ActionKind.STAFF_ENABLE, _("Re-enable the account")),
    "reset_password": (ActionKind.STAFF_RESET_PASSWORD, _("Reset the password")),
    "reset_totp": (ActionKind.STAFF_RESET_TOTP, _("Reset the authenticator")),
    "grant_role": (ActionKind.STAFF_GRANT_ROLE, _("Grant a role")),
    "revoke_role": (ActionKind.STAFF_REVOKE_ROLE, _("Revoke a role")),
}
NOTICES = {"proposed": _("Proposed: another administrator approves it in the inbox.")}
MIN_REASON = 4


def _roles(request: Request) -> list[tuple[str, str, str]]:
    locale = locale_of(request)
    return [(info.role.value, info.name[locale], info.duty[locale]) for info in rbac.ROLES.values()]


def _page(request: Request, staff: StaffContext, *, error: DomainError | None = None, status: int = 200,
          form: dict[str, object] | None = None) -> HTMLResponse:
    rows = staff_admin.directory(container_of(request))
    names = {key: name for key, name, _duty in _roles(request)}
    return render(request, "console/staff.html", staff=staff, error=error, status=status, rows=rows,
                  roles=_roles(request), role_label=names, form=form or {},
                  may_manage=rbac.is_allowed(staff.roles, "staff.manage"), notice=_notice(request))


def _notice(request: Request) -> str | None:
    key = request.query_params.get("done")
    return gettext(request, NOTICES[key]) if key in NOTICES else None


def _reason_ok(reason: str) -> None:
    if len(reason.strip()) < MIN_REASON:
        raise DomainError(StaffErrors.REASON_REQUIRED, params={"min_length": MIN_REASON})


@router.get("/staff", response_class=HTMLResponse)
def staff_directory(request: Request, staff: Reader) -> HTMLResponse:
    return _page(request, staff)


@router.post("/staff", response_class=HTMLResponse)
def propose_account(request: Request, staff: Manager, username: Annotated[str, Form(max_length=64)] = "",
                    display_name: Annotated[str, Form(max_length=120)] = "",
                    roles: Annotated[list[str] | None, Form()] = None, reason: Reason = "") -> Response:
    chosen = sorted(set(roles or []))
    try:
        _reason_ok(reason)
        if not chosen:
            raise DomainError(StaffErrors.ROLE_REQUIRED)
        approvals.propose(container_of(request), staff, ActionKind.STAFF_CREATE, {
            "username": username, "display_name": display_name or username, "roles": chosen}, reason=reason.strip())
    except DomainError as error:
        return _page(request, staff, error=error,
                     form={"username": username, "display_name": display_name, "roles": chosen, "reason": reason})
    return redirect(request, f"{PREFIX}/staff?done=proposed")


@router.get("/staff/{staff_id}", response_class=HTMLResponse)
def staff_account(request: Request, staff_id: RowId, staff: Reader, error: DomainError | None = None) -> HTMLResponse:
    rows = {row.staff_id: row for row in staff_admin.directory(container_of(request))}
    account = rows.get(staff_id)
    if account is None:
        raise DomainError(StaffErrors.STAFF_NOT_FOUND, params={"staff_id": staff_id})
    names = {key: name for key, name, _duty in _roles(request)}
    return render(request, "console/staff_account.html", staff=staff, error=error, account=account,
                  roles=_roles(request), role_label=names, changes=CHANGES, notice=_notice(request),
                  may_manage=rbac.is_allowed(staff.roles, "staff.manage") and staff.staff_id != staff_id)


@router.post("/staff/{staff_id}/changes", response_class=HTMLResponse)
def propose_change(request: Request, staff_id: RowId, staff: Manager, change: Annotated[str, Form(max_length=32)] = "",
                   role: Annotated[str, Form(max_length=48)] = "", reason: Reason = "") -> Response:
    try:
        _reason_ok(reason)
        if change not in CHANGES:
            raise DomainError(StaffErrors.UNKNOWN_CHANGE, params={"change": change[:32]})
        params: dict[str, object] = {"staff_id": staff_id, **({"role": role} if role else {})}
        approvals.propose(container_of(request), staff, CHANGES[change][0], params, reason=reason.strip())
    except DomainError as error:
        return staff_account(request, staff_id, staff, error=error)
    return redirect(request, f"{PREFIX}/staff/{staff_id}?done=proposed")
