"""Queries on task rows and the rows an interaction writes."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, String, Table, Update, Uuid, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from oasst.collection.users import repository as users_repository
from oasst.db.base import Base, UTCDateTime
from oasst.db.models import Message, Task, User
from oasst.db.session import single_statement
from oasst.protocol import collection as wire

# Every ack and interaction runs these: built once with bind parameters. Those that need no ORM object are
# built on the tables, so the session runs them as plain Core (no ORM compile and result steps).
_TASK = cast(Table, Task.__table__)
_MESSAGE = cast(Table, Message.__table__)
_task, _message = _TASK.c, _MESSAGE.c
_BY_ID = select(Task).where(Task.id == bindparam("task_id"), Task.api_client_id == bindparam("client_id"))
_LATEST_BY_FRONTEND_ID = (
    select(Task.id)
    .where(Task.api_client_id == bindparam("client_id"), Task.frontend_message_id == bindparam("frontend_id"))
    .order_by(Task.created_date.desc())
    .limit(1)
)
_BY_FRONTEND_ID = select(Task).where(Task.id == _LATEST_BY_FRONTEND_ID.scalar_subquery())
_FINISH = (
    update(Task)
    .where(Task.id == bindparam("task_id"), Task.done.is_(False), Task.skipped.is_(False))
    .values(done=True, interaction_digest=bindparam("digest"))
    .execution_options(synchronize_session=False)
)
# Neither done, nor skipped, nor expired (a task expires once its expiry date has passed).
_OPEN = and_(
    _task.done.is_(False),
    _task.skipped.is_(False),
    or_(_task.expiry_date.is_(None), _task.expiry_date >= bindparam("now", type_=UTCDateTime())),
)
_ACK = (
    update(_TASK)
    .where(
        _task.id == bindparam("task_id"),
        _task.api_client_id == bindparam("client_id"),
        _task.ack.is_not(True),
        _OPEN,
    )
    .values(ack=True, frontend_message_id=bindparam("frontend_id"))
)
# An answer finishes, in one statement, an open, acknowledged, non-collective task of the answering user,
# and returns the start of that user's streak.
_ANSWERABLE = and_(
    Task.api_client_id == bindparam("client_id"),
    Task.user_id == users_repository.ID_BY_IDENTITY,
    Task.collective.is_(False),
    Task.ack.is_(True),
    _OPEN,
)
_STREAK_SINCE = select(User.streak_last_day_date).where(User.id == Task.user_id).scalar_subquery()
_FINISH_BY_ID = (
    update(Task)
    .where(Task.id == bindparam("task_id"), _ANSWERABLE)
    .values(done=True, interaction_digest=bindparam("digest"))
    .returning(Task, _STREAK_SINCE)
    .execution_options(synchronize_session=False)
)
_FINISH_BY_FRONTEND_ID = (
    update(Task)
    .where(Task.id == _LATEST_BY_FRONTEND_ID.scalar_subquery(), _ANSWERABLE)
    .values(done=True, interaction_digest=bindparam("digest"))
    .returning(Task, _STREAK_SINCE)
    .execution_options(synchronize_session=False)
)


@functools.cache
def _insert(model: type[Base]) -> Insert:
    return insert(cast(Table, model.__table__))


async def add(session: AsyncSession, model: type[Base], values: dict[str, Any]) -> None:
    """Store a new row with one Core INSERT (no unit-of-work bookkeeping on the hot paths)."""
    await session.execute(_insert(model), values)


async def by_id(session: AsyncSession, api_client_id: uuid.UUID, task_id: uuid.UUID) -> Task | None:
    return await session.scalar(_BY_ID, {"task_id": task_id, "client_id": api_client_id})


async def by_frontend_id(session: AsyncSession, api_client_id: uuid.UUID, frontend_id: str) -> Task | None:
    return await session.scalar(_BY_FRONTEND_ID, {"client_id": api_client_id, "frontend_id": frontend_id})


async def finish(session: AsyncSession, task_id: uuid.UUID, digest: str) -> bool:
    """Mark a task done unless someone else just did; True if this call finished it."""
    result = await session.execute(_FINISH, {"task_id": task_id, "digest": digest})
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def ack(
    session: AsyncSession, api_client_id: uuid.UUID, task_id: uuid.UUID, frontend_id: str, now: datetime
) -> bool:
    """Bind `frontend_id` to an open task not acknowledged yet; False (nothing written) if there is none."""
    await single_statement(session)
    params = {"task_id": task_id, "client_id": api_client_id, "frontend_id": frontend_id, "now": now}
    result = await session.execute(_ACK, params)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish_answerable(
    session: AsyncSession,
    api_client_id: uuid.UUID,
    user: wire.User,
    digest: str,
    now: datetime,
    *,
    task_id: uuid.UUID | None = None,
    frontend_id: str | None = None,
) -> tuple[Task, datetime | None] | None:
    """Mark done the task an answer is for (by id, or by the frontend id its ack bound), if it is open,
    acknowledged, not collective and `user`'s: the task and the start of the user's streak, or None (nothing
    written) if it is not."""
    params: dict[str, object] = {
        "client_id": api_client_id,
        "auth_method": user.auth_method,
        "username": user.id,
        "digest": digest,
        "now": now,
    }
    if task_id is not None:
        stmt, params["task_id"] = _FINISH_BY_ID, task_id
    else:
        stmt, params["frontend_id"] = _FINISH_BY_FRONTEND_ID, frontend_id
    row = (await session.execute(stmt, params)).one_or_none()
    return None if row is None else (row[0], row[1])


@dataclass(frozen=True, slots=True)
class ReplyClashes:
    """What would make a new reply a duplicate."""

    duplicate_text: bool
    replied_already: bool
    frontend_id_taken: bool


_USER_ID = bindparam("user_id", type_=Uuid())
_CLIENT_ID = bindparam("client_id", type_=Uuid())
_FRONTEND_ID = bindparam("frontend_id", type_=String())
_MINE = and_(_message.user_id == _USER_ID, _message.deleted.is_(False))
_THEIRS = and_(_message.api_client_id == _CLIENT_ID, _message.frontend_message_id == _FRONTEND_ID)
_REPLY_CLASHES = select(
    func.count().filter(
        _MINE, _message.text == bindparam("text"), _message.created_date > bindparam("since")
    ),
    func.count().filter(_MINE, _message.parent_id == bindparam("parent_id", type_=Uuid())),
    func.count().filter(_THEIRS),
).where(or_(_message.user_id == _USER_ID, _THEIRS))


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


_ADD_REVIEW = (
    update(_MESSAGE)
    .where(_message.id == bindparam("message_id"))
    .values(review_count=_message.review_count + 1)
    .returning(_message.review_count, _message.review_result)
)


async def add_review(session: AsyncSession, message: Message) -> None:
    """Count one more review of `message`, atomically; its review counters then hold the database's values."""
    review_count, review_result = (await session.execute(_ADD_REVIEW, {"message_id": message.id})).one()
    set_committed_value(message, "review_count", review_count)
    set_committed_value(message, "review_result", review_result)


@functools.cache
def _bump(column: str) -> Update:
    return (
        update(_MESSAGE)
        .where(_MESSAGE.c.id.in_(bindparam("message_ids", expanding=True)))
        .values({column: _MESSAGE.c[column] + 1})
    )


async def bump(session: AsyncSession, message_ids: list[uuid.UUID], column: str) -> None:
    """Add one to a counter column of messages, atomically in the database."""
    await session.execute(_bump(column), {"message_ids": message_ids})
