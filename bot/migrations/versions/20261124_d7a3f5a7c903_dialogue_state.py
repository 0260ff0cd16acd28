"""dialogue state

Revision ID: d7a3f5a7c903
Revises: d7a2b4c6e802
Create Date: 2026-11-24 18:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = 'd7a3f5a7c903'
down_revision: str | None = 'd7a2b4c6e802'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
