"""indexes for the few live rows among many

The desk's queue, its approvals list, the SLA escalation and the promise jobs read the
handful of active handoffs, conversations with people, proposals and open promises
among every one ever made; the borrower page and approvals read an entity's audit
history. Without these, each read scanned its whole table (11-49 ms a query at 200,000
handoffs and promises or a million audit events, each queue load running seven of
them); with them, a fraction of a millisecond. The partial indexes hold the live rows
only, so they stay small however long the history.

Revision ID: d7a9e5f7b509
Revises: d7a8d4e6a408
Create Date: 2026-11-25 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd7a9e5f7b509'
down_revision: str | None = 'd7a8d4e6a408'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTIAL = (
    ('handoffs', 'ix_handoffs_active_created', ['created_at'], "state IN ('open', 'claimed')"),
    ('conversations', 'ix_conversations_human', ['id'], "status = 'human'"),
    ('arrangements', 'ix_arrangements_proposed', ['created_at', 'id'], "state = 'proposed'"),
    ('promises', 'ix_promises_open_date', ['promised_date'], "state = 'open'"),
)


def upgrade() -> None:
    for table, name, columns, where in PARTIAL:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(
                name,
                columns,
                unique=False,
                postgresql_where=sa.text(where),
                sqlite_where=sa.text(where),
            )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_entity', ['entity', 'entity_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_entity')
    for table, name, _, _ in reversed(PARTIAL):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
