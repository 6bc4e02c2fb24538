"""Staff-account changes as maker-checker actions: an administrator proposes creating an account, disabling or
re-enabling one, resetting its password or authenticator, granting or revoking a role; another approves, and
``identity.staff_admin`` applies it in the approving transaction — never to the maker's or the checker's own
account, and never leaving fewer than two administrators.

A created account's or a reset's one-time password is handed to the checker once (``Executed.once``), to give
to the person; it is stored only as its hash, never in the request's result or the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from miaodai.backoffice.approval_models import ApprovalRequest
from miaodai.core.errors import DomainError
from miaodai.identity import staff_admin
from miaodai.identity.staff_errors import StaffErrors

# A preview: (subject, before, after, the parameters as they will run); an execute: (result kept, shown once).
PreviewOf = Callable[[Session, dict[str, Any]], tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]
ExecuteOf = Callable[[Session, Any, ApprovalRequest, str], tuple[dict[str, Any], dict[str, str]]]


def _staff_id(params: dict[str, Any]) -> int:
    staff_id = params.get("staff_id")
    if not isinstance(staff_id, int) or isinstance(staff_id, bool):
        raise DomainError(StaffErrors.STAFF_NOT_FOUND, params={"staff_id": str(staff_id)[:20]})
    return staff_id


def create_preview(session: Session, params: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any],
                                                                         dict[str, Any]]:
    after = staff_admin.preview_create(session, params["username"], list(params.get("roles") or []))
    clean = {"username": after.username, "display_name": str(params.get("display_name") or after.username)[:120],
             "roles": after.roles}
    return f"staff:new:{after.username}", {}, after.as_dict(), clean


def create_execute(session: Session, ports: Any, request: ApprovalRequest, actor: str
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    params = request.params_dict
    applied = staff_admin.create_in(session, ports, username=params["username"],
                                    display_name=params["display_name"], roles=list(params["roles"]), actor=actor)
    assert applied.one_time_password is not None
    return ({"staff_id": applied.staff_id, "username": applied.username},
            {"username": applied.username, "one_time_password": applied.one_time_password})


def change_preview(change: str) -> PreviewOf:
    def preview(session: Session, params: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any],
                                                                   dict[str, Any]]:
        staff_id = _staff_id(params)
        before, after = staff_admin.preview_change(session, staff_id, change, params.get("role"))
        clean = {"staff_id": staff_id, **({"role": params["role"]} if params.get("role") else {})}
        return f"staff:{staff_id}", before.as_dict(), after.as_dict(), clean

    return preview


def change_execute(change: str) -> ExecuteOf:
    def execute(session: Session, ports: Any, request: ApprovalRequest, actor: str
                ) -> tuple[dict[str, Any], dict[str, str]]:
        params = request.params_dict
        applied = staff_admin.change_in(session, ports, params["staff_id"], change, actor=actor,
                                        role=params.get("role"), makers=(f"staff:{request.maker_id}",))
        once = ({"username": applied.username, "one_time_password": applied.one_time_password}
                if applied.one_time_password else {})
        return {"staff_id": applied.staff_id, "username": applied.username, "change": change}, once

    return execute
