"""Queries of moderation: flagged messages, soft and hard deletes, counter repairs, user merges."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.messages.schemas import Keyset
from oasst.db.models import (
    FlaggedMessage,
    Journal,
    Message,
    MessageEmoji,
    MessageReaction,
    MessageRevision,
    MessageTreeState,
    Task,
    TextLabels,
    TrollStats,
    User,
    UserStats,
)

FLAGGED_ORDER = (FlaggedMessage.created_date, FlaggedMessage.message_id)
RANKING = "RankingReactionPayload"


# --- flagged messages -------------------------------------------------------------------------------------


async def flagged(session: AsyncSession, message_id: uuid.UUID) -> FlaggedMessage | None:
    return await session.get(FlaggedMessage, message_id)


async def flagged_listing(
    session: AsyncSession, keyset: Keyset, *, desc: bool, limit: int | None
) -> list[FlaggedMessage]:
    """Flagged messages within `keyset`, ordered by (created_date, message_id)."""
    query = select(FlaggedMessage)
    date, key = FLAGGED_ORDER
    if keyset.gte_date is not None:
        if keyset.gt_id is not None:
            query = query.where(
                or_(date > keyset.gte_date, and_(date == keyset.gte_date, key > keyset.gt_id))
            )
        else:
            query = query.where(date >= keyset.gte_date)
    if keyset.lte_date is not None:
        if keyset.lt_id is not None:
            query = query.where(
                or_(date < keyset.lte_date, and_(date == keyset.lte_date, key < keyset.lt_id))
            )
        else:
            query = query.where(date <= keyset.lte_date)
    query = query.order_by(*(c.desc() for c in FLAGGED_ORDER) if desc else FLAGGED_ORDER)
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))


# --- soft delete ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """The shape of a message inside its tree."""

    id: uuid.UUID
    parent_id: uuid.UUID | None
    tree_id: uuid.UUID


async def user_messages(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    api_client_id: uuid.UUID | None = None,
    min_date: datetime | None = None,
    max_date: datetime | None = None,
) -> list[Node]:
    """Every message of a user (deleted ones too), optionally of one client and within dates."""
    query = select(Message.id, Message.parent_id, Message.message_tree_id).where(Message.user_id == user_id)
    if api_client_id is not None:
        query = query.where(Message.api_client_id == api_client_id)
    if min_date is not None:
        query = query.where(Message.created_date >= min_date)
    if max_date is not None:
        query = query.where(Message.created_date <= max_date)
    return [Node(*row) for row in await session.execute(query)]


async def tree_nodes(session: AsyncSession, tree_id: uuid.UUID) -> list[Node]:
    rows = await session.execute(
        select(Message.id, Message.parent_id, Message.message_tree_id).where(
            Message.message_tree_id == tree_id
        )
    )
    return [Node(*row) for row in rows]


def subtree_ids(nodes: Iterable[Node], tops: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """`tops` and every message below them among `nodes`."""
    children: dict[uuid.UUID, list[uuid.UUID]] = {}
    for node in nodes:
        if node.parent_id is not None:
            children.setdefault(node.parent_id, []).append(node.id)
    found, frontier = set(tops), list(tops)
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, []) if child not in found]
        found.update(frontier)
    return found


async def set_deleted(session: AsyncSession, message_ids: Iterable[uuid.UUID], deleted: bool) -> None:
    ids = list(message_ids)
    for start in range(0, len(ids), 500):
        await session.execute(
            update(Message).where(Message.id.in_(ids[start : start + 500])).values(deleted=deleted)
        )


# --- hard delete (purge) ----------------------------------------------------------------------------------


def _chunks(ids: Sequence[uuid.UUID], size: int = 500) -> Iterable[list[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


async def purge_trees(session: AsyncSession, tree_ids: Sequence[uuid.UUID]) -> None:
    """Remove whole trees with everything attached to their messages (labels, emojis, rankings, tasks...)."""
    for chunk in _chunks(tree_ids):
        in_trees = select(Message.id).where(Message.message_tree_id.in_(chunk))
        creating_tasks = select(Message.task_id).where(
            Message.message_tree_id.in_(chunk), Message.task_id.is_not(None)
        )
        await session.execute(delete(Journal).where(Journal.message_id.in_(in_trees)))
        await session.execute(
            delete(Task).where(or_(Task.message_tree_id.in_(chunk), Task.id.in_(creating_tasks)))
        )
        await _delete_attached(session, in_trees)
        await session.execute(delete(MessageTreeState).where(MessageTreeState.message_tree_id.in_(chunk)))
        await session.execute(delete(Message).where(Message.message_tree_id.in_(chunk)))


async def purge_messages(session: AsyncSession, message_ids: Sequence[uuid.UUID]) -> None:
    """Remove messages with what hangs on them: their labels, emojis, rankings, revisions and tasks.

    The caller removes whole subtrees, so no surviving message is left without its parent.
    """
    for chunk in _chunks(message_ids):
        creating_tasks = select(Message.task_id).where(Message.id.in_(chunk), Message.task_id.is_not(None))
        await session.execute(delete(Journal).where(Journal.message_id.in_(chunk)))
        await session.execute(
            delete(Task).where(or_(Task.parent_message_id.in_(chunk), Task.id.in_(creating_tasks)))
        )
        await _delete_attached(session, chunk)
        await session.execute(delete(Message).where(Message.id.in_(chunk)))


async def _delete_attached(session: AsyncSession, message_ids: Any) -> None:
    # The foreign keys cascade too; deleting explicitly keeps the purge independent of that.
    for model in (TextLabels, MessageEmoji, MessageReaction, MessageRevision, FlaggedMessage):
        await session.execute(delete(model).where(model.message_id.in_(message_ids)))


async def recount_children(session: AsyncSession, parent_ids: Iterable[uuid.UUID]) -> None:
    """children_count = the number of child rows left (deleted children included, as on insert)."""
    child = Message.__table__.alias("child")
    count = select(func.count()).where(child.c.parent_id == Message.id).scalar_subquery()
    for chunk in _chunks(list(parent_ids)):
        await session.execute(
            update(Message).where(Message.id.in_(chunk)).values(children_count=count),
            execution_options={"synchronize_session": False},
        )


@dataclass(frozen=True, slots=True)
class Ranking:
    task_id: uuid.UUID
    user_id: uuid.UUID
    parent_id: uuid.UUID | None
    ranked_ids: list[uuid.UUID]


def _ranked_ids(payload: dict[str, Any]) -> list[uuid.UUID]:
    return [uuid.UUID(str(i)) for i in (payload or {}).get("ranked_message_ids") or []]


async def rankings(
    session: AsyncSession, *, parent_ids: Iterable[uuid.UUID] = (), user_id: uuid.UUID | None = None
) -> list[Ranking]:
    """Ranking reactions on the given parents, or (with `user_id`) every ranking that user gave."""
    query = select(
        MessageReaction.task_id, MessageReaction.user_id, MessageReaction.message_id, MessageReaction.payload
    ).where(MessageReaction.payload_type == RANKING)
    if user_id is not None:
        query = query.where(MessageReaction.user_id == user_id)
    else:
        ids = list(parent_ids)
        if not ids:
            return []
        query = query.where(MessageReaction.message_id.in_(ids))
    rows = await session.execute(query)
    return [Ranking(task, user, parent, _ranked_ids(payload)) for task, user, parent, payload in rows]


async def delete_reactions(session: AsyncSession, keys: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> None:
    for task_id, user_id in keys:
        await session.execute(
            delete(MessageReaction).where(
                MessageReaction.task_id == task_id, MessageReaction.user_id == user_id
            )
        )


async def subtract(session: AsyncSession, column: str, amounts: Counter[uuid.UUID]) -> None:
    """Take `amounts` off a counter column of messages (never below zero)."""
    target = getattr(Message, column)
    by_amount: dict[int, list[uuid.UUID]] = {}
    for message_id, amount in amounts.items():
        if amount > 0:
            by_amount.setdefault(amount, []).append(message_id)
    for amount, ids in by_amount.items():
        for chunk in _chunks(ids):
            await session.execute(
                update(Message).where(Message.id.in_(chunk)).values({column: target - amount}),
                execution_options={"synchronize_session": False},
            )
            await session.execute(
                update(Message).where(Message.id.in_(chunk), target < 0).values({column: 0}),
                execution_options={"synchronize_session": False},
            )


async def reset_ranks(session: AsyncSession, parent_ids: Iterable[uuid.UUID]) -> None:
    for chunk in _chunks(list(parent_ids)):
        await session.execute(
            update(Message).where(Message.parent_id.in_(chunk)).values(rank=None),
            execution_options={"synchronize_session": False},
        )


async def user_emojis(session: AsyncSession, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    rows = await session.execute(
        select(MessageEmoji.message_id, MessageEmoji.emoji).where(MessageEmoji.user_id == user_id)
    )
    return [(message_id, emoji) for message_id, emoji in rows]


async def delete_emojis(
    session: AsyncSession, user_id: uuid.UUID, keys: Iterable[tuple[uuid.UUID, str]]
) -> None:
    for message_id, emoji in keys:
        await session.execute(
            delete(MessageEmoji).where(
                MessageEmoji.message_id == message_id,
                MessageEmoji.user_id == user_id,
                MessageEmoji.emoji == emoji,
            )
        )


async def delete_labels(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(TextLabels).where(TextLabels.user_id == user_id))


async def review_label_targets(session: AsyncSession, user_id: uuid.UUID) -> Counter[uuid.UUID]:
    """How many task-based reviews (which count in review_count) the user gave each message."""
    rows = await session.execute(
        select(TextLabels.message_id, func.count())
        .where(TextLabels.user_id == user_id, TextLabels.task_id.is_not(None))
        .group_by(TextLabels.message_id)
    )
    return Counter({message_id: int(count) for message_id, count in rows})


async def delete_user_rows(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Everything a user left besides the messages already purged: labels, reactions, tasks, stats..."""
    for model in (Journal, TextLabels, MessageReaction, MessageEmoji, Task, UserStats, TrollStats):
        await session.execute(delete(model).where(model.user_id == user_id))
    await session.execute(delete(Message).where(Message.user_id == user_id))


async def ban(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(update(User).where(User.id == user_id).values(deleted=True, enabled=False))


# --- merging users ----------------------------------------------------------------------------------------

# Tables whose rows follow their author into the destination user (no key includes the user).
REASSIGNED = (Message, MessageRevision, MessageReaction, TextLabels, Task, Journal)


async def reassign(session: AsyncSession, sources: list[uuid.UUID], destination: uuid.UUID) -> None:
    for model in REASSIGNED:
        await session.execute(
            update(model).where(model.user_id.in_(sources)).values(user_id=destination),
            execution_options={"synchronize_session": False},
        )


async def emojis_of(
    session: AsyncSession, user_ids: list[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    rows = await session.execute(
        select(MessageEmoji.message_id, MessageEmoji.user_id, MessageEmoji.emoji).where(
            MessageEmoji.user_id.in_(user_ids)
        )
    )
    return [(message_id, user_id, emoji) for message_id, user_id, emoji in rows]


async def move_emoji(
    session: AsyncSession, message_id: uuid.UUID, emoji: str, source: uuid.UUID, destination: uuid.UUID
) -> None:
    await session.execute(
        update(MessageEmoji)
        .where(
            MessageEmoji.message_id == message_id, MessageEmoji.user_id == source, MessageEmoji.emoji == emoji
        )
        .values(user_id=destination)
    )


async def delete_users(session: AsyncSession, user_ids: list[uuid.UUID]) -> None:
    """Remove users and their stats rows (their other rows must have been moved first)."""
    for model in (UserStats, TrollStats):
        await session.execute(delete(model).where(model.user_id.in_(user_ids)))
    await session.execute(delete(User).where(User.id.in_(user_ids)))
