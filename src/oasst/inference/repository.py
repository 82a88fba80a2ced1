"""Queries of the inference API: users, refresh tokens, chats, chat messages, reports and worker keys."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import Chat, ChatMessage, ChatReport, InferenceUser, RefreshToken, Worker
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


async def disable_refresh_tokens(session: AsyncSession, user_id: str) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id)
        .values(enabled=False)
        .execution_options(synchronize_session=False)
    )


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


async def reports_by_message(
    session: AsyncSession, chat_id: uuid.UUID, message_id: uuid.UUID | None = None
) -> dict[uuid.UUID, list[ChatReport]]:
    """The reports of a chat's messages (or of one of them), oldest first, by message id."""
    query = (
        select(ChatReport)
        .join(ChatMessage, ChatMessage.id == ChatReport.message_id)
        .where(ChatMessage.chat_id == chat_id)
        .order_by(ChatReport.id)
    )
    if message_id is not None:
        query = query.where(ChatReport.message_id == message_id)
    found: dict[uuid.UUID, list[ChatReport]] = defaultdict(list)
    for report in await session.scalars(query):
        found[report.message_id].append(report)
    return found


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


# Built once: a worker claims every message it serves with it.
_CLAIM = (
    update(ChatMessage)
    .where(
        ChatMessage.id == bindparam("message_id"),
        ChatMessage.state == MessageState.pending,
        ChatMessage.created_at >= bindparam("not_before"),
    )
    .values(
        state=MessageState.in_progress,
        work_begin_at=bindparam("now"),
        worker_id=bindparam("worker_id"),
        worker_config=bindparam("worker_config"),
    )
    .returning(ChatMessage)
    .execution_options(synchronize_session=False)
)


async def claim(
    session: AsyncSession,
    message_id: uuid.UUID,
    worker_id: uuid.UUID,
    worker_config: dict[str, Any],
    now: datetime,
    not_before: datetime,
) -> ChatMessage | None:
    """Mark a pending message created since `not_before` as in progress with a worker, in one statement;
    None when it is not such a message (gone, taken, cancelled, or too old)."""
    params = {
        "message_id": message_id,
        "not_before": not_before,
        "now": now,
        "worker_id": worker_id,
        "worker_config": worker_config,
    }
    return (await session.scalars(_CLAIM, params)).one_or_none()


async def pending_by_compat_hash(session: AsyncSession) -> dict[str, int]:
    """How many assistant messages wait for a worker, by model compat hash (the queue lengths)."""
    query = (
        select(ChatMessage.worker_compat_hash, func.count())
        .where(ChatMessage.state == MessageState.pending, ChatMessage.worker_compat_hash.is_not(None))
        .group_by(ChatMessage.worker_compat_hash)
    )
    return {str(compat_hash): int(count) for compat_hash, count in await session.execute(query)}


async def pending_messages(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """(id, compat hash) of every assistant message waiting for a worker, oldest first."""
    query = (
        select(ChatMessage.id, ChatMessage.worker_compat_hash)
        .where(ChatMessage.state == MessageState.pending, ChatMessage.worker_compat_hash.is_not(None))
        .order_by(ChatMessage.id)
    )
    return [(message_id, str(compat_hash)) for message_id, compat_hash in await session.execute(query)]


async def assistant_state_counts(session: AsyncSession) -> dict[str, int]:
    query = (
        select(ChatMessage.state, func.count())
        .where(ChatMessage.role == "assistant")
        .group_by(ChatMessage.state)
    )
    return {str(state): int(count) for state, count in await session.execute(query)}


async def cancel_other_pending(session: AsyncSession, user_id: str, parent_id: uuid.UUID) -> list[uuid.UUID]:
    """Cancel the user's pending assistant messages under other parents (drafts of one parent stay).

    Returns the ids of the messages it cancelled."""
    user_chats = select(Chat.id).where(Chat.user_id == user_id)
    cancelled = await session.execute(
        update(ChatMessage)
        .where(
            ChatMessage.chat_id.in_(user_chats),
            ChatMessage.role == "assistant",
            ChatMessage.state == MessageState.pending,
            ChatMessage.parent_id != parent_id,
        )
        .values(state=MessageState.cancelled)
        .returning(ChatMessage.id)
        .execution_options(synchronize_session=False)
    )
    return list(cancelled.scalars())


async def hide_all_chats(session: AsyncSession, user_id: str) -> None:
    await session.execute(
        update(Chat)
        .where(Chat.user_id == user_id, Chat.hidden.is_(False))
        .values(hidden=True)
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
