"""Loan products. Issue 3 adds schedules, drawdowns and repayments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from miaodai.core.db import Base, IdType, UTCDateTime


class LoanProduct(Base):
    __tablename__ = "loan_products"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    min_amount_fen: Mapped[int] = mapped_column(IdType)
    max_amount_fen: Mapped[int] = mapped_column(IdType)
    # Comma-separated terms in months, e.g. "3,6,12".
    terms_months: Mapped[str] = mapped_column(String(64))
    annual_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    repayment_method: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
