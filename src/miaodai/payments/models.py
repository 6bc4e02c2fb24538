"""Payment methods a borrower has bound (bank cards, e-wallets) and card bindings in progress.

Card data follows PCI DSS: the full number only encrypted (``number_enc``, for the payment
channel), a token that stands for the card everywhere else, BIN and last four digits for display,
and a keyed fingerprint (blind index) that finds the same card bound by several borrowers (a fraud
signal) without storing the number in the clear. Nothing beyond BIN + last 4 is ever shown or logged.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from miaodai.core.db import Base, IdType, UTCDateTime, enum_column

CARD_NUMBER_FIELD = "payment.card_number"  # associated data of number_enc (see keys.ENCRYPTED_COLUMNS)
RESERVED_PHONE_FIELD = "payment.reserved_phone"
CARD_INDEX = "card"  # blind-index purpose of the card fingerprint


class PaymentMethodKind(StrEnum):
    BANK_CARD = "bank_card"
    ALIPAY = "alipay"
    WECHAT_PAY = "wechat_pay"


class PaymentMethodStatus(StrEnum):
    ACTIVE = "active"
    UNBOUND = "unbound"


class BindingStatus(StrEnum):
    PENDING = "pending"  # the bank's code was sent; waiting for the borrower to type it
    BOUND = "bound"
    FAILED = "failed"  # too many wrong codes
    EXPIRED = "expired"


class PaymentMethod(Base):
    __tablename__ = "payment_methods"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    kind: Mapped[PaymentMethodKind] = mapped_column(enum_column(PaymentMethodKind))
    status: Mapped[PaymentMethodStatus] = mapped_column(enum_column(PaymentMethodStatus))
    token: Mapped[str] = mapped_column(String(40), unique=True)  # stands for the card outside the vault
    bank_code: Mapped[str | None] = mapped_column(String(16))
    card_type: Mapped[str | None] = mapped_column(String(8))  # debit | credit
    brand: Mapped[str | None] = mapped_column(String(16))
    bin: Mapped[str | None] = mapped_column(String(10))
    last4: Mapped[str | None] = mapped_column(String(4))
    number_enc: Mapped[str | None] = mapped_column(String(512))  # card number or wallet account, encrypted
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    reserved_phone_enc: Mapped[str | None] = mapped_column(String(512))
    auto_debit: Mapped[bool] = mapped_column(Boolean)  # the bank (or wallet agreement) allows 代扣
    is_default: Mapped[bool] = mapped_column(Boolean)
    bin_data_version: Mapped[str | None] = mapped_column(String(16))
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime())
    unbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CardBinding(Base):
    """A four-element verification in progress: completes only with the bank's code."""

    __tablename__ = "payment_card_bindings"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)  # the binding's public id
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"))
    status: Mapped[BindingStatus] = mapped_column(enum_column(BindingStatus))
    number_enc: Mapped[str] = mapped_column(String(512))
    fingerprint: Mapped[str] = mapped_column(String(64))
    bank_code: Mapped[str] = mapped_column(String(16))
    card_type: Mapped[str] = mapped_column(String(8))
    brand: Mapped[str] = mapped_column(String(16))
    bin: Mapped[str] = mapped_column(String(10))
    last4: Mapped[str] = mapped_column(String(4))
    reserved_phone_enc: Mapped[str] = mapped_column(String(512))
    auto_debit: Mapped[bool] = mapped_column(Boolean)
    provider_ref: Mapped[str] = mapped_column(String(64))  # the verifier's reference for the code it sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))

    __table_args__ = (Index("ix_payment_card_bindings_borrower_created", "borrower_id", "created_at"),)
