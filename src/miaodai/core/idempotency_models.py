"""The idempotency-key store behind every money-moving POST (``Idempotency-Key`` header).

One row per (scope, key): the request's fingerprint, and — once the first request has finished —
the response it got, replayed to any retry with the same body. A row without a response is in
flight until ``locked_until`` (after which a crashed request's key may be taken over).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from miaodai.core.db import Base, IdType, UTCDateTime


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(64))  # whose key: "borrower:12", "staff:3"
    key: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(200))
    request_sha256: Mapped[str] = mapped_column(String(64))  # method, path and body
    status_code: Mapped[int | None] = mapped_column(Integer)  # None while in flight
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())  # kept at least 24 hours

    __table_args__ = (
        UniqueConstraint("scope", "key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )
