"""Gateway: accounts, keys, budgets and chats of the Parrot-compatible API.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 02:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oasst.db.base
from oasst.db.base import JSONType

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", oasst.db.base.UTCDateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "gateway_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("budget", sa.BigInteger(), nullable=False),
        sa.Column("course", sa.String(length=80), nullable=False),
        sa.Column("usage", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("budget >= 0", name=op.f("ck_gateway_account_budget_not_negative")),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_gateway_account_reserved_not_negative")),
        sa.CheckConstraint("usage >= 0", name=op.f("ck_gateway_account_usage_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_account")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_gateway_account_api_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_gateway_account_name")),
    )
    op.create_table(
        "gateway_charge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reserved_tokens", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("charged_tokens", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("created_at", oasst.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["gateway_account.id"], name=op.f("fk_gateway_charge_account_id_gateway_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_charge")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_gateway_charge_account_id_state_created_at",
        "gateway_charge",
        ["account_id", "state", "created_at"],
        unique=False,
    )
    op.create_index("ix_gateway_charge_day_account_id", "gateway_charge", ["day", "account_id"], unique=False)
    op.create_table(
        "gateway_chat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("instruction_prefix", sa.Text(), nullable=False),
        sa.Column("user_prefix", sa.Text(), nullable=False),
        sa.Column("assistant_prefix", sa.Text(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["account_id"], ["gateway_account.id"], name=op.f("fk_gateway_chat_account_id_gateway_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_chat")),
    )
    op.create_index(op.f("ix_gateway_chat_account_id"), "gateway_chat", ["account_id"], unique=False)
    op.create_table(
        "gateway_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["account_id"], ["gateway_account.id"], name=op.f("fk_gateway_user_account_id_gateway_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_user")),
        sa.UniqueConstraint("code", name=op.f("uq_gateway_user_code")),
    )
    op.create_index(op.f("ix_gateway_user_account_id"), "gateway_user", ["account_id"], unique=False)
    op.create_table(
        "gateway_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("model_args", JSONType, nullable=False),
        sa.Column("usage", JSONType, nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["gateway_chat.id"], name=op.f("fk_gateway_message_chat_id_gateway_chat")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_message")),
    )
    op.create_index(op.f("ix_gateway_message_chat_id"), "gateway_message", ["chat_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_gateway_message_chat_id"), table_name="gateway_message")
    op.drop_table("gateway_message")
    op.drop_index(op.f("ix_gateway_user_account_id"), table_name="gateway_user")
    op.drop_table("gateway_user")
    op.drop_index(op.f("ix_gateway_chat_account_id"), table_name="gateway_chat")
    op.drop_table("gateway_chat")
    op.drop_index("ix_gateway_charge_day_account_id", table_name="gateway_charge")
    op.drop_index("ix_gateway_charge_account_id_state_created_at", table_name="gateway_charge")
    op.drop_table("gateway_charge")
    op.drop_table("gateway_account")
