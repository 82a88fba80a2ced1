"""Queries of the tree manager: locks, tree states, the active messages of a language, open tasks."""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import (
    Message,
    MessageEmoji,
    MessageReaction,
    MessageTreeState,
    Task,
    TextLabels,
    User,
    UserStats,
)
from oasst.protocol.collection import TreeState


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def lock_language(session: AsyncSession, lang: str) -> None:
    """Serialise task hand-out per language for the rest of the transaction.

    On PostgreSQL this is an advisory lock; SQLite runs one transaction at a time already.
    """
    if _is_postgres(session):
        key = zlib.crc32(f"oasst:lang:{lang}".encode())
        await session.execute(select(func.pg_advisory_xact_lock(key)))


async def lock_tree(session: AsyncSession, tree_id: uuid.UUID) -> MessageTreeState | None:
    """The tree's state row, locked until commit so that its transitions never race."""
    stmt = select(MessageTreeState).where(MessageTreeState.message_tree_id == tree_id)
    if _is_postgres(session):
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt.execution_options(populate_existing=True))).one_or_none()


@dataclass(slots=True)
class ActiveMessage:
    """The columns task selection needs of a message in an active tree."""

    id: uuid.UUID
    parent_id: uuid.UUID | None
    tree_id: uuid.UUID
    user_id: uuid.UUID | None
    role: str
    lang: str
    depth: int
    review_count: int
    review_result: bool | None
    synthetic: bool
    ranking_count: int
    emojis: dict[str, int]


ACTIVE_STATES = (TreeState.initial_prompt_review, TreeState.growing, TreeState.ranking)


async def active_trees(session: AsyncSession, lang: str) -> list[MessageTreeState]:
    rows = await session.scalars(
        select(MessageTreeState).where(
            MessageTreeState.active.is_(True),
            MessageTreeState.lang == lang,
            MessageTreeState.state.in_([s.value for s in ACTIVE_STATES]),
        )
    )
    return list(rows)


async def live_messages(session: AsyncSession, tree_ids: list[uuid.UUID]) -> list[ActiveMessage]:
    """Every non-deleted message of the given trees."""
    if not tree_ids:
        return []
    rows = await session.execute(
        select(
            Message.id,
            Message.parent_id,
            Message.message_tree_id,
            Message.user_id,
            Message.role,
            Message.lang,
            Message.depth,
            Message.review_count,
            Message.review_result,
            Message.synthetic,
            Message.ranking_count,
            Message.emojis,
        ).where(Message.message_tree_id.in_(tree_ids), Message.deleted.is_(False))
    )
    return [
        ActiveMessage(
            id=row.id,
            parent_id=row.parent_id,
            tree_id=row.message_tree_id,
            user_id=row.user_id,
            role=row.role,
            lang=row.lang,
            depth=row.depth,
            review_count=row.review_count,
            review_result=row.review_result,
            synthetic=row.synthetic,
            ranking_count=row.ranking_count,
            emojis=row.emojis or {},
        )
        for row in rows
    ]


@dataclass(slots=True)
class OpenTask:
    payload_type: str
    parent_message_id: uuid.UUID | None
    message_tree_id: uuid.UUID | None
    user_id: uuid.UUID | None


async def open_tasks(session: AsyncSession, lang: str, since: datetime, now: datetime) -> list[OpenTask]:
    """Tasks of `lang` handed out since `since` that are neither done nor skipped nor expired."""
    rows = await session.execute(
        select(Task.payload_type, Task.parent_message_id, Task.message_tree_id, Task.user_id).where(
            Task.lang == lang,
            Task.created_date > since,
            Task.done.is_(False),
            Task.skipped.is_(False),
            or_(Task.expiry_date.is_(None), Task.expiry_date > now),
        )
    )
    return [OpenTask(*row) for row in rows]


async def pending_task_count(session: AsyncSession, user_id: uuid.UUID, since: datetime) -> int:
    count = await session.scalar(
        select(func.count()).where(
            Task.user_id == user_id, Task.created_date > since, Task.done.is_(False), Task.skipped.is_(False)
        )
    )
    return int(count or 0)


@dataclass(slots=True)
class UserFootprint:
    """What one user already did in the active trees: the tasks they must not get again."""

    skips: dict[uuid.UUID, set[str]]
    labelled: set[uuid.UUID]
    replied_to: set[uuid.UUID]
    ranked: set[uuid.UUID]


async def user_footprint(
    session: AsyncSession, user_id: uuid.UUID, message_ids: list[uuid.UUID]
) -> UserFootprint:
    footprint = UserFootprint(skips={}, labelled=set(), replied_to=set(), ranked=set())
    if not message_ids:
        return footprint
    emojis = await session.execute(
        select(MessageEmoji.message_id, MessageEmoji.emoji).where(
            MessageEmoji.user_id == user_id,
            MessageEmoji.message_id.in_(message_ids),
            MessageEmoji.emoji.like("\\_skip%", escape="\\"),
        )
    )
    for message_id, emoji in emojis:
        footprint.skips.setdefault(message_id, set()).add(emoji)
    footprint.labelled = set(
        await session.scalars(
            select(TextLabels.message_id).where(
                TextLabels.user_id == user_id,
                TextLabels.task_id.is_not(None),
                TextLabels.message_id.in_(message_ids),
            )
        )
    )
    footprint.replied_to = set(
        await session.scalars(
            select(Message.parent_id).where(
                Message.user_id == user_id, Message.deleted.is_(False), Message.parent_id.in_(message_ids)
            )
        )
    )
    footprint.ranked = set(
        await session.scalars(
            select(MessageReaction.message_id).where(
                MessageReaction.user_id == user_id, MessageReaction.message_id.in_(message_ids)
            )
        )
    )
    return footprint


async def count_states(session: AsyncSession, lang: str) -> dict[str, int]:
    rows = await session.execute(
        select(MessageTreeState.state, func.count())
        .where(MessageTreeState.lang == lang)
        .group_by(MessageTreeState.state)
    )
    return {state: int(count) for state, count in rows}


async def lottery_candidates(session: AsyncSession, lang: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(tree id, author id) of accepted waiting prompts whose authors are enabled."""
    rows = await session.execute(
        select(MessageTreeState.message_tree_id, Message.user_id)
        .join(Message, Message.id == MessageTreeState.message_tree_id)
        .join(User, User.id == Message.user_id)
        .where(
            MessageTreeState.state == TreeState.prompt_lottery_waiting,
            MessageTreeState.lang == lang,
            Message.review_result.is_(True),
            Message.deleted.is_(False),
            User.enabled.is_(True),
            User.deleted.is_(False),
        )
    )
    return [(tree_id, user_id) for tree_id, user_id in rows if user_id is not None]


async def monthly_first_ranks(session: AsyncSession, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(UserStats.user_id, UserStats.reply_ranked_1).where(
            UserStats.time_frame == "month", UserStats.user_id.in_(user_ids)
        )
    )
    return {user_id: int(value) for user_id, value in rows}


async def backlog_trees(session: AsyncSession, lang: str, limit: int) -> list[MessageTreeState]:
    rows = await session.scalars(
        select(MessageTreeState)
        .where(MessageTreeState.state == TreeState.backlog_ranking, MessageTreeState.lang == lang)
        .order_by(func.random())
        .limit(limit)
    )
    return list(rows)


async def tree_messages(session: AsyncSession, tree_id: uuid.UUID) -> list[Message]:
    return list(await session.scalars(select(Message).where(Message.message_tree_id == tree_id)))


async def done_review_labels(session: AsyncSession, message_id: uuid.UUID) -> list[dict[str, Any]]:
    """Label sets of the finished review tasks of a message (free labels and reports do not count)."""
    rows = await session.scalars(
        select(TextLabels.labels)
        .join(Task, and_(Task.id == TextLabels.task_id, Task.done.is_(True)))
        .where(TextLabels.message_id == message_id)
    )
    return list(rows)


async def ranking_reactions(session: AsyncSession, parent_ids: list[uuid.UUID]) -> list[MessageReaction]:
    if not parent_ids:
        return []
    rows = await session.scalars(
        select(MessageReaction)
        .join(Task, and_(Task.id == MessageReaction.task_id, Task.done.is_(True)))
        .where(
            MessageReaction.message_id.in_(parent_ids),
            MessageReaction.payload_type == "RankingReactionPayload",
        )
    )
    return list(rows)


async def set_ranks(session: AsyncSession, ranks: dict[uuid.UUID, int | None]) -> None:
    for message_id, rank in ranks.items():
        await session.execute(update(Message).where(Message.id == message_id).values(rank=rank))


async def delete_subtree(session: AsyncSession, root_id: uuid.UUID, tree_id: uuid.UUID) -> None:
    """Soft-delete a message and, breadth first, every descendant."""
    rows = (
        await session.execute(select(Message.id, Message.parent_id).where(Message.message_tree_id == tree_id))
    ).all()
    children: dict[uuid.UUID, list[uuid.UUID]] = {}
    for message_id, parent_id in rows:
        if parent_id is not None:
            children.setdefault(parent_id, []).append(message_id)
    doomed, frontier = [root_id], [root_id]
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, [])]
        doomed.extend(frontier)
    await session.execute(update(Message).where(Message.id.in_(doomed)).values(deleted=True))
