"""What other layers read of the payments domain's tables: one borrower's payment methods and orders with
their timelines, and the search of a card by BIN and last four digits, for the staff's customer view
(``backoffice``). ORM rows read in the caller's session, a fixed number of statements.

BIN and last four are stored in the clear (``payment_methods.bin``, ``last4``: what PCI DSS lets us show), so
the search by them needs no blind index: nothing beyond them is ever looked at, and the full number stays
encrypted (``number_enc``) with its keyed fingerprint for the same-card check.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from miaodai.payments.models import CARD_NUMBER_FIELD, PaymentMethod, PaymentMethodKind, PaymentOrder, PaymentOrderEvent


def borrowers_by_card(session: Session, bin_prefix: str, last4: str, *, limit: int) -> list[int]:
    """Borrowers with a bank card (bound now or once) whose number starts with ``bin_prefix`` (6 to 10 digits)
    and ends with ``last4``. The stored BIN is the bank's matched prefix (6 to 10 digits), so either may be the
    longer: the stored one starts with the typed digits, or is one of their prefixes."""
    stored = PaymentMethod.bin
    prefix_match = or_(stored.startswith(bin_prefix, autoescape=True),
                       *(stored == bin_prefix[:n] for n in range(6, len(bin_prefix))))
    stmt = (select(PaymentMethod.borrower_id).where(PaymentMethod.kind == PaymentMethodKind.BANK_CARD,
                                                    PaymentMethod.last4 == last4, prefix_match)
            .group_by(PaymentMethod.borrower_id).order_by(PaymentMethod.borrower_id).limit(limit))
    return list(session.scalars(stmt))


def borrowers_by_fingerprint(session: Session, fingerprint: str, *, limit: int) -> list[int]:
    """Borrowers who bound (now or once) the card with this keyed fingerprint (``Vault.blind_index`` of the
    whole number, purpose ``card``)."""
    stmt = (select(PaymentMethod.borrower_id).where(PaymentMethod.fingerprint == fingerprint)
            .group_by(PaymentMethod.borrower_id).order_by(PaymentMethod.borrower_id).limit(limit))
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class OrderPicture:
    order: PaymentOrder
    events: list[PaymentOrderEvent]


@dataclass(frozen=True)
class PaymentsPicture:
    methods: list[PaymentMethod]  # newest first, unbound ones too
    orders: list[OrderPicture]  # newest first


def payments_picture(session: Session, borrower_id: int, *, recent: int = 200) -> PaymentsPicture:
    """The borrower's payment methods and their last ``recent`` payout and collection orders, each with its
    timeline (three statements)."""
    methods = list(session.scalars(select(PaymentMethod).where(PaymentMethod.borrower_id == borrower_id)
                                   .order_by(PaymentMethod.id.desc())))
    orders = list(session.scalars(select(PaymentOrder).where(PaymentOrder.borrower_id == borrower_id)
                                  .order_by(PaymentOrder.id.desc()).limit(recent)))
    events: dict[int, list[PaymentOrderEvent]] = {o.id: [] for o in orders}
    if orders:
        for event in session.scalars(select(PaymentOrderEvent).where(PaymentOrderEvent.order_id.in_(list(events)))
                                     .order_by(PaymentOrderEvent.id)):
            events[event.order_id].append(event)
    return PaymentsPicture(methods, [OrderPicture(o, events[o.id]) for o in orders])


def sealed_card_number(session: Session, borrower_id: int, method_id: int) -> tuple[str, str] | None:
    """The encrypted number of one of the borrower's bank cards and its field name (for ``Vault.decrypt``), or
    None when the borrower has no such card."""
    value = session.scalars(select(PaymentMethod.number_enc).where(
        PaymentMethod.id == method_id, PaymentMethod.borrower_id == borrower_id,
        PaymentMethod.kind == PaymentMethodKind.BANK_CARD)).one_or_none()
    return None if value is None else (value, CARD_NUMBER_FIELD)
