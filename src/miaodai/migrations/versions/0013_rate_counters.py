"""rate counters

The atomic counters behind every abuse cap (SMS codes per network, device and number; wrong codes;
the bank's binding codes; staff login failures): one row per (kind, key, fixed window), raised by an
upsert (``miaodai.identity.counters``). New table; no existing row changes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import miaodai.core.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_counters',
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('window_start', miaodai.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_end', miaodai.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'key', 'window_start', name=op.f('pk_rate_counters'))
    )
    with op.batch_alter_table('rate_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_counters_window_end'), ['window_end'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rate_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_counters_window_end'))
    op.drop_table('rate_counters')
