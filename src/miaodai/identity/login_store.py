"""Queries of the login use cases: what the database knows about a number's recent codes.

They run inside the caller's transaction and return plain values for the pure rules
in :mod:`miaodai.identity.otp`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date, start_of_business_day
from miaodai.core.crypto import Vault
from miaodai.identity import otp
from miaodai.identity.models import PHONE_INDEX, DeliveryStatus, LoginLockout, OtpChallenge, OtpPurpose


def phone_bidx_of(vault: Vault, phone_e164: str) -> str:
    return vault.blind_index(phone_e164, PHONE_INDEX)


def lock_phone(session: Session, phone_bidx: str) -> None:
    """Serialise code requests and guesses for one number until the transaction ends.

    SQLite already runs one writer at a time (BEGIN IMMEDIATE). On PostgreSQL a
    transaction-scoped advisory lock keeps two concurrent requests from both passing
    the cooldown, or two guesses from both redeeming the same code.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = int(phone_bidx[:15], 16)  # 60 bits: fits the signed bigint the lock takes
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def active_lockout_until(session: Session, phone_bidx: str, now: datetime) -> datetime | None:
    return session.execute(
        select(func.max(LoginLockout.locked_until)).where(
            LoginLockout.phone_bidx == phone_bidx, LoginLockout.locked_until > now
        )
    ).scalar_one_or_none()


def latest_delivered_challenge(session: Session, phone_bidx: str, purpose: OtpPurpose) -> OtpChallenge | None:
    """Only the newest delivered code of a number and purpose counts: asking again replaces it."""
    return session.execute(
        select(OtpChallenge)
        .where(
            OtpChallenge.phone_bidx == phone_bidx,
            OtpChallenge.purpose == purpose,
            OtpChallenge.delivery == DeliveryStatus.SENT,
        )
        .order_by(OtpChallenge.created_at.desc(), OtpChallenge.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _recent_times(session: Session, column, value: str, *, since: datetime, cap: int) -> list[datetime]:
    rows = session.execute(
        select(OtpChallenge.created_at)
        .where(column == value, OtpChallenge.created_at > since)
        .order_by(OtpChallenge.created_at.desc())
        .limit(cap)
    ).scalars()
    return list(rows)


def _phone_sends(session: Session, phone_bidx: str, since: datetime) -> list[tuple[datetime, str, bool]]:
    """The number's codes since ``since``, newest first: one query serves the cooldown, the
    hourly and the daily cap (the daily cap bounds how many rows there can be)."""
    rows = session.execute(
        select(OtpChallenge.created_at, OtpChallenge.channel, OtpChallenge.delivery)
        .where(OtpChallenge.phone_bidx == phone_bidx, OtpChallenge.created_at >= since)
        .order_by(OtpChallenge.created_at.desc(), OtpChallenge.id.desc())
    ).all()
    return [(row.created_at, row.channel.value, row.delivery is DeliveryStatus.FAILED) for row in rows]


def send_history(
    session: Session, *, phone_bidx: str, ip_bidx: str, device_key_bidx: str, now: datetime,
    limits: otp.OtpLimits,
) -> otp.SendHistory:
    hour_ago = now - timedelta(hours=1)
    today_starts = start_of_business_day(business_date(now))
    # Every send that can still matter: inside the hourly or daily window, or the cooldown.
    sends = _phone_sends(session, phone_bidx, since=min(hour_ago, today_starts, now - limits.resend_cooldown))
    last_send = otp.LastSend(*sends[0]) if sends else None
    return otp.SendHistory(
        locked_until=active_lockout_until(session, phone_bidx, now),
        last_send=last_send,
        phone_sends_last_hour=[at for at, _, _ in sends if at > hour_ago][: limits.max_per_phone_per_hour],
        phone_sends_today=sum(1 for at, _, _ in sends if at >= today_starts),
        device_sends_last_hour=_recent_times(session, OtpChallenge.device_key_bidx, device_key_bidx,
                                             since=hour_ago, cap=limits.max_per_device_per_hour),
        ip_sends_last_hour=_recent_times(session, OtpChallenge.ip_bidx, ip_bidx, since=hour_ago,
                                         cap=limits.max_per_ip_per_hour),
    )
