"""dashboards: month-end loan snapshots, decision time and decline reason as columns, dashboard indexes

* ``loan_month_ends``: each loan on the book at each month end, written by the end-of-day batch (vintage
  curves and roll rates need where every loan stood at every month end; ``loans`` only knows today), and
  ``loan_month_end_rolls``, each month end rolled up by product and bucket then and a month before.
* ``credit_applications.decision_ms`` and ``reason_code``: the decision's total time and a decline's first
  reason, as columns a GROUP BY can read (the JSON they come from is not portable to aggregate); filled
  here for the applications already stored.
* indexes that let each dashboard aggregate a range from an index alone.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BAD = sa.text("days_past_due >= 30")


def upgrade() -> None:
    op.create_table(
        "loan_month_ends",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("loan_id", IdType, nullable=False),
        sa.Column("product_id", IdType, nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("months_on_book", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=8), nullable=False),
        sa.Column("prev_bucket", sa.String(length=8), nullable=True),
        sa.Column("principal_outstanding_fen", IdType, nullable=False),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_loan_month_ends_loan_id_loans")),
        sa.PrimaryKeyConstraint("as_of", "loan_id", name=op.f("pk_loan_month_ends")),
    )
    op.create_table(
        "loan_month_end_rolls",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("product_id", IdType, nullable=False),
        sa.Column("prev_bucket", sa.String(length=8), nullable=False),
        sa.Column("bucket", sa.String(length=8), nullable=False),
        sa.Column("loans", IdType, nullable=False),
        sa.Column("principal_outstanding_fen", IdType, nullable=False),
        sa.PrimaryKeyConstraint("as_of", "product_id", "prev_bucket", "bucket", name=op.f("pk_loan_month_end_rolls")),
    )
    op.create_index("ix_loan_month_ends_bad", "loan_month_ends",
                    ["vintage", "loan_id", "months_on_book", "product_id"],
                    postgresql_where=BAD, sqlite_where=BAD)
    with op.batch_alter_table("credit_applications") as batch:
        batch.add_column(sa.Column("decision_ms", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reason_code", sa.String(length=64), nullable=True))
    _fill_application_columns()
    op.create_index("ix_credit_applications_dashboard", "credit_applications",
                    ["application_date", "product_id", "decision", "reason_code", "decision_ms"])
    op.create_index("ix_loans_dashboard", "loans",
                    ["status", "start_date", "product_id", "days_past_due", "principal_outstanding_fen"])
    op.create_index("ix_loan_repayments_kind_received", "loan_repayments", ["kind", "received_on"])
    op.create_index("ix_payment_orders_dashboard", "payment_orders",
                    ["created_at", "kind", "status", "checks", "code", "amount_fen"])
    op.create_index("ix_payment_callbacks_received", "payment_callbacks", ["received_at", "outcome", "order_no"])


def _fill_application_columns() -> None:
    """The two new columns of the applications already stored, from their JSON, a thousand at a time."""
    bind = op.get_bind()
    apps = sa.table("credit_applications", sa.column("id", IdType), sa.column("decision", sa.String),
                    sa.column("timings", sa.Text), sa.column("reasons", sa.Text),
                    sa.column("decision_ms", sa.Integer), sa.column("reason_code", sa.String))
    last = 0
    while True:
        rows = bind.execute(sa.select(apps.c.id, apps.c.decision, apps.c.timings, apps.c.reasons)
                            .where(apps.c.id > last).order_by(apps.c.id).limit(1000)).all()
        if not rows:
            return
        for row in rows:
            timings = json.loads(row.timings or "{}")
            reasons = json.loads(row.reasons or "[]")
            total = timings.get("total_ms")
            code = reasons[0].get("code") if row.decision == "declined" and reasons else None
            bind.execute(sa.update(apps).where(apps.c.id == row.id).values(
                decision_ms=None if total is None else round(total), reason_code=code))
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_payment_callbacks_received", table_name="payment_callbacks")
    op.drop_index("ix_payment_orders_dashboard", table_name="payment_orders")
    op.drop_index("ix_loan_repayments_kind_received", table_name="loan_repayments")
    op.drop_index("ix_loans_dashboard", table_name="loans")
    op.drop_index("ix_credit_applications_dashboard", table_name="credit_applications")
    with op.batch_alter_table("credit_applications") as batch:
        batch.drop_column("reason_code")
        batch.drop_column("decision_ms")
    op.drop_index("ix_loan_month_ends_bad", table_name="loan_month_ends")
    op.drop_table("loan_month_end_rolls")
    op.drop_table("loan_month_ends")
