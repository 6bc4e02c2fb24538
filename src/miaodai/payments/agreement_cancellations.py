"""Cancelling an e-wallet's withholding agreement at the wallet (解约) when the borrower unbinds it.

Marking the method unbound is ours; the agreement is the wallet's, and until the wallet cancels it, it
would still let a debit through. So the unbind stores a cancellation in its own transaction (an outbox
row, :func:`queue`), and the payments worker (or ``miaodai payments recover``) sends it after the commit
(:func:`send_due`): again and again, with growing waits, until the wallet confirms. Cancelling is
idempotent at the wallet (an agreement already cancelled answers as cancelled), so a try whose answer
was lost (a timeout) or a second worker's try is harmless.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.core.providers import ProviderTimeout
from miaodai.payments.models import AgreementCancellation, CancellationStatus, PaymentMethod
from miaodai.payments.ports import PaymentPorts
from miaodai.payments.wallet_provider import WALLET_KINDS, WalletBusy

log = structlog.get_logger(__name__)

# Waits after each try that did not confirm: soon, then less often; the last one repeats forever.
RETRY_DELAYS = (timedelta(seconds=10), timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
                timedelta(minutes=30), timedelta(hours=2))
LEASE = timedelta(minutes=2)  # a try being made is not started again by another worker meanwhile
TIMEOUT = "TIMEOUT"  # AgreementCancellation.last_code: the wallet did not answer
ALERT_AFTER = 6  # tries: from then on each failed try is logged as an error for operations


def queue(session: Session, method: PaymentMethod, *, now: datetime) -> AgreementCancellation | None:
    """Store the cancellation of ``method``'s agreement in the caller's (the unbind's) transaction."""
    if method.kind not in WALLET_KINDS or not method.agreement_no:
        return None
    cancellation = AgreementCancellation(
        borrower_id=method.borrower_id, payment_method_id=method.id, kind=method.kind,
        agreement_no=method.agreement_no, status=CancellationStatus.PENDING, attempts=0, next_attempt_at=now,
        created_at=now)
    session.add(cancellation)
    return cancellation


def retry_delay(attempts: int) -> timedelta:
    return RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]


def send_due(ports: PaymentPorts, *, now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Send the cancellations that are due; safe from any number of workers (each is leased while sent)."""
    now = now or ports.clock.now()
    with ports.db.autocommit() as session:
        due = session.execute(
            select(AgreementCancellation.id).where(AgreementCancellation.status == CancellationStatus.PENDING,
                                                   AgreementCancellation.next_attempt_at <= now)
            .order_by(AgreementCancellation.next_attempt_at, AgreementCancellation.id).limit(limit)
        ).scalars().all()
    counts = {"agreements_cancelled": 0, "agreement_cancellations_retrying": 0}
    for cancellation_id in due:
        outcome = _send(ports, cancellation_id, now)
        if outcome is not None:
            counts["agreements_cancelled" if outcome else "agreement_cancellations_retrying"] += 1
    return counts


def _send(ports: PaymentPorts, cancellation_id: int, now: datetime) -> bool | None:
    """One try: True when the wallet confirmed, False when it is to be tried again, None if not ours to try."""
    with ports.db.transaction() as session:
        row = session.execute(select(AgreementCancellation).where(AgreementCancellation.id == cancellation_id)
                              .with_for_update()).scalar_one()
        if row.status is not CancellationStatus.PENDING or row.next_attempt_at is None or row.next_attempt_at > now:
            return None  # another worker has it, or it is done
        row.next_attempt_at = now + LEASE
        kind, agreement_no = row.kind, row.agreement_no
    code = None
    try:  # no transaction open while the wallet answers
        ports.wallets.cancel_agreement(kind, agreement_no)
    except WalletBusy as busy:
        code = busy.code[:32]
    except ProviderTimeout:
        code = TIMEOUT
    answered_at = ports.clock.now()
    with ports.db.transaction() as session:
        row = session.execute(select(AgreementCancellation).where(AgreementCancellation.id == cancellation_id)
                              .with_for_update()).scalar_one()
        if row.status is CancellationStatus.CONFIRMED:
            return True
        row.attempts += 1
        row.last_code = code
        if code is None:
            row.status, row.confirmed_at, row.next_attempt_at = CancellationStatus.CONFIRMED, answered_at, None
            ports.audit.record(session, actor=f"wallet:{kind.value}", action="payment.agreement.cancelled",
                               subject=f"payment_method:{row.payment_method_id}",
                               details={"kind": kind.value, "attempts": row.attempts})
            return True
        row.next_attempt_at = answered_at + retry_delay(row.attempts)
        attempts = row.attempts
    (log.error if attempts >= ALERT_AFTER else log.warning)(
        "wallet_agreement_cancel_not_confirmed", cancellation_id=cancellation_id, kind=kind.value, code=code,
        attempts=attempts)
    return False
