"""Stats and jobs: troll_stats, cached_stats, and the rank indexes the leaderboards read by.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 23:44:18.540170+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oasst.db.base
from oasst.db.base import JSONType

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cached_stats",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("modified_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stats", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cached_stats")),
    )
    op.create_table(
        "troll_stats",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("time_frame", sa.String(length=32), nullable=False),
        sa.Column("base_date", oasst.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("modified_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("troll_score", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("red_flags", sa.Integer(), nullable=False),
        sa.Column("upvotes", sa.Integer(), nullable=False),
        sa.Column("downvotes", sa.Integer(), nullable=False),
        sa.Column("spam_prompts", sa.Integer(), nullable=False),
        sa.Column("quality", sa.Double(), nullable=True),
        sa.Column("humor", sa.Double(), nullable=True),
        sa.Column("toxicity", sa.Double(), nullable=True),
        sa.Column("violence", sa.Double(), nullable=True),
        sa.Column("helpfulness", sa.Double(), nullable=True),
        sa.Column("spam", sa.Integer(), nullable=False),
        sa.Column("lang_mismach", sa.Integer(), nullable=False),
        sa.Column("not_appropriate", sa.Integer(), nullable=False),
        sa.Column("pii", sa.Integer(), nullable=False),
        sa.Column("hate_speech", sa.Integer(), nullable=False),
        sa.Column("sexual_content", sa.Integer(), nullable=False),
        sa.Column("political_content", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_troll_stats_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "time_frame", name=op.f("pk_troll_stats")),
    )
    with op.batch_alter_table("troll_stats", schema=None) as batch_op:
        batch_op.create_index("ix_troll_stats_time_frame_rank", ["time_frame", "rank"], unique=False)

    with op.batch_alter_table("user_stats", schema=None) as batch_op:
        batch_op.create_index("ix_user_stats_time_frame_rank", ["time_frame", "rank"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("user_stats", schema=None) as batch_op:
        batch_op.drop_index("ix_user_stats_time_frame_rank")

    with op.batch_alter_table("troll_stats", schema=None) as batch_op:
        batch_op.drop_index("ix_troll_stats_time_frame_rank")

    op.drop_table("troll_stats")
    op.drop_table("cached_stats")
