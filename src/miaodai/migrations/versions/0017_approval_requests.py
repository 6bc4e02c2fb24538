"""approval requests: the back office's generic maker-checker table

One row per servicing action proposed by one staff member and decided by another (refunds, repayment
reversals, write-offs, penalty waivers, line freezes and limits, account closures). New table only; the CHECK
``four_eyes`` refuses a checker who is the request's maker, as credit's review cases and rulesets do.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import miaodai.core.db

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approval_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('figures', sa.Text(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'approved', 'rejected', 'failed', name='approvalstate', native_enum=False, length=32), nullable=False),
    sa.Column('maker_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('maker_reason', sa.String(length=500), nullable=False),
    sa.Column('request_key', sa.String(length=128), nullable=True),
    sa.Column('created_at', miaodai.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('checker_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decision_reason', sa.String(length=500), nullable=True),
    sa.Column('decided_at', miaodai.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.CheckConstraint('checker_id IS NULL OR checker_id <> maker_id', name=op.f('ck_approval_requests_four_eyes')),
    sa.ForeignKeyConstraint(['checker_id'], ['staff_users.id'], name=op.f('fk_approval_requests_checker_id_staff_users')),
    sa.ForeignKeyConstraint(['maker_id'], ['staff_users.id'], name=op.f('fk_approval_requests_maker_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_requests')),
    sa.UniqueConstraint('maker_id', 'request_key', name=op.f('uq_approval_requests_maker_id_request_key'))
    )
    with op.batch_alter_table('approval_requests', schema=None) as batch_op:
        batch_op.create_index('ix_approval_requests_state_created', ['state', 'created_at'], unique=False)
        batch_op.create_index('ix_approval_requests_subject', ['subject'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('approval_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_approval_requests_subject')
        batch_op.drop_index('ix_approval_requests_state_created')
    op.drop_table('approval_requests')
