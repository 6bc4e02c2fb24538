"""Use cases of a logged-in borrower's account: profile, sessions and devices, logging out.

Each is one transaction; every revocation writes its audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from miaodai.core.errors import DomainError
from miaodai.core.masking import mask_phone
from miaodai.core.ports import Platform
from miaodai.identity.login_errors import LoginErrors
from miaodai.identity.models import PHONE_FIELD, Borrower, BorrowerSession, BorrowerStatus, Device, KycStatus
from miaodai.identity.sessions import AuthContext, revoke_sessions


@dataclass(frozen=True)
class BorrowerProfile:
    borrower_id: int
    phone_masked: str
    status: BorrowerStatus
    kyc_status: KycStatus
    created_at: datetime


@dataclass(frozen=True)
class SessionView:
    session_id: int
    device_id: int
    device_label: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    step_up_at: datetime | None
    current: bool


@dataclass(frozen=True)
class DeviceView:
    device_id: int
    label: str
    trusted: bool
    first_seen_at: datetime
    last_seen_at: datetime
    active_sessions: int
    current: bool


def borrower_profile(ports: Platform, auth: AuthContext) -> BorrowerProfile:
    with ports.db.transaction() as session:
        return borrower_profile_of(ports, session.get_one(Borrower, auth.borrower_id))


def borrower_profile_of(ports: Platform, borrower: Borrower) -> BorrowerProfile:
    phone = ports.vault.decrypt(borrower.phone_enc, PHONE_FIELD)
    return BorrowerProfile(borrower.id, mask_phone(phone), borrower.status, borrower.kyc_status, borrower.created_at)


def list_sessions(ports: Platform, auth: AuthContext) -> list[SessionView]:
    """The borrower's live sessions (not revoked, not expired), newest first."""
    now = ports.clock.now()
    stmt = (
        select(BorrowerSession, Device.label)
        .join(Device, Device.id == BorrowerSession.device_id)
        .where(BorrowerSession.borrower_id == auth.borrower_id, BorrowerSession.revoked_at.is_(None),
               BorrowerSession.expires_at > now)
        .order_by(BorrowerSession.created_at.desc(), BorrowerSession.id.desc())
    )
    with ports.db.transaction() as session:
        rows = session.execute(stmt).all()
    return [
        SessionView(s.id, s.device_id, label, s.created_at, s.last_seen_at, s.expires_at, s.step_up_at,
                    current=s.id == auth.session_id)
        for s, label in rows
    ]


def list_devices(ports: Platform, auth: AuthContext) -> list[DeviceView]:
    """Every device the borrower has logged in from, with how many live sessions each holds."""
    now = ports.clock.now()
    live = (
        select(BorrowerSession.device_id, func.count().label("live"))
        .where(BorrowerSession.borrower_id == auth.borrower_id, BorrowerSession.revoked_at.is_(None),
               BorrowerSession.expires_at > now)
        .group_by(BorrowerSession.device_id)
        .subquery()
    )
    stmt = (
        select(Device, func.coalesce(live.c.live, 0))
        .outerjoin(live, live.c.device_id == Device.id)
        .where(Device.borrower_id == auth.borrower_id)
        .order_by(Device.last_seen_at.desc(), Device.id.desc())
    )
    with ports.db.transaction() as session:
        rows = session.execute(stmt).all()
    return [
        DeviceView(d.id, d.label, d.trusted, d.first_seen_at, d.last_seen_at, int(count),
                   current=d.id == auth.device_id)
        for d, count in rows
    ]


def revoke_session(ports: Platform, auth: AuthContext, session_id: int) -> None:
    """Log out one session of the borrower's (the current one included)."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        revoked = revoke_sessions(session, borrower_id=auth.borrower_id, now=now, session_id=session_id)
        if revoked == 0:
            # Also for another borrower's session id: whether it exists is none of the caller's business.
            raise DomainError(LoginErrors.SESSION_NOT_FOUND, params={"session_id": session_id})
        ports.audit.record(session, actor=auth.actor, action="session.revoked", subject=auth.actor,
                               details={"session_id": session_id, "by_session_id": auth.session_id})


def log_out(ports: Platform, auth: AuthContext) -> None:
    now = ports.clock.now()
    with ports.db.transaction() as session:
        revoke_sessions(session, borrower_id=auth.borrower_id, now=now, session_id=auth.session_id)
        ports.audit.record(session, actor=auth.actor, action="session.logged_out", subject=auth.actor,
                               details={"session_id": auth.session_id})


def revoke_all_sessions(ports: Platform, auth: AuthContext) -> int:
    """Log out everywhere, this session included (e.g. after losing a phone); returns how many ended."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        revoked = revoke_sessions(session, borrower_id=auth.borrower_id, now=now)
        ports.audit.record(session, actor=auth.actor, action="session.revoked_all", subject=auth.actor,
                               details={"revoked": revoked, "by_session_id": auth.session_id})
    return revoked
