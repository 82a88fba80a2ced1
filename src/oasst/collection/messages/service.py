"""Message views: the wire shapes of messages and threads, relative to the user who looks."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.messages import repository
from oasst.db.models import Message
from oasst.protocol import collection as wire


def to_conversation_message(
    message: Message, *, viewer_id: uuid.UUID | None, user_emojis: list[str] | None = None
) -> wire.ConversationMessage:
    """A message as it appears inside a conversation shown to `viewer_id` (None: nobody known)."""
    return wire.ConversationMessage(
        id=message.id,
        user_id=message.user_id,
        frontend_message_id=message.frontend_message_id,
        text=message.text,
        lang=message.lang,
        is_assistant=message.role == "assistant",
        emojis=message.emojis or {},
        user_emojis=user_emojis or [],
        user_is_author=None if viewer_id is None else message.user_id == viewer_id,
        synthetic=message.synthetic,
    )


def to_wire(
    message: Message,
    *,
    viewer_id: uuid.UUID | None,
    user_emojis: list[str] | None = None,
    user: wire.FrontEndUser | None = None,
) -> wire.Message:
    """The full `Message` object of the message routes."""
    base = to_conversation_message(message, viewer_id=viewer_id, user_emojis=user_emojis)
    return wire.Message(
        **base.model_dump(),
        parent_id=message.parent_id,
        created_date=message.created_date,
        review_result=message.review_result,
        review_count=message.review_count,
        deleted=message.deleted,
        edited=message.edited,
        model_name=message.model_name,
        message_tree_id=message.message_tree_id,
        ranking_count=message.ranking_count,
        rank=message.rank,
        user=user,
    )


async def conversation(
    session: AsyncSession, messages: list[Message], viewer_id: uuid.UUID | None
) -> wire.Conversation:
    """A conversation of `messages` (root first) with the viewer's own emojis filled in."""
    emojis = await repository.user_emojis(session, (m.id for m in messages), viewer_id)
    return wire.Conversation(
        messages=[
            to_conversation_message(m, viewer_id=viewer_id, user_emojis=emojis.get(m.id)) for m in messages
        ]
    )
