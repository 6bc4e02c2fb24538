"""Tables of credit decisioning: applications with their decisions, review cases, rulesets, the model
registry and the block list.

A decision is written once, in the request that made it: the feature snapshot (encrypted — it holds
bureau data), the ruleset and model versions, score, PD, grade, the challenger's score, the findings,
reasons and timings. Only ``status`` (and the line it led to) changes afterwards, when a reviewer
decides; the automated decision itself stays as it was made (``decision`` vs ``status``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from miaodai.core.db import Base, IdType, UTCDateTime, enum_column

RATE = Numeric(9, 6)
SNAPSHOT_FIELD = "credit.snapshot"


class Decision(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    REVIEW = "review"


class ApplicationStatus(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    IN_REVIEW = "in_review"


class ReviewKind(StrEnum):
    REFERRED = "referred"  # the rules or the score sent it to a person
    HUMAN_REVIEW_REQUEST = "human_review_request"  # the borrower asked for a person to look (PIPL art. 24)


class ReviewStatus(StrEnum):
    OPEN = "open"
    AWAITING_SECOND = "awaiting_second"  # an override of the recommendation, waiting for a second approver
    DECIDED = "decided"


class RulesetStatus(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    RETIRED = "retired"
    REJECTED = "rejected"


class ModelState(StrEnum):
    CANDIDATE = "candidate"
    CHALLENGER = "challenger"
    CHAMPION = "champion"
    RETIRED = "retired"


class BlockKind(StrEnum):
    ID_NUMBER = "id_number"
    PHONE = "phone"
    DEVICE = "device"


class CreditApplication(Base):
    __tablename__ = "credit_applications"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_products.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    device_bidx: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    application_date: Mapped[date] = mapped_column(Date)  # Beijing business date
    # The automated decision, written once.
    decision: Mapped[Decision] = mapped_column(enum_column(Decision))
    ruleset_version: Mapped[str] = mapped_column(String(64))
    ruleset_sha256: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str | None] = mapped_column(String(64))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[Decimal | None] = mapped_column(Numeric(9, 2))
    pd: Mapped[Decimal | None] = mapped_column(Numeric(7, 6))
    grade: Mapped[str | None] = mapped_column(String(2))
    challenger_model_id: Mapped[str | None] = mapped_column(String(64))
    challenger_score: Mapped[Decimal | None] = mapped_column(Numeric(9, 2))
    challenger_pd: Mapped[Decimal | None] = mapped_column(Numeric(7, 6))
    bureau_status: Mapped[str] = mapped_column(String(16))
    bureau_reference: Mapped[str | None] = mapped_column(String(64))
    findings: Mapped[str] = mapped_column(Text)  # JSON: every rule that fired, with its outcome
    reasons: Mapped[str] = mapped_column(Text)  # JSON: what the borrower is told (codes + params)
    score_reasons: Mapped[str] = mapped_column(Text)  # JSON: the scorecard's top variables below their best
    snapshot_enc: Mapped[str] = mapped_column(Text)  # encrypted JSON: application, features, facts
    # JSON, milliseconds per stage: read_ms, bureau_ms (carrier_ms), decide_ms, and store_ms / total_ms up to
    # this row's INSERT (the row lock, the open-line re-check, building the row; not the INSERT or the commit).
    timings: Mapped[str] = mapped_column(Text)
    # For the origination dashboard's SQL aggregates (JSON above is not portable to group by): the decision's
    # total_ms rounded to whole milliseconds, and a decline's first reason code.
    decision_ms: Mapped[int | None] = mapped_column(Integer)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    offered_limit_fen: Mapped[int | None] = mapped_column(IdType)
    offered_rate: Mapped[Decimal | None] = mapped_column(RATE)
    offered_expires_on: Mapped[date | None] = mapped_column(Date)
    reapply_on: Mapped[date | None] = mapped_column(Date)
    # What changes later: the status (a reviewer's outcome) and the line granted.
    status: Mapped[ApplicationStatus] = mapped_column(enum_column(ApplicationStatus))
    credit_line_id: Mapped[int | None] = mapped_column(ForeignKey("credit_lines.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_outcome: Mapped[str | None] = mapped_column(String(16))  # approve | decline, once a person decided

    __table_args__ = (
        Index("ix_credit_applications_device", "device_bidx", "application_date"),
        Index("ix_credit_applications_borrower_status", "borrower_id", "status", "application_date"),
        # The origination dashboard: a range of days read from the index alone.
        Index("ix_credit_applications_dashboard", "application_date", "product_id", "decision", "reason_code",
              "decision_ms"),
    )


class ApplicationDay(Base):
    """The daily roll-up of applications (进件日汇总), written by the end-of-day batch: applications made on a
    day by product, automated decision and (a decline's) first reason code. An application's decision is
    written once with its row, so a closed day's rows never change."""

    __tablename__ = "credit_application_days"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    application_date: Mapped[date] = mapped_column(Date)
    product_id: Mapped[int] = mapped_column(IdType)
    decision: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    applications: Mapped[int] = mapped_column(IdType)

    __table_args__ = (Index("ix_credit_application_days_date", "application_date", "product_id", "decision",
                            "reason_code", "applications"),)


class DecisionTimeDay(Base):
    """The daily roll-up of decision times: per day and product (and once for all products: ``product_id``
    None), decisions timed and their p50 / p99 — a day's percentiles, read at the dashboard's step (two
    significant figures) from that day's values when it is rolled up; days are never merged, so they are kept
    as they are."""

    __tablename__ = "credit_decision_time_days"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    application_date: Mapped[date] = mapped_column(Date)
    product_id: Mapped[int | None] = mapped_column(IdType)
    decisions: Mapped[int] = mapped_column(IdType)
    p50_ms: Mapped[int] = mapped_column(Integer)
    p99_ms: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_credit_decision_time_days_date", "application_date", "product_id", "decisions",
                            "p50_ms", "p99_ms"),)


class ScoreDay(Base):
    """The daily roll-up of scores: applications scored on a day by product, model and score (exact, so any
    model's bins are read from it)."""

    __tablename__ = "credit_score_days"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    application_date: Mapped[date] = mapped_column(Date)
    product_id: Mapped[int] = mapped_column(IdType)
    model_id: Mapped[str] = mapped_column(String(64))
    score: Mapped[Decimal] = mapped_column(Numeric(9, 2))
    applications: Mapped[int] = mapped_column(IdType)

    __table_args__ = (Index("ix_credit_score_days_model", "model_id", "application_date", "product_id", "score",
                            "applications"),)


class ReviewCase(Base):
    """A person's look at an application: referred by policy, or asked for by the borrower."""

    __tablename__ = "credit_review_cases"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("credit_applications.id"), index=True)
    kind: Mapped[ReviewKind] = mapped_column(enum_column(ReviewKind))
    status: Mapped[ReviewStatus] = mapped_column(enum_column(ReviewStatus), default=ReviewStatus.OPEN)
    recommendation: Mapped[str] = mapped_column(String(16))  # approve | decline: what the model/rules suggest
    borrower_note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(16))  # approve | decline
    outcome_reason: Mapped[str | None] = mapped_column(String(500))
    limit_fen: Mapped[int | None] = mapped_column(IdType)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    second_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    second_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("second_by IS NULL OR second_by <> decided_by", name="four_eyes"),)


class Ruleset(Base):
    __tablename__ = "credit_rulesets"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    document: Mapped[str] = mapped_column(Text)  # the JSON as proposed
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[RulesetStatus] = mapped_column(enum_column(RulesetStatus))
    proposed_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    backtest: Mapped[str | None] = mapped_column(Text)  # JSON summary shown to the approver
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("decided_by IS NULL OR decided_by <> proposed_by", name="four_eyes"),)


class ScoringModel(Base):
    """The model registry: an artifact with its SHA-256 and metadata, and where it stands."""

    __tablename__ = "credit_models"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(64), unique=True)
    artifact: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    metadata_json: Mapped[str] = mapped_column(Text)
    state: Mapped[ModelState] = mapped_column(enum_column(ModelState))
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    promotion_to: Mapped[str | None] = mapped_column(String(16))  # a pending promotion, awaiting its approver
    promotion_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BlockListEntry(Base):
    __tablename__ = "credit_block_list"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    kind: Mapped[BlockKind] = mapped_column(enum_column(BlockKind))
    value_bidx: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    added_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("kind", "value_bidx"),)

