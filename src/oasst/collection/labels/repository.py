"""Queries on text_labels rows."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import TextLabels


async def free_labels(session: AsyncSession, message_id: uuid.UUID, user_id: uuid.UUID) -> TextLabels | None:
    """The labels `user_id` gave `message_id` outside any task (at most one row)."""
    return await session.scalar(
        select(TextLabels)
        .where(
            TextLabels.message_id == message_id,
            TextLabels.user_id == user_id,
            TextLabels.task_id.is_(None),
        )
        .order_by(TextLabels.created_date)
        .limit(1)
    )
