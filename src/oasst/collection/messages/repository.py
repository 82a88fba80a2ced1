"""Queries on messages and their emojis."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import Message, MessageEmoji


async def user_emojis(
    session: AsyncSession, message_ids: Iterable[uuid.UUID], user_id: uuid.UUID | None
) -> dict[uuid.UUID, list[str]]:
    """The emojis `user_id` put on each of `message_ids`."""
    ids = list(message_ids)
    if user_id is None or not ids:
        return {}
    rows = await session.execute(
        select(MessageEmoji.message_id, MessageEmoji.emoji).where(
            MessageEmoji.user_id == user_id, MessageEmoji.message_id.in_(ids)
        )
    )
    found: dict[uuid.UUID, list[str]] = defaultdict(list)
    for message_id, emoji in rows:
        found[message_id].append(emoji)
    return found


async def thread(session: AsyncSession, message: Message) -> list[Message]:
    """The messages from the root down to `message` (included), root first."""
    rows = (await session.scalars(select(Message).where(Message.message_tree_id == message.message_tree_id))).all()
    by_id = {row.id: row for row in rows}
    chain = [message]
    while chain[-1].parent_id is not None and chain[-1].parent_id in by_id:
        chain.append(by_id[chain[-1].parent_id])
    chain.reverse()
    return chain
