"""OAuth accounts of the web UI: who signed in with Discord, GitHub or Google, and their role there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 06:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oasst.db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("signed_in_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_account")),
        sa.UniqueConstraint("provider", "account_id", name=op.f("uq_oauth_account_provider_account_id")),
    )


def downgrade() -> None:
    op.drop_table("oauth_account")
