"""Administering staff accounts: create, disable and re-enable, reset the password or the authenticator, grant
and revoke roles — each a four-eyes action (the back office's maker-checker runs these functions inside the
approving transaction), and never on one's own account.

Rules kept here, whoever calls:

* **Not on oneself**: neither the maker nor the checker of a change may be the account it changes
  (:func:`check_not_self`; the back office checks both people).
* **Two administrators remain**: a change that would leave fewer than :data:`MIN_ADMINISTRATORS` active
  accounts able to approve staff changes is refused — with one, no staff change could ever be approved again.
* **A reset ends the account's sessions**: a new one-time password or an authenticator to enrol again means
  whoever held the old one is out (:func:`_end_sessions`), and so does disabling.
* **Secrets are shown once**: a created account's and a reset's one-time password is returned to the caller
  (to hand to the person), stored only as its argon2 hash; the new account enrols its own authenticator at
  first sign-in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.identity import rbac, staff_service
from miaodai.identity.models import StaffRoleGrant, StaffSession, StaffUser
from miaodai.identity.staff_errors import StaffErrors

MIN_ADMINISTRATORS = 2


@dataclass(frozen=True)
class AccountFigures:
    """An account as a staff change shows it before and after."""

    staff_id: int | None
    username: str
    active: bool
    roles: list[str]
    must_change_password: bool
    totp_enrolled: bool

    def as_dict(self) -> dict[str, Any]:
        return {"username": self.username, "active": self.active, "roles": self.roles,
                "must_change_password": self.must_change_password, "totp_enrolled": self.totp_enrolled}


def check_not_self(actor: str, staff_id: int) -> None:
    if actor == f"staff:{staff_id}":
        raise DomainError(StaffErrors.NOT_ON_ONESELF)


def account(session: Session, staff_id: int) -> StaffUser:
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise DomainError(StaffErrors.STAFF_NOT_FOUND, params={"staff_id": staff_id})
    return user


def figures(session: Session, user: StaffUser) -> AccountFigures:
    roles = sorted(session.execute(select(StaffRoleGrant.role).where(StaffRoleGrant.staff_id == user.id)).scalars())
    return AccountFigures(user.id, user.username, bool(user.active), roles, bool(user.must_change_password),
                          user.totp_enrolled_at is not None)


def _approvers(session: Session, *, without: int | None = None, without_role: str | None = None) -> int:
    """Active accounts whose roles grant staff.approve — if ``without`` lost ``without_role`` (or all access)."""
    holders = [r.value for r in rbac.Role if rbac.Permission.STAFF_APPROVE in rbac.ROLE_PERMISSIONS[r]]
    rows = session.execute(
        select(StaffRoleGrant.staff_id, StaffRoleGrant.role).join(StaffUser, StaffUser.id == StaffRoleGrant.staff_id)
        .where(StaffUser.active.is_(True), StaffRoleGrant.role.in_(holders))
    ).all()
    remaining = {staff_id for staff_id, role in rows
                 if not (staff_id == without and (without_role is None or role == without_role))}
    return len(remaining)


def _keep_two_administrators(session: Session, staff_id: int, role: str | None = None) -> None:
    before = _approvers(session)
    after = _approvers(session, without=staff_id, without_role=role)
    if after < before and after < MIN_ADMINISTRATORS:
        raise DomainError(StaffErrors.LAST_ADMINISTRATORS, params={"minimum": MIN_ADMINISTRATORS})


def _end_sessions(session: Session, staff_id: int, now: datetime) -> int:
    return int(session.execute(
        update(StaffSession).where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount or 0)  # type: ignore[attr-defined]


def _check_roles(roles: list[str]) -> None:
    for role in roles:
        if not rbac.is_known_role(role):
            known = ", ".join(sorted(rbac.KNOWN_ROLES))
            raise DomainError(StaffErrors.UNKNOWN_ROLE, params={"role": role, "known": known})


# -- previews: what a change would do, refused as executing it would be -------------------------------------


def preview_create(session: Session, username: str, roles: list[str]) -> AccountFigures:
    username = staff_service.staff_rules.normalise_username(username)
    _check_roles(roles)
    if not staff_service.staff_rules.is_valid_username(username):
        raise DomainError(StaffErrors.INVALID_USERNAME, params={"username": username[:64]})
    if session.execute(select(func.count()).select_from(StaffUser).where(StaffUser.username == username)).scalar():
        raise DomainError(StaffErrors.USERNAME_TAKEN, params={"username": username})
    return AccountFigures(None, username, True, sorted(set(roles)), True, False)


def preview_change(session: Session, staff_id: int, change: str, role: str | None = None
                   ) -> tuple[AccountFigures, AccountFigures]:
    """(before, after) of ``change`` (disable, enable, reset_password, reset_totp, grant_role, revoke_role)."""
    user = account(session, staff_id)
    before = figures(session, user)
    roles = list(before.roles)
    if change == "disable":
        if not user.active:
            raise DomainError(StaffErrors.ALREADY_SO, params={"what": "disabled"})
        _keep_two_administrators(session, staff_id)
        after = AccountFigures(staff_id, user.username, False, roles, before.must_change_password, before.totp_enrolled)
    elif change == "enable":
        if user.active:
            raise DomainError(StaffErrors.ALREADY_SO, params={"what": "active"})
        after = AccountFigures(staff_id, user.username, True, roles, before.must_change_password, before.totp_enrolled)
    elif change == "reset_password":
        after = AccountFigures(staff_id, user.username, before.active, roles, True, before.totp_enrolled)
    elif change == "reset_totp":
        after = AccountFigures(staff_id, user.username, before.active, roles, before.must_change_password, False)
    elif change in ("grant_role", "revoke_role"):
        _check_roles([role or ""])
        assert role is not None
        if change == "grant_role":
            if role in roles:
                raise DomainError(StaffErrors.ALREADY_SO, params={"what": role})
            roles = sorted([*roles, role])
        else:
            if role not in roles:
                raise DomainError(StaffErrors.ALREADY_SO, params={"what": f"-{role}"})
            _keep_two_administrators(session, staff_id, role)
            roles = [r for r in roles if r != role]
        after = AccountFigures(staff_id, user.username, before.active, roles, before.must_change_password,
                               before.totp_enrolled)
    else:
        raise ValueError(f"unknown staff change {change!r}")
    return before, after


# -- executing a change (inside the approving transaction) --------------------------------------------------


@dataclass(frozen=True)
class Applied:
    staff_id: int
    username: str
    one_time_password: str | None  # to hand to the person once; never stored in clear


def create_in(session: Session, ports: Platform, *, username: str, display_name: str, roles: list[str],
              actor: str) -> Applied:
    preview_create(session, username, roles)
    made = staff_service.add_staff(session, ports, username=username, display_name=display_name, roles=roles,
                                   actor=actor, setup_on_first_login=True)
    return Applied(made.staff_id, made.username, made.password)


def change_in(session: Session, ports: Platform, staff_id: int, change: str, *, actor: str, role: str | None = None,
              makers: tuple[str, ...] = ()) -> Applied:
    """Apply ``change`` to the account; ``actor`` (the checker) and ``makers`` may not be the account itself."""
    for person in (actor, *makers):
        check_not_self(person, staff_id)
    preview_change(session, staff_id, change, role)
    user = account(session, staff_id)
    now = ports.clock.now()
    password = None
    if change == "disable":
        user.active = False
        _end_sessions(session, staff_id, now)
    elif change == "enable":
        user.active = True
    elif change == "reset_password":
        password = secrets.token_urlsafe(18)
        user.password_hash, user.must_change_password = staff_service.PASSWORD_HASHER.hash(password), True
        _end_sessions(session, staff_id, now)
    elif change == "reset_totp":
        user.totp_enrolled_at, user.last_totp_step = None, None
        _end_sessions(session, staff_id, now)
    elif change == "grant_role":
        grantor = int(actor.split(":", 1)[1]) if actor.startswith("staff:") else None
        session.add(StaffRoleGrant(staff_id=staff_id, role=role, granted_at=now, granted_by=grantor))
    elif change == "revoke_role":
        grant = session.get(StaffRoleGrant, (staff_id, role))
        if grant is not None:
            session.delete(grant)
    session.flush()
    ports.audit.record(session, actor=actor, action=f"staff.{change}", subject=f"staff:{staff_id}",
                       details={"username": user.username, **({"role": role} if role else {})})
    return Applied(staff_id, user.username, password)


@dataclass(frozen=True)
class StaffRow:
    staff_id: int
    username: str
    display_name: str
    active: bool
    roles: list[str]
    must_change_password: bool
    totp_enrolled: bool
    created_at: datetime
    last_login_at: datetime | None


def directory(ports: Platform) -> list[StaffRow]:
    """Every staff account with its roles and last sign-in, by username."""
    with ports.db.transaction() as session:
        users = list(session.execute(select(StaffUser).order_by(StaffUser.username)).scalars())
        grants: dict[int, list[str]] = {}
        for staff_id, role in session.execute(select(StaffRoleGrant.staff_id, StaffRoleGrant.role)):
            grants.setdefault(staff_id, []).append(role)
        last: dict[int, datetime] = {staff_id: at for staff_id, at in session.execute(
            select(StaffSession.staff_id, func.max(StaffSession.created_at)).group_by(StaffSession.staff_id))}
        return [StaffRow(u.id, u.username, u.display_name, bool(u.active), sorted(grants.get(u.id, [])),
                         bool(u.must_change_password), u.totp_enrolled_at is not None, u.created_at, last.get(u.id))
                for u in users]
