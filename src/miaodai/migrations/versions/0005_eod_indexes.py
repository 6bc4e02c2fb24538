"""eod indexes: partial indexes that keep the end-of-day batch proportional to what is due, not the book

* ``ix_loan_installments_unpaid`` (due_date, loan_id) over unpaid installments: the overdue, penalty,
  status and auto-debit steps look for "unpaid and due by D", a small set however old the book grows.
* ``ix_loan_installments_not_posted`` (due_date) over installments not yet posted due: the fall-due step.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _false() -> str:
    return "0" if op.get_bind().dialect.name == "sqlite" else "false"


def upgrade() -> None:
    op.create_index("ix_loan_installments_unpaid", "loan_installments", ["due_date", "loan_id"],
                    postgresql_where=sa.text("paid_off_on IS NULL"), sqlite_where=sa.text("paid_off_on IS NULL"))
    not_posted = sa.text(f"posted_due = {_false()}")
    op.create_index("ix_loan_installments_not_posted", "loan_installments", ["due_date"],
                    postgresql_where=not_posted, sqlite_where=not_posted)


def downgrade() -> None:
    op.drop_index("ix_loan_installments_not_posted", table_name="loan_installments")
    op.drop_index("ix_loan_installments_unpaid", table_name="loan_installments")
