"""Queries on task rows and the rows an interaction writes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Uuid, and_, bindparam, func, insert, or_, select, update
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


@dataclass(frozen=True, slots=True)
class ReplyClashes:
    """What would make a new reply a duplicate."""

    duplicate_text: bool
    replied_already: bool
    frontend_id_taken: bool


_USER_ID = bindparam("user_id", type_=Uuid())
_CLIENT_ID = bindparam("client_id", type_=Uuid())
_FRONTEND_ID = bindparam("frontend_id", type_=String())
_MINE = and_(Message.user_id == _USER_ID, Message.deleted.is_(False))
_THEIRS = and_(Message.api_client_id == _CLIENT_ID, Message.frontend_message_id == _FRONTEND_ID)
_REPLY_CLASHES = select(
    func.count().filter(_MINE, Message.text == bindparam("text"), Message.created_date > bindparam("since")),
    func.count().filter(_MINE, Message.parent_id == bindparam("parent_id", type_=Uuid())),
    func.count().filter(_THEIRS),
).where(or_(Message.user_id == _USER_ID, _THEIRS))


async def reply_clashes(
    session: AsyncSession,
    user_id: uuid.UUID,
    client_id: uuid.UUID,
    text: str,
    since: datetime,
    parent_id: uuid.UUID | None,
    frontend_id: str,
) -> ReplyClashes:
    """In one statement: the same text from the user lately, a reply to this parent, a used frontend id."""
    params = {
        "user_id": user_id,
        "client_id": client_id,
        "frontend_id": frontend_id,
        "text": text,
        "since": since,
        "parent_id": parent_id,
    }
    same_text, same_parent, same_id = (await session.execute(_REPLY_CLASHES, params)).one()
    return ReplyClashes(bool(same_text), bool(same_parent), bool(same_id))


async def bump(session: AsyncSession, message_ids: list[uuid.UUID], column: str) -> None:
    """Add one to a counter column of messages, atomically in the database."""
    target = getattr(Message, column)
    await session.execute(update(Message).where(Message.id.in_(message_ids)).values({column: target + 1}))
