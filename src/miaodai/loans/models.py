"""Tables of the loan engine: products, credit lines (and their maker-checker proposals), loans with
their installments, contracts and repayments. Money is BIGINT fen, rates NUMERIC, dates Beijing dates.

Loans and lines carry a ``version`` column used for optimistic locking (SQLAlchemy's
``version_id_col``): an UPDATE that lost a race matches no row and raises ``StaleDataError``. A line's
``available_fen`` also has a CHECK ≥ 0, so even a writer that skipped the version check cannot
overdraw it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from miaodai.core.db import Base, IdType, UTCDateTime, enum_column
from miaodai.loans.products import Bucket, ProductSpec
from miaodai.loans.schedule import DayCount, RepaymentMethod
from miaodai.loans.states import LineStatus, LoanStatus, ProposalStatus

RATE = Numeric(9, 6)


def _rate(value: Decimal) -> Decimal:
    """A rate as read back (``0.120000`` from NUMERIC(9,6)) without trailing zeros: ``0.12``."""
    return Decimal(value).normalize()


def _csv(values: tuple) -> str:
    return ",".join(str(v) for v in values)


class LoanProduct(Base):
    __tablename__ = "loan_products"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    min_amount_fen: Mapped[int] = mapped_column(IdType)
    max_amount_fen: Mapped[int] = mapped_column(IdType)
    # Comma-separated lists, e.g. methods "equal_installment,equal_principal", terms "3,6,12".
    methods: Mapped[str] = mapped_column(String(128))
    terms_months: Mapped[str] = mapped_column(String(64), default="")
    bullet_max_days: Mapped[int | None] = mapped_column(Integer)
    min_annual_rate: Mapped[Decimal] = mapped_column(RATE)
    max_annual_rate: Mapped[Decimal] = mapped_column(RATE)
    day_count: Mapped[str] = mapped_column(String(8), default=DayCount.ACT_360.value)
    monthly_fee_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0))
    penalty_rate_multiplier: Mapped[Decimal] = mapped_column(Numeric(5, 3))
    late_fee_fen: Mapped[int] = mapped_column(IdType, default=0)
    grace_days: Mapped[int] = mapped_column(Integer, default=3)
    cost_cap: Mapped[Decimal] = mapped_column(RATE)
    allocation_order: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))

    def spec(self) -> ProductSpec:
        return ProductSpec(
            code=self.code,
            name_zh=self.name_zh,
            name_en=self.name_en,
            min_amount_fen=self.min_amount_fen,
            max_amount_fen=self.max_amount_fen,
            methods=tuple(RepaymentMethod(m) for m in self.methods.split(",") if m),
            min_annual_rate=_rate(self.min_annual_rate),
            max_annual_rate=_rate(self.max_annual_rate),
            terms_months=tuple(int(t) for t in self.terms_months.split(",") if t),
            bullet_max_days=self.bullet_max_days,
            day_count=DayCount(self.day_count),
            monthly_fee_rate=_rate(self.monthly_fee_rate),
            penalty_rate_multiplier=_rate(self.penalty_rate_multiplier),
            late_fee_fen=self.late_fee_fen,
            grace_days=self.grace_days,
            cost_cap=_rate(self.cost_cap),
            allocation_order=tuple(Bucket(b) for b in self.allocation_order.split(",")),
        )

    @classmethod
    def from_spec(cls, spec: ProductSpec, *, created_at: datetime, created_by: str) -> LoanProduct:
        return cls(
            code=spec.code,
            name_zh=spec.name_zh,
            name_en=spec.name_en,
            min_amount_fen=spec.min_amount_fen,
            max_amount_fen=spec.max_amount_fen,
            methods=_csv(tuple(m.value for m in spec.methods)),
            terms_months=_csv(spec.terms_months),
            bullet_max_days=spec.bullet_max_days,
            min_annual_rate=spec.min_annual_rate,
            max_annual_rate=spec.max_annual_rate,
            day_count=spec.day_count.value,
            monthly_fee_rate=spec.monthly_fee_rate,
            penalty_rate_multiplier=spec.penalty_rate_multiplier,
            late_fee_fen=spec.late_fee_fen,
            grace_days=spec.grace_days,
            cost_cap=spec.cost_cap,
            allocation_order=_csv(tuple(b.value for b in spec.allocation_order)),
            active=True,
            created_at=created_at,
            created_by=created_by,
        )


class CreditLineProposal(Base):
    """Maker-checker: one staff member proposes a line, a different one approves or rejects it."""

    __tablename__ = "credit_line_proposals"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_products.id"))
    limit_fen: Mapped[int] = mapped_column(IdType)
    annual_rate: Mapped[Decimal] = mapped_column(RATE)
    risk_grade: Mapped[str] = mapped_column(String(2))
    expires_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[ProposalStatus] = mapped_column(enum_column(ProposalStatus), default=ProposalStatus.PENDING)
    proposed_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(String(500))
    credit_line_id: Mapped[int | None] = mapped_column(ForeignKey("credit_lines.id"))

    __table_args__ = (CheckConstraint("decided_by IS NULL OR decided_by <> proposed_by", name="four_eyes"),)


class CreditLine(Base):
    """授信额度. ``available_fen`` = limit − principal reserved by drawdowns not yet repaid."""

    __tablename__ = "credit_lines"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_products.id"))
    limit_fen: Mapped[int] = mapped_column(IdType)
    available_fen: Mapped[int] = mapped_column(IdType)
    annual_rate: Mapped[Decimal] = mapped_column(RATE)
    risk_grade: Mapped[str] = mapped_column(String(2))
    expires_on: Mapped[date] = mapped_column(Date)
    status: Mapped[LineStatus] = mapped_column(enum_column(LineStatus), default=LineStatus.ACTIVE)
    source: Mapped[str] = mapped_column(String(32))  # "staff:proposal:<id>" or, later, the decision engine
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        CheckConstraint("available_fen >= 0 AND available_fen <= limit_fen", name="available_within_limit"),
    )


class Loan(Base):
    """A drawdown (借款) from its request to its last repayment. The quoted terms are frozen here."""

    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    loan_no: Mapped[str] = mapped_column(String(32), unique=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    credit_line_id: Mapped[int] = mapped_column(ForeignKey("credit_lines.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_products.id"))
    status: Mapped[LoanStatus] = mapped_column(enum_column(LoanStatus), default=LoanStatus.REQUESTED)
    principal_fen: Mapped[int] = mapped_column(IdType)
    method: Mapped[RepaymentMethod] = mapped_column(enum_column(RepaymentMethod))
    term_months: Mapped[int | None] = mapped_column(Integer)
    term_days: Mapped[int | None] = mapped_column(Integer)
    annual_rate: Mapped[Decimal] = mapped_column(RATE)
    monthly_fee_rate: Mapped[Decimal] = mapped_column(RATE)
    day_count: Mapped[str] = mapped_column(String(8))
    penalty_annual_rate: Mapped[Decimal] = mapped_column(RATE)
    late_fee_fen: Mapped[int] = mapped_column(IdType)
    grace_days: Mapped[int] = mapped_column(Integer)
    cost_cap: Mapped[Decimal] = mapped_column(RATE)
    allocation_order: Mapped[str] = mapped_column(String(64))
    apr: Mapped[Decimal] = mapped_column(RATE)
    total_interest_fen: Mapped[int] = mapped_column(IdType)
    total_fee_fen: Mapped[int] = mapped_column(IdType)
    # The quote's start date; replaced by the actual payout date when the money leaves.
    start_date: Mapped[date] = mapped_column(Date)
    # Principal not yet repaid (kept here so the end-of-day batch and the line never sum installments).
    principal_outstanding_fen: Mapped[int] = mapped_column(IdType)
    # Money received beyond what is due, held as a liability until applied or refunded.
    overpayment_fen: Mapped[int] = mapped_column(IdType, default=0)
    days_past_due: Mapped[int] = mapped_column(Integer, default=0)
    # The accrual register: interest earned day by day since the last due date (ACT/basis), and the
    # last business date accrued. Income reaches the ledger when an installment falls due.
    accrued_interest_fen: Mapped[int] = mapped_column(IdType, default=0)
    accrued_through: Mapped[date | None] = mapped_column(Date)
    # Payout orders sent for this loan; a definite failure lets the borrower try again (the next attempt).
    payout_attempts: Mapped[int] = mapped_column(Integer, default=0)
    request_key: Mapped[str] = mapped_column(String(128))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disbursed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        UniqueConstraint("borrower_id", "request_key"),
        CheckConstraint("principal_outstanding_fen >= 0", name="outstanding_not_negative"),
        Index("ix_loans_status", "status"),
        # The portfolio dashboard: the book by bucket and vintages' loan counts, read from the index alone.
        Index("ix_loans_dashboard", "status", "start_date", "product_id", "days_past_due", "principal_outstanding_fen"),
    )


class LoanInstallment(Base):
    """One line of a loan's schedule and what has been paid against it."""

    __tablename__ = "loan_installments"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    period: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    principal_fen: Mapped[int] = mapped_column(IdType)
    interest_fen: Mapped[int] = mapped_column(IdType)
    fee_fen: Mapped[int] = mapped_column(IdType)
    penalty_fen: Mapped[int] = mapped_column(IdType, default=0)  # penalty interest and late fees charged so far
    principal_paid_fen: Mapped[int] = mapped_column(IdType, default=0)
    interest_paid_fen: Mapped[int] = mapped_column(IdType, default=0)
    fee_paid_fen: Mapped[int] = mapped_column(IdType, default=0)
    penalty_paid_fen: Mapped[int] = mapped_column(IdType, default=0)
    # Interest, fees and penalties are receivable (posted to the ledger) from the due date on.
    posted_due: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last business date penalty interest was charged for, and whether the late fee was charged.
    penalty_through: Mapped[date | None] = mapped_column(Date)
    late_fee_charged: Mapped[bool] = mapped_column(Boolean, default=False)
    paid_off_on: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (
        UniqueConstraint("loan_id", "period"),
        Index("ix_loan_installments_due_date", "due_date"),
        # Partial indexes for the end-of-day batch (migration 0005): what is unpaid, what is not yet due.
        Index("ix_loan_installments_unpaid", "due_date", "loan_id",
              postgresql_where=text("paid_off_on IS NULL"), sqlite_where=text("paid_off_on IS NULL")),
        Index("ix_loan_installments_not_posted", "due_date",
              postgresql_where=text("posted_due = false"), sqlite_where=text("posted_due = 0")),
    )

    @property
    def outstanding(self) -> dict[Bucket, int]:
        return {
            Bucket.PENALTY: self.penalty_fen - self.penalty_paid_fen,
            Bucket.FEE: self.fee_fen - self.fee_paid_fen,
            Bucket.INTEREST: self.interest_fen - self.interest_paid_fen,
            Bucket.PRINCIPAL: self.principal_fen - self.principal_paid_fen,
        }


# Bound into the ciphertext of every stored contract text (see miaodai.keys for rotation).
CONTRACT_DOCUMENT_FIELD = "loan_contract.document"


class LoanContract(Base):
    """The signed contract document: its exact text, SHA-256 and the platform's Ed25519 signature."""

    __tablename__ = "loan_contracts"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), unique=True)
    contract_no: Mapped[str] = mapped_column(String(32), unique=True)
    template_version: Mapped[str] = mapped_column(String(32))
    # The rendered text, encrypted (it names the borrower in full); the hash is of the plaintext.
    document_enc: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    # The business date the text was drawn up for; a draft from an earlier day is redrawn before signing.
    drafted_on: Mapped[date] = mapped_column(Date)
    signature: Mapped[str | None] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(32))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    audit_entry_id: Mapped[int | None] = mapped_column(ForeignKey("audit_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Repayment(Base):
    """Money received for a loan (or its reversal), posted once per caller-supplied key."""

    __tablename__ = "loan_repayments"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # repayment | reversal
    amount_fen: Mapped[int] = mapped_column(IdType)
    channel: Mapped[str] = mapped_column(String(32))
    received_on: Mapped[date] = mapped_column(Date)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # How the money was applied, as JSON: [{"period": 1, "penalty": 0, "fee": 300, ...}, ...].
    allocation: Mapped[str] = mapped_column(Text)
    journal_entry_id: Mapped[int | None] = mapped_column(IdType)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("loan_repayments.id"), unique=True)

    # Early repayments by day on the portfolio dashboard.
    __table_args__ = (Index("ix_loan_repayments_kind_received", "kind", "received_on"),)


class EodRun(Base):
    """One end-of-day run per business date: its progress (the last step finished) and its figures."""

    __tablename__ = "eod_runs"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # running | completed
    step: Mapped[str] = mapped_column(String(32), default="")  # the last step completed
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stats: Mapped[str] = mapped_column(Text, default="{}")  # JSON figures per step


class Reminder(Base):
    """A repayment reminder queued by the end-of-day batch, sent through the SMS provider by the dispatcher."""

    __tablename__ = "loan_reminders"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    installment_id: Mapped[int] = mapped_column(ForeignKey("loan_installments.id"))
    kind: Mapped[str] = mapped_column(String(16))  # due_in_3 | due_in_1 | due_today | overdue
    business_date: Mapped[date] = mapped_column(Date, index=True)
    amount_fen: Mapped[int] = mapped_column(IdType)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("installment_id", "kind"),)


class CollectionInstruction(Base):
    """Auto-debit (代扣) instruction for an installment due today; the payments layer executes it."""

    __tablename__ = "collection_instructions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    installment_id: Mapped[int] = mapped_column(ForeignKey("loan_installments.id"))
    business_date: Mapped[date] = mapped_column(Date, index=True)
    amount_fen: Mapped[int] = mapped_column(IdType)
    # pending → collecting (an order is out) → pending again (retry later today) | done | failed | skipped;
    # pending past its day → expired (never tried) or failed (a retry never started), by the end-of-day batch
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    collected_fen: Mapped[int] = mapped_column(IdType, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_code: Mapped[str | None] = mapped_column(String(32))  # the channel's answer to the last attempt

    __table_args__ = (UniqueConstraint("installment_id", "business_date"),)


class LoanMonthEnd(Base):
    """Each loan on the book at a month end, as the end-of-day batch left it (月末快照): where vintage curves
    and roll rates come from, since ``loans`` only says where a loan stands today.

    Written by the batch's ``status`` step when it closes the last day of a month, set based, once per loan
    and month end. ``vintage`` is the disbursement month as ``yyyymm`` and ``months_on_book`` the months
    from it to ``as_of`` (0 in the month of disbursement); ``prev_bucket`` is the loan's bucket at the
    previous month end (NULL: not on the book then), so a month's roll rates are one GROUP BY.
    """

    __tablename__ = "loan_month_ends"

    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(IdType)
    vintage: Mapped[int] = mapped_column(Integer)
    months_on_book: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    days_past_due: Mapped[int] = mapped_column(Integer)
    bucket: Mapped[str] = mapped_column(String(8))
    prev_bucket: Mapped[str | None] = mapped_column(String(8))
    principal_outstanding_fen: Mapped[int] = mapped_column(IdType)

    __table_args__ = (
        # Vintage curves read only the rows 30+ days past due: a small partial index.
        Index("ix_loan_month_ends_bad", "vintage", "loan_id", "months_on_book", "product_id",
              postgresql_where=text("days_past_due >= 30"), sqlite_where=text("days_past_due >= 30")),
    )


class LoanMonthEndRoll(Base):
    """A month end's snapshot rolled up (迁徙汇总): loans and principal by product, bucket at the previous
    month end (``new``: not on the book then) and bucket now. Written with the snapshot, a few dozen rows
    a month, so roll rates over any range of months read a handful of rows, not the book."""

    __tablename__ = "loan_month_end_rolls"

    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    product_id: Mapped[int] = mapped_column(IdType, primary_key=True)
    prev_bucket: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(8), primary_key=True)
    loans: Mapped[int] = mapped_column(IdType)
    principal_outstanding_fen: Mapped[int] = mapped_column(IdType)
