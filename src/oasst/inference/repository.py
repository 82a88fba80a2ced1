"""Queries of the inference API: users, refresh tokens, chats, chat messages and worker keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import Chat, ChatMessage, InferenceUser, RefreshToken, Worker
from oasst.protocol.inference import MessageState

# --- users and tokens ---------------------------------------------------------------------------------------


async def user(session: AsyncSession, user_id: str) -> InferenceUser | None:
    return await session.get(InferenceUser, user_id)


async def user_by_provider(session: AsyncSession, provider: str, account_id: str) -> InferenceUser | None:
    query = select(InferenceUser).where(
        InferenceUser.provider == provider, InferenceUser.provider_account_id == account_id
    )
    return (await session.scalars(query)).one_or_none()


async def refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    return await session.get(RefreshToken, token_hash)


# --- chats and messages -------------------------------------------------------------------------------------


async def chat(session: AsyncSession, chat_id: uuid.UUID, user_id: str) -> Chat | None:
    query = select(Chat).where(Chat.id == chat_id, Chat.user_id == user_id)
    return (await session.scalars(query)).one_or_none()


async def chats_page(
    session: AsyncSession,
    user_id: str,
    *,
    include_hidden: bool,
    limit: int,
    after: uuid.UUID | None,
    before: uuid.UUID | None,
) -> list[Chat]:
    """Up to `limit` chats, newest first: older than `after`, or (when `before` is given) newer than it."""
    query = select(Chat).where(Chat.user_id == user_id)
    if not include_hidden:
        query = query.where(Chat.hidden.is_(False))
    if before is not None:
        rows = await session.scalars(query.where(Chat.id > before).order_by(Chat.id.asc()).limit(limit))
        return list(reversed(rows.all()))
    if after is not None:
        query = query.where(Chat.id < after)
    return list((await session.scalars(query.order_by(Chat.id.desc()).limit(limit))).all())


async def messages(session: AsyncSession, chat_id: uuid.UUID) -> Sequence[ChatMessage]:
    query = select(ChatMessage).where(ChatMessage.chat_id == chat_id).order_by(ChatMessage.id)
    return (await session.scalars(query)).all()


async def message_count(session: AsyncSession, chat_id: uuid.UUID) -> int:
    query = select(func.count()).select_from(ChatMessage).where(ChatMessage.chat_id == chat_id)
    return int((await session.scalar(query)) or 0)


async def message(
    session: AsyncSession, message_id: uuid.UUID, chat_id: uuid.UUID | None = None, *, lock: bool = False
) -> ChatMessage | None:
    query = select(ChatMessage).where(ChatMessage.id == message_id)
    if chat_id is not None:
        query = query.where(ChatMessage.chat_id == chat_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def cancel_other_pending(session: AsyncSession, user_id: str, parent_id: uuid.UUID) -> None:
    """Cancel the user's pending assistant messages under other parents (drafts of one parent stay)."""
    user_chats = select(Chat.id).where(Chat.user_id == user_id)
    await session.execute(
        update(ChatMessage)
        .where(
            ChatMessage.chat_id.in_(user_chats),
            ChatMessage.role == "assistant",
            ChatMessage.state == MessageState.pending,
            ChatMessage.parent_id != parent_id,
        )
        .values(state=MessageState.cancelled)
        .execution_options(synchronize_session=False)
    )


async def delete_chat(session: AsyncSession, chat_id: uuid.UUID) -> None:
    await session.execute(delete(ChatMessage).where(ChatMessage.chat_id == chat_id))
    await session.execute(delete(Chat).where(Chat.id == chat_id))


# --- worker keys --------------------------------------------------------------------------------------------


async def worker_by_key_hash(session: AsyncSession, key_hash: str) -> Worker | None:
    return (await session.scalars(select(Worker).where(Worker.api_key_hash == key_hash))).one_or_none()


async def workers(session: AsyncSession) -> Sequence[Worker]:
    return (await session.scalars(select(Worker).order_by(Worker.created_at))).all()


async def delete_worker(session: AsyncSession, worker_id: uuid.UUID) -> bool:
    result = await session.execute(delete(Worker).where(Worker.id == worker_id))
    return bool(getattr(result, "rowcount", 0))
