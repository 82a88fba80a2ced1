"""A partial index of the deleted messages, so that counting them reads the few, not the table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 06:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_message_deleted",
        "message",
        ["id"],
        postgresql_where=sa.text("deleted"),
        sqlite_where=sa.text("deleted = 1"),  # as SQLAlchemy writes the condition there
    )


def downgrade() -> None:
    op.drop_index("ix_message_deleted", table_name="message")
