"""Collection core: API clients, users, messages, trees, tasks, labels, reactions, stats.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 23:26:25.600668+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oasst.db.base
from oasst.db.base import JSONType

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "api_client",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=False),
        sa.Column("admin_email", sa.String(length=256), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column("frontend_type", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_client")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_api_client_api_key_hash")),
    )
    op.create_table(
        "journal",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("api_client_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("event_payload", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal")),
    )
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_journal_created_date"), ["created_date"], unique=False)

    op.create_table(
        "user",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("auth_method", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("created_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("api_client_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("notes", sa.String(length=1024), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("show_on_leaderboard", sa.Boolean(), nullable=False),
        sa.Column("streak_last_day_date", oasst.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("streak_days", sa.Integer(), nullable=True),
        sa.Column("last_activity_date", oasst.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tos_acceptance_date", oasst.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_client_id"], ["api_client.id"], name=op.f("fk_user_api_client_id_api_client")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
        sa.UniqueConstraint(
            "api_client_id",
            "username",
            "auth_method",
            name=op.f("uq_user_api_client_id_username_auth_method"),
        ),
    )
    op.create_table(
        "message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("message_tree_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("role", sa.String(length=128), nullable=False),
        sa.Column("api_client_id", sa.Uuid(), nullable=False),
        sa.Column("frontend_message_id", sa.String(length=200), nullable=False),
        sa.Column("created_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(length=32), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("children_count", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("review_count", sa.Integer(), nullable=False),
        sa.Column("review_result", sa.Boolean(), nullable=True),
        sa.Column("ranking_count", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("edited", sa.Boolean(), nullable=False),
        sa.Column("model_name", sa.String(length=1024), nullable=True),
        sa.Column("emojis", JSONType, nullable=True),
        sa.ForeignKeyConstraint(
            ["api_client_id"], ["api_client.id"], name=op.f("fk_message_api_client_id_api_client")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_message_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint(
            "api_client_id", "frontend_message_id", name=op.f("uq_message_api_client_id_frontend_message_id")
        ),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_created_id", ["created_date", "id"], unique=False)
        batch_op.create_index("ix_message_parent", ["parent_id"], unique=False)
        batch_op.create_index("ix_message_tree", ["message_tree_id"], unique=False)
        batch_op.create_index("ix_message_user_created", ["user_id", "created_date"], unique=False)

    op.create_table(
        "task",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expiry_date", oasst.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("payload_type", sa.String(length=128), nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("api_client_id", sa.Uuid(), nullable=False),
        sa.Column("ack", sa.Boolean(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.Column("skip_reason", sa.String(length=512), nullable=True),
        sa.Column("frontend_message_id", sa.String(length=200), nullable=True),
        sa.Column("message_tree_id", sa.Uuid(), nullable=True),
        sa.Column("parent_message_id", sa.Uuid(), nullable=True),
        sa.Column("collective", sa.Boolean(), nullable=False),
        sa.Column("lang", sa.String(length=32), nullable=True),
        sa.Column("interaction_digest", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_client_id"], ["api_client.id"], name=op.f("fk_task_api_client_id_api_client")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_task_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(
            "ix_task_client_frontend_id", ["api_client_id", "frontend_message_id"], unique=False
        )
        batch_op.create_index("ix_task_parent_created", ["parent_message_id", "created_date"], unique=False)
        batch_op.create_index("ix_task_user_created", ["user_id", "created_date"], unique=False)

    op.create_table(
        "user_stats",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("time_frame", sa.String(length=32), nullable=False),
        sa.Column("base_date", oasst.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("modified_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("leader_score", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("prompts", sa.Integer(), nullable=False),
        sa.Column("replies_assistant", sa.Integer(), nullable=False),
        sa.Column("replies_prompter", sa.Integer(), nullable=False),
        sa.Column("labels_simple", sa.Integer(), nullable=False),
        sa.Column("labels_full", sa.Integer(), nullable=False),
        sa.Column("rankings_total", sa.Integer(), nullable=False),
        sa.Column("rankings_good", sa.Integer(), nullable=False),
        sa.Column("accepted_prompts", sa.Integer(), nullable=False),
        sa.Column("accepted_replies_assistant", sa.Integer(), nullable=False),
        sa.Column("accepted_replies_prompter", sa.Integer(), nullable=False),
        sa.Column("reply_ranked_1", sa.Integer(), nullable=False),
        sa.Column("reply_ranked_2", sa.Integer(), nullable=False),
        sa.Column("reply_ranked_3", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_user_stats_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "time_frame", name=op.f("pk_user_stats")),
    )
    op.create_table(
        "flagged_message",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("processed", sa.Boolean(), nullable=False),
        sa.Column("created_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_flagged_message_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_flagged_message")),
    )
    with op.batch_alter_table("flagged_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flagged_message_created_date"), ["created_date"], unique=False)

    op.create_table(
        "message_emoji",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("emoji", sa.String(length=128), nullable=False),
        sa.Column("created_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_message_emoji_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_message_emoji_user_id_user")),
        sa.PrimaryKeyConstraint("message_id", "user_id", "emoji", name=op.f("pk_message_emoji")),
    )
    with op.batch_alter_table("message_emoji", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_emoji_user_id"), ["user_id"], unique=False)

    op.create_table(
        "message_reaction",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload_type", sa.String(length=128), nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("api_client_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_client_id"], ["api_client.id"], name=op.f("fk_message_reaction_api_client_id_api_client")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_message_reaction_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_message_reaction_user_id_user")),
        sa.PrimaryKeyConstraint("task_id", "user_id", name=op.f("pk_message_reaction")),
    )
    with op.batch_alter_table("message_reaction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_reaction_message_id"), ["message_id"], unique=False)

    op.create_table(
        "message_revision",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("created_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_message_revision_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_message_revision_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_revision")),
    )
    with op.batch_alter_table("message_revision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_revision_message_id"), ["message_id"], unique=False)

    op.create_table(
        "message_tree_state",
        sa.Column("message_tree_id", sa.Uuid(), nullable=False),
        sa.Column("goal_tree_size", sa.Integer(), nullable=False),
        sa.Column("max_depth", sa.Integer(), nullable=False),
        sa.Column("max_children_count", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(length=1024), nullable=True),
        sa.Column("won_prompt_lottery_date", oasst.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lang", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_tree_id"],
            ["message.id"],
            name=op.f("fk_message_tree_state_message_tree_id_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_tree_id", name=op.f("pk_message_tree_state")),
    )
    with op.batch_alter_table("message_tree_state", schema=None) as batch_op:
        batch_op.create_index("ix_message_tree_state_state_lang", ["state", "lang"], unique=False)

    op.create_table(
        "text_labels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_date", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("api_client_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("labels", JSONType, nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_client_id"], ["api_client.id"], name=op.f("fk_text_labels_api_client_id_api_client")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_text_labels_message_id_message"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_text_labels_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_labels")),
    )
    with op.batch_alter_table("text_labels", schema=None) as batch_op:
        batch_op.create_index("ix_text_labels_message_user", ["message_id", "user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_text_labels_task_id"), ["task_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("text_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_text_labels_task_id"))
        batch_op.drop_index("ix_text_labels_message_user")

    op.drop_table("text_labels")
    with op.batch_alter_table("message_tree_state", schema=None) as batch_op:
        batch_op.drop_index("ix_message_tree_state_state_lang")

    op.drop_table("message_tree_state")
    with op.batch_alter_table("message_revision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_revision_message_id"))

    op.drop_table("message_revision")
    with op.batch_alter_table("message_reaction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_reaction_message_id"))

    op.drop_table("message_reaction")
    with op.batch_alter_table("message_emoji", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_emoji_user_id"))

    op.drop_table("message_emoji")
    with op.batch_alter_table("flagged_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flagged_message_created_date"))

    op.drop_table("flagged_message")
    op.drop_table("user_stats")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index("ix_task_user_created")
        batch_op.drop_index("ix_task_parent_created")
        batch_op.drop_index("ix_task_client_frontend_id")

    op.drop_table("task")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_user_created")
        batch_op.drop_index("ix_message_tree")
        batch_op.drop_index("ix_message_parent")
        batch_op.drop_index("ix_message_created_id")

    op.drop_table("message")
    op.drop_table("user")
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_created_date"))

    op.drop_table("journal")
    op.drop_table("api_client")
