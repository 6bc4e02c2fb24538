"""What other layers ask of a borrower's payment orders: whether one is still at the channel."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.payments.models import OrderStatus, PaymentOrder


def order_in_flight(session: Session, borrower_id: int) -> str | None:
    """The order number of one of the borrower's payment orders not yet final (created or processing), if any."""
    return session.execute(
        select(PaymentOrder.order_no).where(
            PaymentOrder.borrower_id == borrower_id,
            PaymentOrder.status.in_((OrderStatus.CREATED, OrderStatus.PROCESSING)))
        .order_by(PaymentOrder.id).limit(1)
    ).scalar_one_or_none()
