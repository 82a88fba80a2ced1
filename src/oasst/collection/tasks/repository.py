"""Queries on task rows and the rows an interaction writes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import Message, Task

# Every ack and interaction runs these: built once with bind parameters.
_BY_ID = select(Task).where(Task.id == bindparam("task_id"), Task.api_client_id == bindparam("client_id"))
_BY_FRONTEND_ID = (
    select(Task)
    .where(Task.api_client_id == bindparam("client_id"), Task.frontend_message_id == bindparam("frontend_id"))
    .order_by(Task.created_date.desc())
    .limit(1)
)
_FINISH = (
    update(Task)
    .where(Task.id == bindparam("task_id"), Task.done.is_(False), Task.skipped.is_(False))
    .values(done=True, interaction_digest=bindparam("digest"))
    .execution_options(synchronize_session=False)
)


_INSERT_TASK = insert(Task)


async def insert_task(session: AsyncSession, values: dict[str, Any]) -> None:
    """Store a new task with one plain INSERT (no unit-of-work bookkeeping on the hand-out path)."""
    await session.execute(_INSERT_TASK, values)


async def by_id(session: AsyncSession, api_client_id: uuid.UUID, task_id: uuid.UUID) -> Task | None:
    return await session.scalar(_BY_ID, {"task_id": task_id, "client_id": api_client_id})


async def by_frontend_id(session: AsyncSession, api_client_id: uuid.UUID, frontend_id: str) -> Task | None:
    return await session.scalar(_BY_FRONTEND_ID, {"client_id": api_client_id, "frontend_id": frontend_id})


async def finish(session: AsyncSession, task_id: uuid.UUID, digest: str) -> bool:
    """Mark a task done unless someone else just did; True if this call finished it."""
    result = await session.execute(_FINISH, {"task_id": task_id, "digest": digest})
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def message_by_frontend_id(
    session: AsyncSession, api_client_id: uuid.UUID, frontend_id: str
) -> Message | None:
    return await session.scalar(
        select(Message).where(
            Message.api_client_id == api_client_id, Message.frontend_message_id == frontend_id
        )
    )


async def recent_duplicate(session: AsyncSession, user_id: uuid.UUID, text: str, since: datetime) -> bool:
    found = await session.scalar(
        select(func.count()).where(
            Message.user_id == user_id,
            Message.text == text,
            Message.created_date > since,
            Message.deleted.is_(False),
        )
    )
    return bool(found)


async def has_reply(session: AsyncSession, user_id: uuid.UUID, parent_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(func.count()).where(
            Message.user_id == user_id, Message.parent_id == parent_id, Message.deleted.is_(False)
        )
    )
    return bool(found)


async def bump(session: AsyncSession, message_ids: list[uuid.UUID], column: str) -> None:
    """Add one to a counter column of messages, atomically in the database."""
    target = getattr(Message, column)
    await session.execute(update(Message).where(Message.id.in_(message_ids)).values({column: target + 1}))
