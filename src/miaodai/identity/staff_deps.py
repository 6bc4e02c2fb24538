"""FastAPI dependencies of the staff console: who is calling, and may they do this.

Usage in a later router::

    @router.get("/v1/staff/borrowers/{id}")
    def show(staff: Annotated[StaffContext, Depends(require_permission("borrower.read"))]): ...

Staff tokens live in their own table, so a borrower token never authenticates here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from miaodai.core.errors import DomainError
from miaodai.core.http import PlatformDep, bearer_token
from miaodai.core.openapi import bearer_auth
from miaodai.identity import rbac
from miaodai.identity.staff_errors import StaffErrors
from miaodai.identity.staff_service import StaffContext, authenticate

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="staff"'}


@bearer_auth  # the OpenAPI document's bearer scheme
def current_staff(request: Request, platform: PlatformDep) -> StaffContext:
    token = bearer_token(request)
    if token is None:
        raise DomainError(StaffErrors.UNAUTHENTICATED, headers=_CHALLENGE)
    with platform.db.transaction() as session:
        staff = authenticate(session, token, pepper=platform.settings.session_pepper, now=platform.clock.now())
    if staff is None:
        raise DomainError(StaffErrors.UNAUTHENTICATED, headers=_CHALLENGE)
    return staff


CurrentStaff = Annotated[StaffContext, Depends(current_staff)]


def require_permission(permission: str) -> Callable[[StaffContext], StaffContext]:
    """A dependency that lets the call through only if the staff member's roles grant ``permission``.

    An unknown permission name is refused when the router is defined (a typo must not
    ship as a route nobody can reach, or worse, one that is silently open).
    """
    if not rbac.is_known_permission(permission):
        raise ValueError(f"unknown permission {permission!r}; add it to identity/rbac.py first")

    def dependency(staff: CurrentStaff) -> StaffContext:
        if not rbac.is_allowed(staff.roles, permission):
            raise DomainError(StaffErrors.FORBIDDEN, params={"permission": permission})
        return staff

    return dependency
