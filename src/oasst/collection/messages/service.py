"""Messages: wire views, threads and trees, listings, emojis, and moderation (delete, edit, halt)."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from oasst.collection.admin import service as admin_service
from oasst.collection.messages import repository
from oasst.collection.messages.schemas import (
    THUMBS,
    Keyset,
    MessageEditRequest,
    MessageFilter,
    MessageListingParams,
    MessagePageParams,
    MessageRevision,
    as_utc,
    cursor,
    page_cut,
    page_query,
)
from oasst.collection.trees import repository as trees_repository
from oasst.collection.trees import service as trees
from oasst.collection.trees.repository import TreeMessage
from oasst.collection.users import service as users_service
from oasst.config import Settings
from oasst.db.base import utcnow
from oasst.db.models import ApiClient, Message, MessageTreeState, User
from oasst.errors import OasstError, forbidden
from oasst.protocol import collection as wire
from oasst.protocol.collection import EmojiCode, EmojiOp, ErrorCode, TreeState


def to_conversation_message(
    message: Message | TreeMessage, *, viewer_id: uuid.UUID | None, user_emojis: list[str] | None = None
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


async def conversations(
    session: AsyncSession, viewer_id: uuid.UUID | None, *groups: list[Message]
) -> list[wire.Conversation]:
    """A conversation for each group of messages (root first), with the viewer's own emojis: one query."""
    emojis = await repository.user_emojis(session, (m.id for group in groups for m in group), viewer_id)
    return [conversation(group, viewer_id, emojis) for group in groups]


def conversation(
    messages: Sequence[Message | TreeMessage],
    viewer_id: uuid.UUID | None,
    user_emojis: Mapping[uuid.UUID, list[str]],
) -> wire.Conversation:
    """The messages (root first) as `viewer_id` sees them, given the viewer's emojis on each."""
    return wire.Conversation(
        messages=[
            to_conversation_message(m, viewer_id=viewer_id, user_emojis=user_emojis.get(m.id))
            for m in messages
        ]
    )


async def views(
    session: AsyncSession, messages: list[Message], viewer: User | None, *, include_user: bool = False
) -> list[wire.Message]:
    """`Message` objects for `messages` as `viewer` sees them, with their authors if asked."""
    viewer_id = viewer.id if viewer else None
    emojis = await repository.user_emojis(session, (m.id for m in messages), viewer_id)
    authors: dict[uuid.UUID, User] = {}
    if include_user:
        authors = await repository.users_by_id(session, (m.user_id for m in messages if m.user_id))
    result = []
    for message in messages:
        author = authors.get(message.user_id) if message.user_id else None
        result.append(
            to_wire(
                message,
                viewer_id=viewer_id,
                user_emojis=emojis.get(message.id),
                user=users_service.to_wire(author) if author else None,
            )
        )
    return result


async def view(session: AsyncSession, message: Message, viewer: User | None) -> wire.Message:
    return (await views(session, [message], viewer))[0]


def _not_found() -> OasstError:
    return OasstError("Message not found", ErrorCode.MESSAGE_NOT_FOUND, 404)


async def get(session: AsyncSession, message_id: uuid.UUID) -> Message:
    """The message with this backend id, from any API client (404/2001 if there is none)."""
    message = await repository.get(session, message_id)
    if message is None:
        raise _not_found()
    return message


async def by_frontend_id(session: AsyncSession, client: ApiClient, frontend_id: str) -> Message:
    """The calling client's message with this frontend id (400/2000 if the id is empty, 404/2001 if none)."""
    if not frontend_id or len(frontend_id) > 200:
        raise OasstError("Invalid frontend message id", ErrorCode.INVALID_FRONTEND_MESSAGE_ID)
    message = await repository.by_frontend_id(session, client.id, frontend_id)
    if message is None:
        raise OasstError(
            f"Message with frontend_message_id {frontend_id} not found.", ErrorCode.MESSAGE_NOT_FOUND, 404
        )
    return message


# --- listings ------------------------------------------------------------------------------------------


def _scoped(client: ApiClient, where: MessageFilter) -> MessageFilter:
    """Untrusted clients list only their own client's messages; naming another client is 403/2."""
    if (where.auth_method is None) != (where.username is None):
        raise OasstError("Auth method or username missing.", ErrorCode.AUTH_AND_USERNAME_REQUIRED)
    if client.trusted:
        return where
    if where.api_client_id is not None and where.api_client_id != client.id:
        raise forbidden()
    return MessageFilter(**{**where.__dict__, "api_client_id": client.id})


async def listing(
    session: AsyncSession,
    client: ApiClient,
    viewer: User | None,
    where: MessageFilter,
    params: MessageListingParams,
) -> list[wire.Message]:
    """Up to `max_count` messages created in [start_date, end_date]."""
    keyset = Keyset(gte_date=as_utc(params.start_date), lte_date=as_utc(params.end_date))
    rows = await repository.listing(
        session, _scoped(client, where), keyset, desc=params.desc, limit=params.max_count
    )
    return await views(session, rows, viewer)


def cursor_of(message: Message) -> str:
    return cursor(message.id, message.created_date)


async def page(
    session: AsyncSession,
    client: ApiClient,
    viewer: User | None,
    where: MessageFilter,
    params: MessagePageParams,
    *,
    include_user: bool = False,
) -> wire.MessagePage:
    """One keyset page of messages ordered by (created_date, id), with the cursors of its neighbours."""
    before, after = params.before or None, params.after or None
    max_count, desc = params.max_count, params.desc
    query = page_query(before, after, max_count=max_count, desc=desc)
    rows = await repository.listing(
        session, _scoped(client, where), query.keyset, desc=query.desc, limit=query.limit
    )
    items, prev, next_ = page_cut(
        rows, query, cursor_of, before=before, after=after, max_count=max_count, desc=desc
    )
    return wire.MessagePage(
        prev=prev,
        next=next_,
        sort_key="created_date",
        order="desc" if desc else "asc",
        items=await views(session, items, viewer, include_user=include_user),
    )


# --- threads and trees ---------------------------------------------------------------------------------


def _trace(accepted: dict[uuid.UUID, Message], last: Message) -> list[Message]:
    chain = [last]
    while chain[-1].parent_id is not None:
        parent = accepted.get(chain[-1].parent_id)
        if parent is None:
            # Upstream answers 500; an ancestor that was rejected or deleted is a state of the data, not a
            # server fault, so the client gets a 409 with the same code.
            raise OasstError("Broken conversation", ErrorCode.BROKEN_CONVERSATION, 409)
        chain.append(parent)
    chain.reverse()
    return chain


async def _accepted(session: AsyncSession, message_tree_id: uuid.UUID) -> list[Message]:
    return await repository.tree(session, message_tree_id, review_result=True, deleted=False)


async def accepted_conversation(
    session: AsyncSession, message: Message, viewer: User | None
) -> wire.Conversation:
    """The thread from the root to `message` through accepted, live ancestors (409/2009 if one is missing)."""
    accepted = {m.id: m for m in await _accepted(session, message.message_tree_id)}
    (found,) = await conversations(session, viewer.id if viewer else None, _trace(accepted, message))
    return found


async def tree_view(
    session: AsyncSession, message: Message, viewer: User | None, *, include_spam: bool, include_deleted: bool
) -> wire.MessageTree:
    """Every message of `message`'s tree (spam: review_result not true)."""
    rows = await repository.tree(
        session,
        message.message_tree_id,
        review_result=None if include_spam else True,
        deleted=None if include_deleted else False,
    )
    return wire.MessageTree(id=message.message_tree_id, messages=await views(session, rows, viewer))


def _state_view(state: MessageTreeState) -> wire.MessageTreeStateResponse:
    return wire.MessageTreeStateResponse.model_validate(state, from_attributes=True)


def _no_tree_state() -> OasstError:
    return OasstError("Message tree state not found", ErrorCode.MESSAGE_NOT_FOUND, 404)


async def tree_state(session: AsyncSession, message: Message) -> wire.MessageTreeStateResponse:
    state = await repository.tree_state(session, message.message_tree_id)
    if state is None:
        raise _no_tree_state()
    return _state_view(state)


async def children(session: AsyncSession, message: Message, viewer: User | None) -> list[wire.Message]:
    return await views(session, await repository.children(session, message.id), viewer)


async def descendants(session: AsyncSession, message: Message, viewer: User | None) -> wire.MessageTree:
    """The subtree under `message` (itself left out), depth first, unfiltered."""
    by_parent: dict[uuid.UUID | None, list[Message]] = {}
    for row in await repository.below(session, message):
        by_parent.setdefault(row.parent_id, []).append(row)
    ordered: list[Message] = []
    stack = list(reversed(by_parent.get(message.id, [])))
    while stack:
        node = stack.pop()
        ordered.append(node)
        stack.extend(reversed(by_parent.get(node.id, [])))
    return wire.MessageTree(id=message.id, messages=await views(session, ordered, viewer))


async def longest_conversation(
    session: AsyncSession, message: Message, viewer: User | None
) -> wire.Conversation:
    """The thread to the deepest accepted, live message of the tree (the earliest among equals)."""
    accepted = await _accepted(session, message.message_tree_id)
    if not accepted:
        # A tree whose root is still under review has no accepted thread yet (upstream: 500).
        return wire.Conversation(messages=[])
    deepest = max(accepted, key=lambda m: m.depth)
    chain = _trace({m.id: m for m in accepted}, deepest)
    (found,) = await conversations(session, viewer.id if viewer else None, chain)
    return found


async def max_children(session: AsyncSession, message: Message, viewer: User | None) -> wire.MessageTree:
    """The accepted message with the most children, followed by its accepted children."""
    accepted = await _accepted(session, message.message_tree_id)
    if not accepted:
        return wire.MessageTree(id=message.message_tree_id, messages=[])
    top = max(accepted, key=lambda m: m.children_count)
    rows = [top, *(m for m in accepted if m.parent_id == top.id)]
    return wire.MessageTree(id=top.id, messages=await views(session, rows, viewer))


# --- emojis --------------------------------------------------------------------------------------------


def _bump(counts: dict[str, int], emoji: str, delta: int) -> None:
    value = int(counts.get(emoji, 0)) + delta
    if value > 0:
        counts[emoji] = value
    else:
        counts.pop(emoji, None)


async def add_emoji(session: AsyncSession, message: Message, user: User, emoji: str, op: str = "add") -> None:
    """Toggle, add or remove `user`'s `emoji` on `message` (§4.9) and keep `message.emojis` in step.

    The caller checks that the user may act. Adding `+1` or `-1` first takes back the other one; either is
    ignored on the user's own message. `red_flag` also puts the message in the moderation queue.
    """
    try:
        operation, code = EmojiOp(op), EmojiCode(emoji).value
    except ValueError:
        raise OasstError("Emoji op not supported", ErrorCode.EMOJI_OP_UNSUPPORTED) from None
    # Pending ORM changes go out first: the counts are then rewritten by statement under the row lock.
    await session.flush()
    counts = await repository.lock_emojis(session, message.id)
    mine = await repository.emoji_codes(session, message.id, user.id)
    if operation is EmojiOp.toggle:
        operation = EmojiOp.remove if code in mine else EmojiOp.add
    changed = False
    if operation is EmojiOp.remove:
        if await repository.delete_emoji(session, message.id, user.id, code):
            _bump(counts, code, -1)
            changed = True
    elif code not in mine and not (code in THUMBS and message.user_id == user.id):
        other = THUMBS.get(code)
        if other in mine and await repository.delete_emoji(session, message.id, user.id, other):
            _bump(counts, other, -1)
        if code == EmojiCode.red_flag:
            await repository.flag(session, message.id)
        if await repository.insert_emoji(session, message.id, user.id, code):
            _bump(counts, code, 1)
        changed = True
    if changed:
        await repository.set_emojis(session, message.id, counts)
    set_committed_value(message, "emojis", counts)


async def react(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    message_id: uuid.UUID,
    request: wire.MessageEmojiRequest,
) -> wire.Message:
    """POST /messages/{id}/emoji: the body's user reacts; the message comes back as that user sees it."""
    user = await users_service.get_active(session, client, request.user, settings)
    message = await get(session, message_id)
    await add_emoji(session, message, user, request.emoji, request.op)
    return await view(session, message, user)


# --- moderation ----------------------------------------------------------------------------------------


async def set_tree_state(
    session: AsyncSession, settings: Settings, rng: random.Random, message_id: uuid.UUID, *, halt: bool
) -> wire.MessageTreeStateResponse:
    """PUT /messages/{id}/tree/state: halt the message's tree, or resume it by the rules of §4.2."""
    message = await get(session, message_id)
    tree = await trees_repository.lock_tree(session, message.message_tree_id)
    if tree is None:
        raise _no_tree_state()
    if halt:
        await trees.enter_state(session, tree, TreeState.halted_by_moderator, settings.tree_manager, rng)
    else:
        await trees.resume_tree(session, tree, settings.tree_manager, rng)
    return _state_view(tree)


async def delete(
    session: AsyncSession, settings: Settings, rng: random.Random, message_id: uuid.UUID
) -> None:
    """Soft-delete a message and all its descendants (404/2001 if there is no such message)."""
    message = await get(session, message_id)
    await admin_service.soft_delete(
        session, {message.message_tree_id: [message.id]}, settings.tree_manager, rng
    )


async def undelete(
    session: AsyncSession, settings: Settings, rng: random.Random, message_id: uuid.UUID
) -> None:
    """Clear the deleted flag of a message and its ancestors (404/2001 if there is no such message)."""
    message = await get(session, message_id)
    await admin_service.undelete(session, message.id, message.message_tree_id, settings.tree_manager, rng)


def _uuid7() -> uuid.UUID:
    """A time-ordered UUID (version 7), as upstream gives revisions."""
    millis = time.time_ns() // 1_000_000 & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = millis << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


async def edit(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    message_id: uuid.UUID,
    request: MessageEditRequest,
) -> None:
    """A moderator replaces a message's text; the first edit keeps the original as a revision (§4.10)."""
    message = await repository.lock(session, message_id)
    if message is None:
        raise _not_found()
    text = request.new_content
    if not text.strip():
        raise OasstError("Message text is empty", ErrorCode.TASK_MESSAGE_TEXT_EMPTY)
    if len(text) > settings.message_size_limit:
        raise OasstError(
            f"Message text exceeds the size limit of {settings.message_size_limit} characters",
            ErrorCode.TASK_MESSAGE_TOO_LONG,
        )
    editor = await users_service.get_or_create(session, client, request.user)
    if not message.edited:
        repository.add_revision(
            session, _uuid7(), message.id, message.text, message.user_id, message.created_date
        )
    repository.add_revision(session, _uuid7(), message.id, text, editor.id, utcnow())
    message.text = text
    message.edited = True
    await session.flush()


async def history(session: AsyncSession, message_id: uuid.UUID, viewer: User | None) -> list[MessageRevision]:
    """The revisions of a message, oldest first; `user_is_author` says whether the viewer wrote each."""
    await get(session, message_id)
    revisions = []
    for row in await repository.revisions(session, message_id):
        revision = MessageRevision.model_validate(row, from_attributes=True)
        revision.user_is_author = None if viewer is None else row.user_id == viewer.id
        revisions.append(revision)
    return revisions
