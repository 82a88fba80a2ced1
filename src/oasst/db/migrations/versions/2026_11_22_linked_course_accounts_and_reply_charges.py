"""Course budgets for chat replies: a local account keeps the hash of the course key it joined with, and a
gateway charge may be for a chat reply (settled when the worker finishes that message).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 04:55:24+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_charge", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inference_message_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_gateway_charge_inference_message_id"), ["inference_message_id"], unique=False
        )

    with op.batch_alter_table("local_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gateway_key_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("local_account", schema=None) as batch_op:
        batch_op.drop_column("gateway_key_hash")

    # SQLite rebuilds the table to drop a column: it must keep AUTOINCREMENT (see GatewayCharge).
    with op.batch_alter_table(
        "gateway_charge", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_charge_inference_message_id"))
        batch_op.drop_column("inference_message_id")
