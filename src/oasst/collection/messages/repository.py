"""Queries on messages, their emojis and their revisions."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.messages.schemas import Keyset, MessageFilter
from oasst.db.base import utcnow
from oasst.db.dml import insert_ignore
from oasst.db.models import FlaggedMessage, Message, MessageEmoji, MessageRevision, MessageTreeState, User

CREATED_ORDER = (Message.created_date, Message.id)


async def user_emojis(
    session: AsyncSession, message_ids: Iterable[uuid.UUID], user_id: uuid.UUID | None
) -> dict[uuid.UUID, list[str]]:
    """The emojis `user_id` put on each of `message_ids`."""
    ids = list(message_ids)
    if user_id is None or not ids:
        return {}
    rows = await session.execute(
        select(MessageEmoji.message_id, MessageEmoji.emoji)
        .where(MessageEmoji.user_id == user_id, MessageEmoji.message_id.in_(ids))
        .order_by(MessageEmoji.created_date, MessageEmoji.emoji)
    )
    found: dict[uuid.UUID, list[str]] = defaultdict(list)
    for message_id, emoji in rows:
        found[message_id].append(emoji)
    return found


async def get(session: AsyncSession, message_id: uuid.UUID) -> Message | None:
    return await session.get(Message, message_id)


async def lock(session: AsyncSession, message_id: uuid.UUID) -> Message | None:
    """The message, fresh and locked until commit (PostgreSQL; SQLite has one writer anyway)."""
    stmt = select(Message).where(Message.id == message_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def by_frontend_id(session: AsyncSession, api_client_id: uuid.UUID, frontend_id: str) -> Message | None:
    return await session.scalar(
        select(Message).where(
            Message.api_client_id == api_client_id, Message.frontend_message_id == frontend_id
        )
    )


async def tree(
    session: AsyncSession,
    message_tree_id: uuid.UUID,
    *,
    review_result: bool | None = None,
    deleted: bool | None = None,
) -> list[Message]:
    """The messages of a tree in creation order; None leaves a flag unfiltered."""
    query = select(Message).where(Message.message_tree_id == message_tree_id)
    if review_result is not None:
        query = query.where(Message.review_result.is_(review_result))
    if deleted is not None:
        query = query.where(Message.deleted.is_(deleted))
    return list((await session.scalars(query.order_by(*CREATED_ORDER))).all())


async def children(session: AsyncSession, parent_id: uuid.UUID) -> list[Message]:
    """Direct children that are not deleted, reviewed or not."""
    query = select(Message).where(Message.parent_id == parent_id, Message.deleted.is_(False))
    return list((await session.scalars(query.order_by(*CREATED_ORDER))).all())


async def below(session: AsyncSession, message: Message) -> list[Message]:
    """Every message of the tree deeper than `message`, unfiltered, in creation order."""
    query = select(Message).where(
        Message.message_tree_id == message.message_tree_id, Message.depth > message.depth
    )
    return list((await session.scalars(query.order_by(*CREATED_ORDER))).all())


async def tree_state(session: AsyncSession, message_tree_id: uuid.UUID) -> MessageTreeState | None:
    return await session.get(MessageTreeState, message_tree_id)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(where: MessageFilter, keyset: Keyset) -> Select[Message]:
    query = select(Message)
    if where.user_id is not None:
        query = query.where(Message.user_id == where.user_id)
    if where.auth_method is not None and where.username is not None:
        query = query.join(User, User.id == Message.user_id).where(
            User.auth_method == where.auth_method, User.username == where.username
        )
    if where.api_client_id is not None:
        query = query.where(Message.api_client_id == where.api_client_id)
    if where.only_roots:
        query = query.where(Message.parent_id.is_(None))
    if not where.include_deleted:
        query = query.where(Message.deleted.is_(False))
    if where.lang is not None:
        query = query.where(Message.lang == where.lang)
    if where.search_query:
        # ILIKE on PostgreSQL, lower() LIKE lower() on SQLite: the same answers on both engines.
        query = query.where(Message.text.ilike(f"%{_escape_like(where.search_query)}%", escape="\\"))
    if keyset.gte_date is not None:
        if keyset.gt_id is not None:
            query = query.where(
                or_(
                    Message.created_date > keyset.gte_date,
                    and_(Message.created_date == keyset.gte_date, Message.id > keyset.gt_id),
                )
            )
        else:
            query = query.where(Message.created_date >= keyset.gte_date)
    if keyset.lte_date is not None:
        if keyset.lt_id is not None:
            query = query.where(
                or_(
                    Message.created_date < keyset.lte_date,
                    and_(Message.created_date == keyset.lte_date, Message.id < keyset.lt_id),
                )
            )
        else:
            query = query.where(Message.created_date <= keyset.lte_date)
    return query


async def listing(
    session: AsyncSession, where: MessageFilter, keyset: Keyset, *, desc: bool, limit: int | None
) -> list[Message]:
    """Messages matching `where` within `keyset`, ordered by (created_date, id)."""
    order = [column.desc() for column in CREATED_ORDER] if desc else list(CREATED_ORDER)
    query = _filtered(where, keyset).order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    return list((await session.scalars(query)).all())


async def users_by_id(session: AsyncSession, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, User]:
    ids = set(user_ids)
    if not ids:
        return {}
    rows = await session.scalars(select(User).where(User.id.in_(ids)))
    return {row.id: row for row in rows}


async def lock_emojis(session: AsyncSession, message_id: uuid.UUID) -> dict[str, Any]:
    """Lock the message row until the transaction ends and return its committed emoji counts.

    Every emoji change of a message goes through this lock, so concurrent reactions to one message queue
    up instead of losing counts. (SQLite has no row locks; its single writer already serialises them.)
    """
    emojis = await session.scalar(select(Message.emojis).where(Message.id == message_id).with_for_update())
    return dict(emojis or {})


async def set_emojis(session: AsyncSession, message_id: uuid.UUID, emojis: dict[str, int]) -> None:
    await session.execute(update(Message).where(Message.id == message_id).values(emojis=emojis))


async def emoji_codes(session: AsyncSession, message_id: uuid.UUID, user_id: uuid.UUID) -> set[str]:
    rows = await session.scalars(
        select(MessageEmoji.emoji).where(
            MessageEmoji.message_id == message_id, MessageEmoji.user_id == user_id
        )
    )
    return set(rows)


async def insert_emoji(session: AsyncSession, message_id: uuid.UUID, user_id: uuid.UUID, emoji: str) -> bool:
    """Store one reaction; False if the same reaction already existed."""
    return await insert_ignore(
        session,
        MessageEmoji,
        {"message_id": message_id, "user_id": user_id, "emoji": emoji, "created_date": utcnow()},
        ["message_id", "user_id", "emoji"],
    )


async def delete_emoji(session: AsyncSession, message_id: uuid.UUID, user_id: uuid.UUID, emoji: str) -> bool:
    """Remove one reaction; False if there was none."""
    result = await session.execute(
        delete(MessageEmoji).where(
            MessageEmoji.message_id == message_id,
            MessageEmoji.user_id == user_id,
            MessageEmoji.emoji == emoji,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def flag(session: AsyncSession, message_id: uuid.UUID) -> None:
    """Upsert the moderation queue row of a red-flagged message as unprocessed and new."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {"message_id": message_id, "processed": False, "created_date": utcnow()}
    stmt = dialect.insert(FlaggedMessage).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["message_id"],
        set_={"processed": stmt.excluded.processed, "created_date": stmt.excluded.created_date},
    )
    await session.execute(stmt)


def add_revision(
    session: AsyncSession,
    revision_id: uuid.UUID,
    message_id: uuid.UUID,
    text: str,
    user_id: uuid.UUID | None,
    created_date: datetime,
) -> None:
    session.add(
        MessageRevision(
            id=revision_id, message_id=message_id, text=text, user_id=user_id, created_date=created_date
        )
    )


async def revisions(session: AsyncSession, message_id: uuid.UUID) -> list[MessageRevision]:
    """A message's revisions, oldest first."""
    rows = await session.scalars(
        select(MessageRevision)
        .where(MessageRevision.message_id == message_id)
        .order_by(MessageRevision.created_date, MessageRevision.id)
    )
    return list(rows)
