"""A staff member's own account: finishing the first sign-in, their sessions and login history, logging out
everywhere.

First sign-in (and after an administrator resets a password or TOTP): :func:`staff_service.login` hands out a
``setup`` session. :func:`setup_state` says what it still needs (a new password; a new TOTP secret to enrol,
shown as a QR code), and :func:`complete_setup` checks the new password against the policy, confirms a code of
the new secret, and exchanges the setup session for a console session, in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pyotp
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from miaodai.core.audit import AuditEntry
from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.identity import staff_rules, staff_service
from miaodai.identity.models import STAFF_TOTP_FIELD, StaffSession, StaffUser
from miaodai.identity.staff_errors import StaffErrors
from miaodai.identity.staff_service import (
    ISSUER,
    Scope,
    StaffClient,
    StaffContext,
    StaffLogin,
    authenticate,
    open_session,
)


@dataclass(frozen=True)
class SetupState:
    staff: StaffContext
    change_password: bool
    otpauth_uri: str | None  # the secret to enrol, as an authenticator app's QR code holds it; None: enrolled
    secret: str | None  # the same secret, for typing it in by hand
    expires_at: datetime


def _setup_session(session: Session, ports: Platform, token: str) -> tuple[StaffContext, StaffSession, StaffUser]:
    staff = authenticate(session, token, pepper=ports.settings.session_pepper, now=ports.clock.now(),
                         scope=Scope.SETUP)
    if staff is None:
        raise DomainError(StaffErrors.SETUP_EXPIRED)
    record = session.get(StaffSession, staff.session_id)
    user = session.get(StaffUser, staff.staff_id)
    assert record is not None and user is not None
    return staff, record, user


def setup_state(ports: Platform, token: str) -> SetupState:
    with ports.db.transaction() as session:
        staff, record, user = _setup_session(session, ports, token)
        secret = (ports.vault.decrypt(record.setup_totp_secret_enc, STAFF_TOTP_FIELD)
                  if record.setup_totp_secret_enc else None)
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER) if secret else None
        return SetupState(staff, bool(user.must_change_password), uri, secret, record.expires_at)


def complete_setup(ports: Platform, token: str, *, new_password: str, repeat_password: str, totp_code: str,
                   client: StaffClient) -> StaffLogin:
    """Set the new password and/or confirm the new TOTP secret; the setup session becomes a console session."""
    if new_password != repeat_password:
        raise DomainError(StaffErrors.PASSWORDS_DIFFER)
    now = ports.clock.now()
    with ports.db.transaction() as session:
        staff, record, user = _setup_session(session, ports, token)
        if user.must_change_password:
            if not staff_rules.password_is_acceptable(new_password):
                raise DomainError(StaffErrors.WEAK_PASSWORD, params={"min_length": staff_rules.MIN_PASSWORD_LENGTH})
            if _matches(user.password_hash, new_password):
                raise DomainError(StaffErrors.PASSWORD_UNCHANGED)
        if record.setup_totp_secret_enc is not None:
            secret = ports.vault.decrypt(record.setup_totp_secret_enc, STAFF_TOTP_FIELD)
            step = staff_rules.matching_totp_step(secret, totp_code, now)
            if step is None:
                raise DomainError(StaffErrors.TOTP_NOT_CONFIRMED)
            user.totp_secret_enc, user.totp_enrolled_at, user.last_totp_step = record.setup_totp_secret_enc, now, step
        if user.must_change_password:
            user.password_hash, user.must_change_password, user.password_changed_at = (
                staff_service.PASSWORD_HASHER.hash(new_password), False, now)
        record.revoked_at = now
        console_token, console = open_session(session, ports, user, Scope.CONSOLE, client, now)
        ports.audit.record(
            session, actor=staff.actor, action="staff.setup_completed", subject=staff.actor,
            details={"session_id": console.id, "ip": client.ip_masked,
                     "enrolled_totp": record.setup_totp_secret_enc is not None},
        )
        fresh = StaffContext(staff.staff_id, staff.username, staff.display_name, staff.roles, console.id)
        return StaffLogin(console_token, console.expires_at, fresh)


def _matches(password_hash: str, password: str) -> bool:
    try:
        return staff_service.PASSWORD_HASHER.verify(password_hash, password)
    except Exception:  # noqa: BLE001 - argon2's mismatch and malformed-hash errors alike mean "not this one"
        return False


@dataclass(frozen=True)
class SessionRow:
    id: int
    scope: str
    created_at: datetime
    last_seen_at: datetime | None
    expires_at: datetime
    ip_masked: str | None
    user_agent: str | None
    current: bool


def live_sessions(ports: Platform, staff: StaffContext) -> list[SessionRow]:
    now = ports.clock.now()
    with ports.db.transaction() as session:
        rows = session.execute(
            select(StaffSession).where(StaffSession.staff_id == staff.staff_id, StaffSession.revoked_at.is_(None),
                                       StaffSession.expires_at > now, StaffSession.scope != Scope.SETUP)
            .order_by(StaffSession.id.desc())
        ).scalars()
        return [SessionRow(r.id, r.scope, r.created_at, r.last_seen_at, r.expires_at, r.ip_masked, r.user_agent,
                           r.id == staff.session_id) for r in rows]


@dataclass(frozen=True)
class LoginEvent:
    occurred_at: datetime
    action: str  # staff.login, staff.login_failed, staff.logout, staff.logout_everywhere, staff.setup_completed
    details: dict[str, object]


HISTORY_ACTIONS = ("staff.login", "staff.login_failed", "staff.logout", "staff.logout_everywhere",
                   "staff.setup_started", "staff.setup_completed", "staff.review_flagged")


def login_history(ports: Platform, staff: StaffContext, *, limit: int = 50) -> list[LoginEvent]:
    """The staff member's sign-ins, failures at their username, sign-outs and review flags, newest first."""
    with ports.db.transaction() as session:
        entries = session.execute(
            select(AuditEntry).where(AuditEntry.subject == staff.actor, AuditEntry.action.in_(HISTORY_ACTIONS))
            .order_by(AuditEntry.id.desc()).limit(limit)
        ).scalars()
        events = []
        for entry in entries:
            try:
                details = json.loads(entry.body).get("details") or {}
            except ValueError:
                details = {}
            events.append(LoginEvent(entry.occurred_at, entry.action, details))
        return events


def logout_everywhere(ports: Platform, staff: StaffContext) -> int:
    """End every session of the staff member (this one too); returns how many were live."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        ended = session.execute(
            update(StaffSession).where(StaffSession.staff_id == staff.staff_id, StaffSession.revoked_at.is_(None),
                                       StaffSession.expires_at > now)
            .values(revoked_at=now)
        ).rowcount  # type: ignore[attr-defined]
        ports.audit.record(session, actor=staff.actor, action="staff.logout_everywhere", subject=staff.actor,
                           details={"sessions": ended})
        return int(ended or 0)


def end_session(ports: Platform, staff: StaffContext, session_id: int) -> bool:
    """End one of the staff member's own sessions; False when it is not theirs or already over."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        ended = session.execute(
            update(StaffSession).where(StaffSession.id == session_id, StaffSession.staff_id == staff.staff_id,
                                       StaffSession.revoked_at.is_(None)).values(revoked_at=now)
        ).rowcount  # type: ignore[attr-defined]
        if ended:
            ports.audit.record(session, actor=staff.actor, action="staff.logout", subject=staff.actor,
                               details={"session_id": session_id})
        return bool(ended)
