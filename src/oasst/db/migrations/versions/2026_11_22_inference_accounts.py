"""Inference accounts: local users, votes and reports of chat messages (filled in by the inference-auth work).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 02:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oasst.db.base
from oasst.db.base import JSONType

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "local_account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_local_account")),
        sa.UniqueConstraint("username", name=op.f("uq_local_account_username")),
    )
    op.create_table(
        "inference_message_evaluation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chat_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("selected_message_id", sa.Uuid(), nullable=False),
        sa.Column("inferior_message_ids", JSONType, nullable=False),
        sa.Column("created_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["inference_chat.id"],
            name=op.f("fk_inference_message_evaluation_chat_id_inference_chat"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["selected_message_id"],
            ["inference_message.id"],
            name=op.f("fk_inference_message_evaluation_selected_message_id_inference_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["inference_user.id"],
            name=op.f("fk_inference_message_evaluation_user_id_inference_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_message_evaluation")),
    )
    with op.batch_alter_table("inference_message_evaluation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inference_message_evaluation_chat_id"), ["chat_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_inference_message_evaluation_selected_message_id"),
            ["selected_message_id"],
            unique=False,
        )

    op.create_table(
        "inference_report",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("report_type", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["inference_message.id"],
            name=op.f("fk_inference_report_message_id_inference_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["inference_user.id"],
            name=op.f("fk_inference_report_user_id_inference_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_report")),
    )
    with op.batch_alter_table("inference_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inference_report_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inference_report_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inference_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inference_report_user_id"))
        batch_op.drop_index(batch_op.f("ix_inference_report_message_id"))

    op.drop_table("inference_report")
    with op.batch_alter_table("inference_message_evaluation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inference_message_evaluation_selected_message_id"))
        batch_op.drop_index(batch_op.f("ix_inference_message_evaluation_chat_id"))

    op.drop_table("inference_message_evaluation")
    op.drop_table("local_account")
