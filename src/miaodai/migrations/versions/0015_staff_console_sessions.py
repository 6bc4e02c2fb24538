"""staff console sessions: first-login setup, idle timeout, login history

Staff accounts learn whether the one-time password must still be changed and when TOTP was enrolled
(accounts made before this revision were handed their secret by the CLI: enrolled when created). Staff
sessions learn their scope (api, console, setup), when they were last used (the console's 15-minute idle
timeout), the masked address and browser they came from (the staff member's login history), and, for a
setup session, the TOTP secret being enrolled.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 17:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import miaodai.core.db

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('totp_enrolled_at', miaodai.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('password_changed_at', miaodai.core.db.UTCDateTime(timezone=True),
                                      nullable=True))
    op.execute("UPDATE staff_users SET totp_enrolled_at = created_at")
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope', sa.String(length=16), server_default='api', nullable=False))
        batch_op.add_column(sa.Column('last_seen_at', miaodai.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ip_masked', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('user_agent', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('setup_totp_secret_enc', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_column('setup_totp_secret_enc')
        batch_op.drop_column('user_agent')
        batch_op.drop_column('ip_masked')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('scope')
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('totp_enrolled_at')
        batch_op.drop_column('must_change_password')
