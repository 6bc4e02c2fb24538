"""Payment methods a borrower has bound (bank cards, e-wallets) and card bindings in progress.

Card data follows PCI DSS: the full number only encrypted (``number_enc``, for the payment
channel), a token that stands for the card everywhere else, BIN and last four digits for display,
and a keyed fingerprint (blind index) that finds the same card bound by several borrowers (a fraud
signal) without storing the number in the clear. Nothing beyond BIN + last 4 is ever shown or logged.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
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
    # An e-wallet's withholding agreement (支付宝代扣协议 / 微信委托代扣): what lets us collect from it.
    agreement_no: Mapped[str | None] = mapped_column(String(64))
    auto_debit: Mapped[bool] = mapped_column(Boolean)  # the bank (or wallet agreement) allows 代扣
    is_default: Mapped[bool] = mapped_column(Boolean)
    bin_data_version: Mapped[str | None] = mapped_column(String(16))
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime())
    unbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Staff find a customer by a card's BIN + last 4 (payments.read_models.borrowers_by_card).
    __table_args__ = (Index("ix_payment_methods_last4_bin", "last4", "bin"),)


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


class OrderStatus(StrEnum):
    CREATED = "created"  # stored with the business change that needs it; not sent yet (an outbox row)
    PROCESSING = "processing"  # sent — or perhaps sent: the channel's answer is pending or was unknown
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # definitely: the channel said no money moved under this order number


class PaymentOrder(Base):
    """One payout (代付) or collection (代扣) order at a channel; ``order_no`` is the channel's
    idempotency key and ``business_key`` ours (one order per payout attempt, per repayment request)."""

    __tablename__ = "payment_orders"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    order_no: Mapped[str] = mapped_column(String(40), unique=True)
    business_key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # payout | collection (payments.channel.OrderKind)
    purpose: Mapped[str] = mapped_column(String(16))  # disbursement | repayment | auto_debit | refund
    channel: Mapped[str] = mapped_column(String(32))
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    # The loan's product, copied when the order is made (a loan never changes product), so the money-movement
    # dashboard filters by product from its index instead of joining every order of a range to its loan.
    product_id: Mapped[int | None] = mapped_column(IdType)
    attempt: Mapped[int | None] = mapped_column(Integer)  # the loan's payout attempt
    payment_method_id: Mapped[int] = mapped_column(ForeignKey("payment_methods.id"))
    amount_fen: Mapped[int] = mapped_column(IdType)
    status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus))
    channel_txn_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    code: Mapped[str | None] = mapped_column(String(32))  # the channel's last answer code
    message: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the channel's completion time
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when we applied the final result
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when to ask the channel
    checks: Mapped[int] = mapped_column(Integer, default=0)
    # Collections: how the money is to be posted (loans.repayment_service.Purpose and PrepaymentMode).
    repayment_purpose: Mapped[str | None] = mapped_column(String(16))
    prepayment_mode: Mapped[str | None] = mapped_column(String(24))
    # Auto-debit: the end-of-day instruction this order executes.
    instruction_id: Mapped[int | None] = mapped_column(ForeignKey("collection_instructions.id"), index=True)
    note: Mapped[str | None] = mapped_column(String(200))  # refunds: why (shown to staff and the borrower)
    # The Idempotency-Key of the request that made the order (signing, a payout retry): a retry of that
    # request after its process died finds its effect here instead of being refused as a second one.
    request_key: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        Index("ix_payment_orders_status_check", "status", "next_check_at"),
        # The money-movement dashboard: orders of a range of days by kind and state, from the index alone,
        # for one product too.
        Index("ix_payment_orders_dashboard", "created_at", "kind", "status", "checks", "code", "amount_fen",
              "product_id"),
        # The live tail of the daily roll-up (``payment_order_days``): orders that became final after its last
        # day (and the roll-up's own day), from the index alone.
        Index("ix_payment_orders_settled", "settled_at", "created_at", "kind", "status", "amount_fen", "product_id"),
    )


class PaymentOrderEvent(Base):
    """What happened to an order and when: the borrower's "submitted to the bank at 10:02:03"."""

    __tablename__ = "payment_order_events"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("payment_orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    event: Mapped[str] = mapped_column(String(32))  # created | sent | answered | callback | queried | ...
    status: Mapped[str] = mapped_column(String(16))  # the channel's status in that answer
    code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(200))


class ChannelCallback(Base):
    """Every callback received, believed or not: evidence for reconciliation and disputes."""

    __tablename__ = "payment_callbacks"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    verified: Mapped[bool] = mapped_column(Boolean)
    notify_id: Mapped[str | None] = mapped_column(String(64))
    order_no: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # applied | duplicate | stale | unknown_order | rejected
    body_sha256: Mapped[str] = mapped_column(String(64))

    # Callback lag on the money-movement dashboard: a range of arrival times.
    __table_args__ = (Index("ix_payment_callbacks_received", "received_at", "outcome", "order_no"),)


class PaymentOrderDay(Base):
    """The daily roll-up of final orders (订单日汇总), written by the end-of-day batch: orders that became final
    (``settled_at``) on ``settled_on``, by the day they were made, product, kind and final state. A final order
    never changes again, so a closed day's rows never change; orders not final are read live (they are few)."""

    __tablename__ = "payment_order_days"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    settled_on: Mapped[date] = mapped_column(Date, index=True)
    created_on: Mapped[date] = mapped_column(Date)
    product_id: Mapped[int | None] = mapped_column(IdType)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))  # succeeded | failed
    orders: Mapped[int] = mapped_column(IdType)
    amount_fen: Mapped[int] = mapped_column(IdType)

    __table_args__ = (Index("ix_payment_order_days_created", "created_on", "settled_on", "product_id", "kind", "state",
                            "orders", "amount_fen"),)


class CallbackLagDay(Base):
    """The daily roll-up of applied callbacks' lag (回调延迟日汇总), written by the end-of-day batch: callbacks
    received on ``received_on`` that settled their order, by the order's product and lag in whole steps of
    ``payments.dashboards.LAG_STEP_MS`` (from the order's completion to the callback's arrival; 0 if negative)."""

    __tablename__ = "payment_callback_days"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    received_on: Mapped[date] = mapped_column(Date)
    product_id: Mapped[int | None] = mapped_column(IdType)
    lag_step: Mapped[int] = mapped_column(IdType)
    callbacks: Mapped[int] = mapped_column(IdType)

    __table_args__ = (Index("ix_payment_callback_days_received", "received_on", "product_id", "lag_step",
                            "callbacks"),)


class WalletBinding(Base):
    """An e-wallet withholding agreement being signed: the borrower approves it in the wallet's app,
    which hands back an authorization code we exchange for the account and agreement number."""

    __tablename__ = "payment_wallet_bindings"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)  # the binding's public id
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    kind: Mapped[PaymentMethodKind] = mapped_column(enum_column(PaymentMethodKind))
    status: Mapped[BindingStatus] = mapped_column(enum_column(BindingStatus))
    provider_ref: Mapped[str] = mapped_column(String(64), unique=True)  # the wallet's id for the request
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    code: Mapped[str | None] = mapped_column(String(32))  # why it failed, in the wallet's words
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))


class CancellationStatus(StrEnum):
    PENDING = "pending"  # to be sent (again) to the wallet at next_attempt_at
    CONFIRMED = "confirmed"  # the wallet says the agreement is cancelled (or was already)


class AgreementCancellation(Base):
    """A wallet withholding agreement to cancel at the wallet (解约): stored with the unbind that needs it
    (an outbox row), sent after that commits and again with backoff until the wallet confirms."""

    __tablename__ = "payment_agreement_cancellations"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    payment_method_id: Mapped[int] = mapped_column(ForeignKey("payment_methods.id"), unique=True)
    kind: Mapped[PaymentMethodKind] = mapped_column(enum_column(PaymentMethodKind))
    agreement_no: Mapped[str] = mapped_column(String(64))
    status: Mapped[CancellationStatus] = mapped_column(enum_column(CancellationStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_code: Mapped[str | None] = mapped_column(String(32))  # why the last try did not confirm
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_payment_agreement_cancellations_due", "status", "next_attempt_at"),)


class ReconRun(Base):
    """One reconciliation (对账) of a channel's daily file against our orders. The same file for the
    same channel and day is one run: running it again answers with the run already recorded."""

    __tablename__ = "recon_runs"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    business_date: Mapped[date] = mapped_column(Date)
    file_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    counts: Mapped[str] = mapped_column(Text)  # JSON: matched, missing_ours, missing_channel, mismatched, resolved

    __table_args__ = (UniqueConstraint("channel", "business_date", "file_sha256"),)


class ReconExceptionStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class ReconException(Base):
    """Something the channel's file and our orders disagree on, queued for staff with the evidence.
    One row per (channel, day, order number, kind), whichever run found it first."""

    __tablename__ = "recon_exceptions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("recon_runs.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    business_date: Mapped[date] = mapped_column(Date)
    order_no: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))  # missing_ours | missing_channel | amount_mismatch | status_mismatch
    our_status: Mapped[str | None] = mapped_column(String(16))
    channel_status: Mapped[str | None] = mapped_column(String(16))
    our_amount_fen: Mapped[int | None] = mapped_column(IdType)
    channel_amount_fen: Mapped[int | None] = mapped_column(IdType)
    evidence: Mapped[str] = mapped_column(Text)  # JSON: the file's row and our order as they were
    status: Mapped[ReconExceptionStatus] = mapped_column(enum_column(ReconExceptionStatus))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (UniqueConstraint("channel", "business_date", "order_no", "kind"),
                      Index("ix_recon_exceptions_status", "status", "created_at"))
