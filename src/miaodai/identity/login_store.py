"""Queries of the login use cases: what the database knows about a number's recent codes, and the atomic
counters (:mod:`miaodai.identity.counters`) every code request and every guess is counted against.

They run inside the caller's transaction and return plain values for the pure rules
in :mod:`miaodai.identity.otp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.core.crypto import Vault
from miaodai.core.db import advisory_xact_lock
from miaodai.identity import counters, otp
from miaodai.identity.models import PHONE_INDEX, Borrower, DeliveryStatus, Device, OtpChallenge, OtpPurpose


def phone_bidx_of(vault: Vault, phone_e164: str) -> str:
    return vault.blind_index(phone_e164, PHONE_INDEX)


def lock_phone(session: Session, phone_bidx: str) -> None:
    """Serialise code requests and guesses for one number until the transaction ends.

    SQLite already runs one writer at a time (BEGIN IMMEDIATE). On PostgreSQL a
    transaction-scoped advisory lock keeps two concurrent requests from both passing
    the cooldown, or two guesses from both redeeming the same code.
    """
    advisory_xact_lock(session, int(phone_bidx[:15], 16))  # 60 bits: fits the signed bigint the lock takes


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


def last_send(session: Session, phone_bidx: str) -> otp.LastSend | None:
    """The number's newest code (for the resend cooldown), delivered or not."""
    row = session.execute(
        select(OtpChallenge.created_at, OtpChallenge.channel, OtpChallenge.delivery)
        .where(OtpChallenge.phone_bidx == phone_bidx)
        .order_by(OtpChallenge.created_at.desc(), OtpChallenge.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return otp.LastSend(row.created_at, row.channel.value, row.delivery is DeliveryStatus.FAILED)


def is_known_device(session: Session, phone_bidx: str, device_key_bidx: str | None) -> bool:
    """Whether the borrower of this number has already logged in from this device (a 128-bit random id the
    app keeps: something the owner has that a guesser elsewhere does not)."""
    if device_key_bidx is None:
        return False
    return session.execute(
        select(Device.id).join(Borrower, Borrower.id == Device.borrower_id)
        .where(Borrower.phone_bidx == phone_bidx, Device.device_key_bidx == device_key_bidx).limit(1)
    ).first() is not None


def _use(count: counters.Count, limit: int) -> otp.CapUse:
    return otp.CapUse(count.n, limit, count.resets_at)


def send_history(
    session: Session, *, phone_bidx: str, ip_bidx: str, device_key_bidx: str, now: datetime,
    limits: otp.OtpLimits,
) -> otp.SendHistory:
    """Count this code request against every cap (one upsert; a refusal rolls it back) and read whether the
    number is locked for this device. Two statements, three when the number is locked."""
    last = last_send(session, phone_bidx)
    Kind = counters.Kind  # noqa: N806
    counts = counters.bump(session, [
        counters.Bump(Kind.SMS_IP_HOUR, ip_bidx), counters.Bump(Kind.SMS_DEVICE_HOUR, device_key_bidx),
        counters.Bump(Kind.SMS_PHONE_HOUR, phone_bidx), counters.Bump(Kind.SMS_PHONE_DAY, phone_bidx),
        counters.Bump(Kind.WRONG_PHONE_DAY, phone_bidx, delta=0),
    ], now)
    wrong_today = _use(counts[Kind.WRONG_PHONE_DAY], limits.max_wrong_per_phone_per_day)
    locked_until = otp.number_locked(wrong_today, known_device=False)
    if locked_until is not None and is_known_device(session, phone_bidx, device_key_bidx):
        locked_until = None
    return otp.SendHistory(
        locked_until=locked_until, last_send=last,
        caps={
            otp.SendRefusal.PHONE_HOURLY_CAP: _use(counts[Kind.SMS_PHONE_HOUR], limits.max_per_phone_per_hour),
            otp.SendRefusal.PHONE_DAILY_CAP: _use(counts[Kind.SMS_PHONE_DAY], limits.max_per_phone_per_day),
            otp.SendRefusal.DEVICE_HOURLY_CAP: _use(counts[Kind.SMS_DEVICE_HOUR], limits.max_per_device_per_hour),
            otp.SendRefusal.IP_HOURLY_CAP: _use(counts[Kind.SMS_IP_HOUR], limits.max_per_ip_per_hour),
        },
    )


@dataclass(frozen=True)
class GuessCounts:
    """The wrong codes so far of the guesser's signals and of the number today."""

    throttles: dict[otp.GuessThrottle, otp.CapUse]
    wrong_today: otp.CapUse


def count_guess(
    session: Session, *, phone_bidx: str, ip_bidx: str | None, device_key_bidx: str | None, now: datetime,
    limits: otp.OtpLimits, wrong: bool,
) -> GuessCounts:
    """Read (``wrong=False``: delta 0, the rows stay locked until the transaction ends) or count a wrong code
    (``wrong=True``) against the guesser's network, device, network-at-this-number, and the number's day —
    one upsert. Step-up and signing codes come from a logged-in device and name no network."""
    Kind = counters.Kind  # noqa: N806
    delta = 1 if wrong else 0
    signals: list[tuple[otp.GuessThrottle, counters.Kind, str, int]] = []
    if ip_bidx is not None:
        signals.append((otp.GuessThrottle.IP, Kind.WRONG_IP_HOUR, ip_bidx, limits.max_wrong_per_ip_per_hour))
        signals.append((otp.GuessThrottle.IP_PHONE, Kind.WRONG_IP_PHONE_HOUR, counters.pair_key(ip_bidx, phone_bidx),
                        limits.max_wrong_per_ip_per_phone_per_hour))
    if device_key_bidx is not None:
        signals.append((otp.GuessThrottle.DEVICE, Kind.WRONG_DEVICE_HOUR, device_key_bidx,
                        limits.max_wrong_per_device_per_hour))
    counts = counters.bump(
        session, [counters.Bump(kind, key, delta) for _, kind, key, _ in signals]
        + [counters.Bump(Kind.WRONG_PHONE_DAY, phone_bidx, delta)], now)
    return GuessCounts(
        throttles={throttle: _use(counts[kind], limit) for throttle, kind, _, limit in signals},
        wrong_today=_use(counts[Kind.WRONG_PHONE_DAY], limits.max_wrong_per_phone_per_day),
    )
