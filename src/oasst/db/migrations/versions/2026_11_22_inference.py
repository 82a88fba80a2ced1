"""Inference: users, refresh tokens, chats, chat messages and worker keys of the /inference API.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:50:22.529774+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oasst.db.base
from oasst.db.base import JSONType

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inference_user",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("provider_account_id", sa.String(length=256), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_user")),
        sa.UniqueConstraint(
            "provider", "provider_account_id", name=op.f("uq_inference_user_provider_provider_account_id")
        ),
    )
    op.create_table(
        "inference_worker",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column("created_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_worker")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_inference_worker_api_key_hash")),
    )
    op.create_table(
        "inference_chat",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=True),
        sa.Column("active_thread_tail_message_id", sa.Uuid(), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("allow_data_use", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["inference_user.id"],
            name=op.f("fk_inference_chat_user_id_inference_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_chat")),
    )
    with op.batch_alter_table("inference_chat", schema=None) as batch_op:
        batch_op.create_index("ix_inference_chat_user_id_id", ["user_id", "id"], unique=False)

    op.create_table(
        "inference_refresh_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["inference_user.id"],
            name=op.f("fk_inference_refresh_token_user_id_inference_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_inference_refresh_token")),
    )
    with op.batch_alter_table("inference_refresh_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inference_refresh_token_user_id"), ["user_id"], unique=False)

    op.create_table(
        "inference_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chat_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("work_parameters", JSONType, nullable=True),
        sa.Column("work_begin_at", oasst.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("work_end_at", oasst.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.Uuid(), nullable=True),
        sa.Column("worker_compat_hash", sa.String(length=512), nullable=True),
        sa.Column("worker_config", JSONType, nullable=True),
        sa.Column("used_plugin", JSONType, nullable=True),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["inference_chat.id"],
            name=op.f("fk_inference_message_chat_id_inference_chat"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"],
            ["inference_worker.id"],
            name=op.f("fk_inference_message_worker_id_inference_worker"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_message")),
    )
    with op.batch_alter_table("inference_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inference_message_chat_id"), ["chat_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inference_message_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inference_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inference_message_state"))
        batch_op.drop_index(batch_op.f("ix_inference_message_chat_id"))

    op.drop_table("inference_message")
    with op.batch_alter_table("inference_refresh_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inference_refresh_token_user_id"))

    op.drop_table("inference_refresh_token")
    with op.batch_alter_table("inference_chat", schema=None) as batch_op:
        batch_op.drop_index("ix_inference_chat_user_id_id")

    op.drop_table("inference_chat")
    op.drop_table("inference_worker")
    op.drop_table("inference_user")
