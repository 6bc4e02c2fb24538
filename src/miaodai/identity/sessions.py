"""Borrower sessions: opaque tokens (only their keyed hash is stored) bound to a device.

These functions run inside the caller's transaction; the login service and the
session endpoints compose them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from miaodai.core.crypto import Vault
from miaodai.identity.models import DEVICE_INDEX, BorrowerSession, Device

TOKEN_PREFIX = "mds_"  # noqa: S105 - a public prefix, not a secret


def hash_token(token: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class AuthContext:
    """Who is calling: the borrower, their session and device."""

    borrower_id: int
    session_id: int
    device_id: int
    step_up_at: datetime | None

    @property
    def actor(self) -> str:
        return f"borrower:{self.borrower_id}"


def find_or_add_device(
    session: Session, vault: Vault, *, borrower_id: int, device_key: str, label: str, now: datetime
) -> Device:
    key_bidx = vault.blind_index(device_key, DEVICE_INDEX)
    device = session.execute(
        select(Device).where(Device.borrower_id == borrower_id, Device.device_key_bidx == key_bidx)
    ).scalar_one_or_none()
    if device is None:
        device = Device(
            borrower_id=borrower_id, device_key_bidx=key_bidx, label=label[:120], trusted=False,
            first_seen_at=now, last_seen_at=now,
        )
        session.add(device)
        session.flush()
    else:
        device.last_seen_at = now
        device.label = label[:120] or device.label
    return device


def open_session(
    session: Session, *, borrower_id: int, device_id: int, pepper: str, now: datetime, ttl: timedelta
) -> tuple[str, BorrowerSession]:
    """Create a session and return its token (shown to the client once, never stored)."""
    token = new_token()
    record = BorrowerSession(
        borrower_id=borrower_id, device_id=device_id, token_hash=hash_token(token, pepper),
        created_at=now, last_seen_at=now, expires_at=now + ttl,
    )
    session.add(record)
    session.flush()
    return token, record


# Every request: the columns it needs, run on the connection (loading an ORM object cost more than the query).
_BY_TOKEN = select(
    BorrowerSession.id, BorrowerSession.borrower_id, BorrowerSession.device_id, BorrowerSession.step_up_at,
    BorrowerSession.revoked_at, BorrowerSession.expires_at, BorrowerSession.last_seen_at,
).where(BorrowerSession.token_hash == bindparam("token_hash"))


_SESSIONS = BorrowerSession.__table__
_TOUCH = update(_SESSIONS).where(_SESSIONS.c.id == bindparam("session_id")).values(last_seen_at=bindparam("now"))


def authenticate(session: Session, token: str, *, pepper: str, now: datetime) -> AuthContext | None:
    record = session.connection().execute(_BY_TOKEN, {"token_hash": hash_token(token, pepper)}).one_or_none()
    if record is None or record.revoked_at is not None or record.expires_at <= now:
        return None
    # Touch at most once a minute: keeps "last seen" useful without a write per request. One UPDATE
    # that stands alone (the caller may read in autocommit mode).
    if now - record.last_seen_at > timedelta(minutes=1):
        session.connection().execute(_TOUCH, {"session_id": record.id, "now": now})
    return AuthContext(record.borrower_id, record.id, record.device_id, record.step_up_at)


def revoke_sessions(session: Session, *, borrower_id: int, now: datetime, session_id: int | None = None) -> int:
    """Revoke one of the borrower's sessions, or all of them; returns how many were live."""
    stmt = update(BorrowerSession).where(
        BorrowerSession.borrower_id == borrower_id, BorrowerSession.revoked_at.is_(None)
    )
    if session_id is not None:
        stmt = stmt.where(BorrowerSession.id == session_id)
    return session.execute(stmt.values(revoked_at=now)).rowcount or 0
