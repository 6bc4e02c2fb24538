"""dashboard speed: payment orders carry their loan's product, in the dashboard's index

* ``payment_orders.product_id``: the loan's product, copied when the order is made (a loan never changes
  product) and filled here for the orders already stored. The money-movement dashboard's product filter
  joined every order of the range to its loan (1,500,000 lookups over a year of the benchmark book); now
  ``ix_payment_orders_dashboard`` ends with the product and answers a product's orders from the index alone.
  The index is replaced, not added: an order's INSERT still writes the same number of indexes.

(``model_id`` and ``score`` were added to ``ix_credit_applications_dashboard`` on the way and taken out again:
on the 1,000,000-application book the wider index made the other origination figures slower on PostgreSQL —
a year's applications by day 332 → 1,270 ms, under load — while the score distribution it was for moved
within the noise there (a year 876 → 980 ms); on SQLite it did speed that one up. See docs/console.md.)

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ORDERS_BEFORE = ["created_at", "kind", "status", "checks", "code", "amount_fen"]


def upgrade() -> None:
    with op.batch_alter_table("payment_orders") as batch:
        batch.add_column(sa.Column("product_id", IdType, nullable=True))
    op.execute("UPDATE payment_orders SET product_id = "
               "(SELECT loans.product_id FROM loans WHERE loans.id = payment_orders.loan_id) "
               "WHERE loan_id IS NOT NULL")
    op.drop_index("ix_payment_orders_dashboard", table_name="payment_orders")
    op.create_index("ix_payment_orders_dashboard", "payment_orders", [*ORDERS_BEFORE, "product_id"])


def downgrade() -> None:
    op.drop_index("ix_payment_orders_dashboard", table_name="payment_orders")
    op.create_index("ix_payment_orders_dashboard", "payment_orders", ORDERS_BEFORE)
    # Not batch mode: SQLite would copy the table, and the rows referring to its orders forbid dropping it.
    op.execute("ALTER TABLE payment_orders DROP COLUMN product_id")
