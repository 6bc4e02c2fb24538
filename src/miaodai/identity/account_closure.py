"""Closing a borrower's account (销户) once nothing is owed: the back office checks the loans and payments and runs
this when a checker approves. The borrower's sessions are revoked and a later login is refused
(``ACCOUNT_CLOSED``); their data is kept (erasure is another process)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.core.ports import Platform
from miaodai.identity.models import Borrower, BorrowerStatus
from miaodai.identity.sessions import revoke_sessions


def borrower_status(session: Session, borrower_id: int, *, lock: bool = False) -> BorrowerStatus | None:
    """The borrower's account status (None: no such borrower); ``lock`` holds the row until the transaction ends."""
    query = select(Borrower.status).where(Borrower.id == borrower_id)
    return session.execute(query.with_for_update() if lock else query).scalar_one_or_none()


def close_account_in(session: Session, ports: Platform, borrower_id: int, *, actor: str, reason: str) -> int:
    """Mark the account closed and revoke every live session, in the caller's transaction; how many were revoked.
    The caller has checked that nothing is owed either way and holds the borrower's row lock."""
    now = ports.clock.now()
    borrower = session.get_one(Borrower, borrower_id)
    borrower.status = BorrowerStatus.CLOSED
    revoked = revoke_sessions(session, borrower_id=borrower_id, now=now)
    ports.audit.record(session, actor=actor, action="borrower.account_closed", subject=f"borrower:{borrower_id}",
                       details={"reason": reason, "sessions_revoked": revoked})
    return revoked
