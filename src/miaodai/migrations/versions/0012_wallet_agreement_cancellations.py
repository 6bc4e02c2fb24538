"""wallet agreement cancellations

Unbinding an e-wallet cancels its withholding agreement at the wallet (解约) through an outbox: the
cancellations to send (new table, one per payment method), and the sandbox wallets' own record of the
agreements they signed and cancelled (new table). No existing row changes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import miaodai.core.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payment_agreement_cancellations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('borrower_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payment_method_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.Enum('bank_card', 'alipay', 'wechat_pay', name='paymentmethodkind', native_enum=False, length=32), nullable=False),
    sa.Column('agreement_no', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('pending', 'confirmed', name='cancellationstatus', native_enum=False, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', miaodai.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_code', sa.String(length=32), nullable=True),
    sa.Column('created_at', miaodai.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', miaodai.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], name=op.f('fk_payment_agreement_cancellations_borrower_id_borrowers')),
    sa.ForeignKeyConstraint(['payment_method_id'], ['payment_methods.id'], name=op.f('fk_payment_agreement_cancellations_payment_method_id_payment_methods')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_agreement_cancellations')),
    sa.UniqueConstraint('payment_method_id', name=op.f('uq_payment_agreement_cancellations_payment_method_id'))
    )
    with op.batch_alter_table('payment_agreement_cancellations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_agreement_cancellations_borrower_id'), ['borrower_id'], unique=False)
        batch_op.create_index('ix_payment_agreement_cancellations_due', ['status', 'next_attempt_at'], unique=False)

    op.create_table('sandbox_wallet_agreements',
    sa.Column('agreement_no', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('behaviour', sa.String(length=24), nullable=False),
    sa.Column('signed_at', miaodai.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cancel_calls', sa.Integer(), nullable=False),
    sa.Column('cancelled_at', miaodai.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('agreement_no', name=op.f('pk_sandbox_wallet_agreements'))
    )


def downgrade() -> None:
    op.drop_table('sandbox_wallet_agreements')
    with op.batch_alter_table('payment_agreement_cancellations', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_agreement_cancellations_due')
        batch_op.drop_index(batch_op.f('ix_payment_agreement_cancellations_borrower_id'))

    op.drop_table('payment_agreement_cancellations')
