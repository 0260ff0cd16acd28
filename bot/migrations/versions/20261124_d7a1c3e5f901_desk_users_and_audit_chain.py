"""desk users and audit chain

Revision ID: d7a1c3e5f901
Revises: 7d403289cd26
Create Date: 2026-11-24 18:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = 'd7a1c3e5f901'
down_revision: str | None = '7d403289cd26'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
