"""audit viewer indexes: newest-first pages of the audit log filtered by actor, subject, action or time

The console's audit viewer (web/console/audit.py) reads ``audit_entries`` newest first by ``(occurred_at, id)``
with keyset paging. Each filter gets an index ending in that order, so a page is one index range read backwards
however large the log: time alone, actor, subject (which replaces the subject index of 0001: its lookups are
this index's prefix) and action (which replaces 0001's; on PostgreSQL in byte order, ``varchar_pattern_ops``,
so an action prefix such as ``staff.`` is an index range whatever the database's collation).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_subject')
        batch_op.drop_index('ix_audit_entries_action')
        batch_op.create_index('ix_audit_entries_time', ['occurred_at', 'id'], unique=False)
        batch_op.create_index('ix_audit_entries_actor_time', ['actor', 'occurred_at', 'id'], unique=False)
        batch_op.create_index('ix_audit_entries_subject_time', ['subject', 'occurred_at', 'id'], unique=False)
        batch_op.create_index('ix_audit_entries_action_time', ['action', 'occurred_at', 'id'], unique=False,
                              postgresql_ops={'action': 'varchar_pattern_ops'})


def downgrade() -> None:
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_action_time')
        batch_op.drop_index('ix_audit_entries_subject_time')
        batch_op.drop_index('ix_audit_entries_actor_time')
        batch_op.drop_index('ix_audit_entries_time')
        batch_op.create_index('ix_audit_entries_action', ['action'], unique=False)
        batch_op.create_index('ix_audit_entries_subject', ['subject'], unique=False)
