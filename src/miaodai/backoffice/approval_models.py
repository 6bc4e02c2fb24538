"""The generic four-eyes table: one row per servicing action proposed by one staff member and decided by another.

A request names its ``kind`` (:mod:`miaodai.backoffice.actions`), its ``subject`` (``loan:12``, ``repayment:7``,
``credit_line:3``, ``borrower:5``), the proposal's parameters and the before/after figures computed when it was
proposed (both JSON), the maker and their reason. It goes ``pending`` → ``approved`` | ``rejected``, or ``failed``
when the action, run at approval, is no longer possible (the refusal's code is kept in ``error_code``), or
``withdrawn`` by its maker while it still waits (their reason in ``decision_reason``, no checker). Every state but
``pending`` is final. ``state`` is a VARCHAR with no CHECK of its values (as every enum column here), so a new
state needs no migration.

The maker never decides their own request: the service refuses it, and the CHECK ``four_eyes`` refuses a row
whose checker is its maker whatever code wrote it (as credit's review overrides and rulesets do).
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from miaodai.core.db import Base, IdType, UTCDateTime, enum_column


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    FAILED = "failed"  # approved by a checker, but the action was no longer possible: nothing changed
    WITHDRAWN = "withdrawn"  # taken back by its maker before anyone decided it: nothing changed


class ApprovalRequest(Base):
    __tablename__ = "approval_requests"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)  # JSON: what the maker proposed
    figures: Mapped[str] = mapped_column(Text)  # JSON: {"before": {...}, "after": {...}} when proposed
    state: Mapped[ApprovalState] = mapped_column(enum_column(ApprovalState), default=ApprovalState.PENDING)
    maker_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    maker_reason: Mapped[str] = mapped_column(String(500))
    # The maker's Idempotency-Key: a retried proposal finds its request even after the key layer forgot it.
    request_key: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    checker_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[str | None] = mapped_column(Text)  # JSON: what executing the action did (ids, amounts)
    error_code: Mapped[str | None] = mapped_column(String(64))  # failed: the refusal's stable code

    __table_args__ = (
        CheckConstraint("checker_id IS NULL OR checker_id <> maker_id", name="four_eyes"),
        UniqueConstraint("maker_id", "request_key"),
        Index("ix_approval_requests_state_created", "state", "created_at"),
        Index("ix_approval_requests_subject", "subject"),
    )

    @property
    def params_dict(self) -> dict[str, Any]:
        return dict(json.loads(self.params))

    @property
    def figures_dict(self) -> dict[str, Any]:
        return dict(json.loads(self.figures))

    @property
    def result_dict(self) -> dict[str, Any] | None:
        return dict(json.loads(self.result)) if self.result else None
