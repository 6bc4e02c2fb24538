"""dashboard daily roll-ups: the dashboards' figures by day, written by the end-of-day batch

* ``dashboard_rollup_marks``: the last day each daily roll-up holds (``miaodai.core.rollups``).
* ``credit_application_days``, ``credit_decision_time_days``, ``credit_score_days``: applications by the day
  they were made (product, automated decision, decline reason; the day's decision-time p50 / p99 per product
  and for all; model and score).
* ``payment_order_days``: final orders by the day they became final and the day they were made (product,
  kind, state); ``ix_payment_orders_settled`` reads the orders settled after the roll-up's last day (the live
  tail) from the index alone.
* ``payment_callback_days``: applied callbacks by the day received (product of their order, 10 ms lag step).

Nothing is filled here: the first end-of-day run after the upgrade rolls up every closed day from the first
one with data (one transaction per day), and until then every figure reads the base tables live, as before.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import miaodai.core.db

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column:
    return sa.Column("id", IdType, autoincrement=True, nullable=False)


def upgrade() -> None:
    op.create_table(
        "dashboard_rollup_marks",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("through", sa.Date(), nullable=False),
        sa.Column("rolled_at", miaodai.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_dashboard_rollup_marks")),
    )
    op.create_table(
        "credit_application_days", _id(),
        sa.Column("application_date", sa.Date(), nullable=False),
        sa.Column("product_id", IdType, nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("applications", IdType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_application_days")),
    )
    op.create_index("ix_credit_application_days_date", "credit_application_days",
                    ["application_date", "product_id", "decision", "reason_code", "applications"])
    op.create_table(
        "credit_decision_time_days", _id(),
        sa.Column("application_date", sa.Date(), nullable=False),
        sa.Column("product_id", IdType, nullable=True),
        sa.Column("decisions", IdType, nullable=False),
        sa.Column("p50_ms", sa.Integer(), nullable=False),
        sa.Column("p99_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_decision_time_days")),
    )
    op.create_index("ix_credit_decision_time_days_date", "credit_decision_time_days",
                    ["application_date", "product_id", "decisions", "p50_ms", "p99_ms"])
    op.create_table(
        "credit_score_days", _id(),
        sa.Column("application_date", sa.Date(), nullable=False),
        sa.Column("product_id", IdType, nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Numeric(precision=9, scale=2), nullable=False),
        sa.Column("applications", IdType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_score_days")),
    )
    op.create_index("ix_credit_score_days_model", "credit_score_days",
                    ["model_id", "application_date", "product_id", "score", "applications"])
    op.create_table(
        "payment_order_days", _id(),
        sa.Column("settled_on", sa.Date(), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("product_id", IdType, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("orders", IdType, nullable=False),
        sa.Column("amount_fen", IdType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_order_days")),
    )
    op.create_index("ix_payment_order_days_settled_on", "payment_order_days", ["settled_on"])
    op.create_index("ix_payment_order_days_created", "payment_order_days",
                    ["created_on", "settled_on", "product_id", "kind", "state", "orders", "amount_fen"])
    op.create_table(
        "payment_callback_days", _id(),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("product_id", IdType, nullable=True),
        sa.Column("lag_step", IdType, nullable=False),
        sa.Column("callbacks", IdType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_callback_days")),
    )
    op.create_index("ix_payment_callback_days_received", "payment_callback_days",
                    ["received_on", "product_id", "lag_step", "callbacks"])
    op.create_index("ix_payment_orders_settled", "payment_orders",
                    ["settled_at", "created_at", "kind", "status", "amount_fen", "product_id"])


def downgrade() -> None:
    op.drop_index("ix_payment_orders_settled", table_name="payment_orders")
    for table in ("payment_callback_days", "payment_order_days", "credit_score_days", "credit_decision_time_days",
                  "credit_application_days", "dashboard_rollup_marks"):
        op.drop_table(table)
