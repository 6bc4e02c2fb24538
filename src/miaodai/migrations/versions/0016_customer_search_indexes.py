"""customer search indexes: a blind index of the verified name, and cards by last 4 + BIN

Staff find a customer by name through ``kyc_identities.name_bidx`` (an HMAC of the NFKC-normalised name without
spaces, as ``identity.read_models.name_index`` computes it), never by decrypting; and by a card's BIN + last 4
through an index on the clear ``payment_methods.last4`` and ``bin`` (what PCI DSS lets us show).

Existing identities get their name index from ``miaodai customers backfill-index``, not here: the migration has
no keyring (it runs with a database URL alone, as ``miaodai db upgrade`` and the tests run it), and the index
needs the HMAC key and each name decrypted once. Until the command has run, those rows are not found by name
(every other search kind finds them); new verifications write the index themselves.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 18:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('kyc_identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_bidx', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_kyc_identities_name_bidx'), ['name_bidx'], unique=False)
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.create_index('ix_payment_methods_last4_bin', ['last4', 'bin'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_methods_last4_bin')
    with op.batch_alter_table('kyc_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kyc_identities_name_bidx'))
        batch_op.drop_column('name_bidx')
