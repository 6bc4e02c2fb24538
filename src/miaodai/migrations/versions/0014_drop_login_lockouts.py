"""drop login_lockouts

The per-number lockout moved to the atomic counters of 0013 (``rate_counters``, kind ``wrong.phone.d``): a
number is locked only after the day's wrong codes, by the counter, and the old table has not been written
since. Its rows were only ever lockouts with an expiry, none of them records to keep.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 14:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import miaodai.core.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('login_lockouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_lockouts_phone_bidx'))
    op.drop_table('login_lockouts')


def downgrade() -> None:
    op.create_table('login_lockouts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('phone_bidx', sa.String(length=64), nullable=False),
    sa.Column('locked_until', miaodai.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=48), nullable=False),
    sa.Column('created_at', miaodai.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_lockouts'))
    )
    with op.batch_alter_table('login_lockouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_lockouts_phone_bidx'), ['phone_bidx'], unique=False)
