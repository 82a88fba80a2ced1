"""Moderation and administration: soft deletes, purges, flagged messages, merges, settings."""

from __future__ import annotations

import hmac
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.admin import repository
from oasst.collection.admin.schemas import (
    CreateApiClientRequest,
    FlaggedMessagePage,
    FlaggedMessageResponse,
    PublicSettings,
    PurgeResultModel,
)
from oasst.collection.auth import service as auth_service
from oasst.collection.messages import repository as messages_repository
from oasst.collection.messages.schemas import THUMBS, Keyset, as_utc, cursor, page_cut, page_query
from oasst.collection.stats import service as stats_service
from oasst.collection.trees import repository as trees_repository
from oasst.collection.trees import service as trees
from oasst.collection.users import repository as users_repository
from oasst.config import Settings, TreeManagerConfig
from oasst.db.models import ApiClient, FlaggedMessage, MessageTreeState, User
from oasst.errors import OasstError
from oasst.protocol.collection import ErrorCode, TreeState

REDACTED = "**********"
_SECRET_WORDS = ("key", "token", "secret", "password")
# Trees whose progress a purge can undo: they go back to growing and move on from there (§4.2 resume).
# Trees a moderator halted, the review aborted, or that wait in the lottery or the backlog keep their state.
_PROGRESS_STATES = frozenset(
    {
        TreeState.growing,
        TreeState.ranking,
        TreeState.ready_for_scoring,
        TreeState.ready_for_export,
        TreeState.scoring_failed,
    }
)


def _user_not_found() -> OasstError:
    return OasstError("User not found", ErrorCode.USER_NOT_FOUND, 404)


async def _reopen_after_purge(
    session: AsyncSession, tree: MessageTreeState, config: TreeManagerConfig, rng: random.Random
) -> None:
    if tree.state not in _PROGRESS_STATES:
        return
    # Imported trees never won the lottery, yet they passed review: they grow (to their goal) like winners.
    await trees.enter_state(session, tree, TreeState.growing, config, rng)
    await trees.check_growing(session, tree, config, rng)


# --- soft delete ------------------------------------------------------------------------------------------


async def soft_delete(
    session: AsyncSession,
    by_tree: dict[uuid.UUID, list[uuid.UUID]],
    config: TreeManagerConfig,
    rng: random.Random,
) -> None:
    """Mark messages (grouped by tree) and all their descendants deleted, then settle their trees."""
    for tree_id in sorted(by_tree, key=str):
        nodes = await repository.tree_nodes(session, tree_id)
        await repository.set_deleted(session, repository.subtree_ids(nodes, by_tree[tree_id]), True)
        await trees.settle_tree(session, tree_id, config, rng)


async def undelete(
    session: AsyncSession,
    message_id: uuid.UUID,
    tree_id: uuid.UUID,
    config: TreeManagerConfig,
    rng: random.Random,
) -> None:
    """Clear the deleted flag of a message and all its ancestors (its descendants stay as they are)."""
    parents = {node.id: node.parent_id for node in await repository.tree_nodes(session, tree_id)}
    chain: list[uuid.UUID] = []
    current: uuid.UUID | None = message_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    await repository.set_deleted(session, chain, False)
    await trees.settle_tree(session, tree_id, config, rng)


async def _soft_delete_user_messages(
    session: AsyncSession, settings: Settings, rng: random.Random, user: User, api_client_id: uuid.UUID | None
) -> None:
    by_tree: dict[uuid.UUID, list[uuid.UUID]] = {}
    for node in await repository.user_messages(session, user.id, api_client_id=api_client_id):
        by_tree.setdefault(node.tree_id, []).append(node.id)
    await soft_delete(session, by_tree, settings.tree_manager, rng)


async def delete_user_messages(
    session: AsyncSession, settings: Settings, rng: random.Random, user_id: uuid.UUID
) -> None:
    """DELETE /users/{id}/messages: soft-delete every message of the user, recursively."""
    await _soft_delete_user_messages(session, settings, rng, await user_by_id(session, user_id), None)


async def delete_frontend_user_messages(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    rng: random.Random,
    auth_method: str,
    username: str,
) -> None:
    """DELETE /frontend_users/{auth_method}/{username}/messages: the same for the calling client's user."""
    user = await users_repository.by_identity(session, client.id, auth_method, username)
    if user is None:
        raise _user_not_found()
    await _soft_delete_user_messages(session, settings, rng, user, client.id)


async def user_by_id(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await users_repository.by_id(session, user_id)
    if user is None:
        raise _user_not_found()
    return user


# --- purge ------------------------------------------------------------------------------------------------


@asynccontextmanager
async def _savepoint(session: AsyncSession, *, keep: bool) -> AsyncIterator[None]:
    """Run a block in a SAVEPOINT, released if `keep` else rolled back; the request's transaction goes on."""
    async with session.begin_nested() as savepoint:
        yield
        if not keep:
            await savepoint.rollback()


async def _purge_messages(
    session: AsyncSession,
    config: TreeManagerConfig,
    rng: random.Random,
    user_id: uuid.UUID,
    *,
    purge_initial_prompts: bool,
    min_date: datetime | None = None,
    max_date: datetime | None = None,
    user_rows: bool = False,
) -> None:
    """Hard-delete a user's trees (if asked) and replies with everything below them; repair what is left.

    With `user_rows`, the user's own labels, rankings and emojis on other people's messages go too, and
    the counters those fed (review_count, ranking_count, emoji counts) are taken back before trees move.
    """
    mine = await repository.user_messages(session, user_id, min_date=min_date, max_date=max_date)
    roots = sorted({m.tree_id for m in mine if m.parent_id is None}, key=str) if purge_initial_prompts else []
    for tree_id in roots:
        await trees_repository.lock_tree(session, tree_id)
    await repository.purge_trees(session, roots)
    if user_rows:
        await _take_back_user_work(session, user_id)

    gone = set(roots)
    replies: dict[uuid.UUID, list[uuid.UUID]] = {}
    for m in mine:
        if m.parent_id is not None and m.tree_id not in gone:
            replies.setdefault(m.tree_id, []).append(m.id)
    for tree_id in sorted(replies, key=str):
        tree = await trees_repository.lock_tree(session, tree_id)
        nodes = await repository.tree_nodes(session, tree_id)
        doomed = repository.subtree_ids(nodes, replies[tree_id])
        parents = {n.parent_id for n in nodes if n.id in doomed and n.parent_id is not None} - doomed
        await _drop_stale_rankings(session, parents, doomed)
        await repository.purge_messages(session, sorted(doomed, key=str))
        await repository.recount_children(session, parents)
        if tree is not None:
            await _reopen_after_purge(session, tree, config, rng)


async def _drop_stale_rankings(
    session: AsyncSession, parents: set[uuid.UUID], doomed: set[uuid.UUID]
) -> None:
    """Rankings that ordered a purged reply no longer describe the replies left: drop them and their ranks."""
    stale = [r for r in await repository.rankings(session, parent_ids=parents) if doomed & set(r.ranked_ids)]
    if not stale:
        return
    await repository.delete_reactions(session, [(r.task_id, r.user_id) for r in stale])
    counts = Counter(i for r in stale for i in r.ranked_ids if i not in doomed)
    await repository.subtract(session, "ranking_count", counts)
    await repository.reset_ranks(session, {r.parent_id for r in stale if r.parent_id is not None})


async def _take_back_user_work(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Remove a user's reviews, rankings and emojis, and take back the counters they fed."""
    await repository.subtract(
        session, "review_count", await repository.review_label_targets(session, user_id)
    )
    ranked = await repository.rankings(session, user_id=user_id)
    await repository.subtract(session, "ranking_count", Counter(i for r in ranked for i in r.ranked_ids))
    await repository.delete_reactions(session, [(r.task_id, r.user_id) for r in ranked])
    emojis = await repository.user_emojis(session, user_id)
    await _uncount_emojis(session, emojis)
    await repository.delete_emojis(session, user_id, emojis)
    await repository.delete_labels(session, user_id)


async def _uncount_emojis(session: AsyncSession, emojis: list[tuple[uuid.UUID, str]]) -> None:
    """Take reactions off the emoji counts of their messages (the rows are removed by the caller)."""
    by_message: dict[uuid.UUID, list[str]] = {}
    for message_id, emoji in emojis:
        by_message.setdefault(message_id, []).append(emoji)
    for message_id in sorted(by_message, key=str):
        counts = await messages_repository.lock_emojis(session, message_id)
        for emoji in by_message[message_id]:
            value = int(counts.get(emoji, 0)) - 1
            if value > 0:
                counts[emoji] = value
            else:
                counts.pop(emoji, None)
        await messages_repository.set_emojis(session, message_id, counts)


async def _measured(
    session: AsyncSession, user_id: uuid.UUID, purge: Callable[[], Awaitable[None]], *, preview: bool
) -> PurgeResultModel:
    """Run `purge` on an existing user's work and report the stats around it; `preview` rolls it back."""
    await user_by_id(session, user_id)
    started = time.perf_counter()
    before = await stats_service.system_stats(session)
    async with _savepoint(session, keep=not preview):
        await purge()
        await session.flush()
        after = await stats_service.system_stats(session)
    return PurgeResultModel(
        before=before, after=after, preview=preview, duration=time.perf_counter() - started
    )


async def purge_user(
    session: AsyncSession,
    settings: Settings,
    rng: random.Random,
    user_id: uuid.UUID,
    *,
    preview: bool,
    ban: bool,
) -> PurgeResultModel:
    """POST /admin/purge_user/{id}: remove all of a user's work; `preview` reports and then rolls back."""

    async def purge() -> None:
        await _purge_messages(
            session, settings.tree_manager, rng, user_id, purge_initial_prompts=True, user_rows=True
        )
        await repository.delete_user_rows(session, user_id)
        if ban:
            await repository.ban(session, user_id)

    return await _measured(session, user_id, purge, preview=preview)


async def purge_user_messages(
    session: AsyncSession,
    settings: Settings,
    rng: random.Random,
    user_id: uuid.UUID,
    *,
    purge_initial_prompts: bool,
    min_date: datetime | None,
    max_date: datetime | None,
    preview: bool,
) -> PurgeResultModel:
    """POST /admin/purge_user/{id}/messages: remove a user's messages (created within the dates)."""

    async def purge() -> None:
        await _purge_messages(
            session,
            settings.tree_manager,
            rng,
            user_id,
            purge_initial_prompts=purge_initial_prompts,
            min_date=as_utc(min_date),
            max_date=as_utc(max_date),
        )

    return await _measured(session, user_id, purge, preview=preview)


# --- flagged messages -------------------------------------------------------------------------------------


def _flag_view(row: FlaggedMessage) -> FlaggedMessageResponse:
    return FlaggedMessageResponse(
        message_id=row.message_id, processed=row.processed, created_date=row.created_date
    )


async def flagged_messages(session: AsyncSession, max_count: int) -> list[FlaggedMessageResponse]:
    """The newest flags first."""
    rows = await repository.flagged_listing(session, Keyset(), desc=True, limit=max_count)
    return [_flag_view(row) for row in rows]


async def flagged_page(
    session: AsyncSession, *, before: str | None, after: str | None, max_count: int, desc: bool
) -> FlaggedMessagePage:
    """Cursor paging over flags by (created_date, message_id), with the rules of the message cursor (§3.6)."""
    before, after = before or None, after or None
    query = page_query(before, after, max_count=max_count, desc=desc)
    rows = await repository.flagged_listing(session, query.keyset, desc=query.desc, limit=query.limit)
    items, prev, next_ = page_cut(
        rows,
        query,
        lambda row: cursor(row.message_id, row.created_date),
        before=before,
        after=after,
        max_count=max_count,
        desc=desc,
    )
    return FlaggedMessagePage(
        prev=prev,
        next=next_,
        sort_key="created_date",
        order="desc" if desc else "asc",
        items=[_flag_view(row) for row in items],
    )


async def process_flagged(session: AsyncSession, message_id: uuid.UUID) -> FlaggedMessageResponse:
    row = await repository.flagged(session, message_id)
    if row is None:
        raise OasstError("Message not found", ErrorCode.MESSAGE_NOT_FOUND, 404)
    row.processed = True
    await session.flush()
    return _flag_view(row)


# --- merging users ----------------------------------------------------------------------------------------


async def merge_users(session: AsyncSession, destination_id: uuid.UUID, source_ids: list[uuid.UUID]) -> None:
    """Move every row of the source users to the destination user, then remove the sources (§5.5).

    An emoji both users put on the same message (or a +1 against the other's -1) is kept once, the
    destination's, and the message's counts drop accordingly: upstream fails on such a pair.
    """
    sources = sorted({s for s in source_ids if s != destination_id}, key=str)
    await user_by_id(session, destination_id)
    if not sources:
        return
    rows = await repository.emojis_of(session, [destination_id, *sources])
    kept = {(message_id, emoji) for message_id, user_id, emoji in rows if user_id == destination_id}
    for message_id, user_id, emoji in sorted(rows, key=lambda r: (str(r[0]), str(r[1]), r[2])):
        if user_id == destination_id:
            continue
        if (message_id, emoji) in kept or (message_id, THUMBS.get(emoji, "")) in kept:
            await _uncount_emojis(session, [(message_id, emoji)])
            await repository.delete_emojis(session, user_id, [(message_id, emoji)])
        else:
            await repository.move_emoji(session, message_id, emoji, user_id, destination_id)
            kept.add((message_id, emoji))
    await repository.reassign(session, sources, destination_id)
    await repository.delete_users(session, sources)
    await session.flush()


# --- API clients and settings -----------------------------------------------------------------------------


def check_root_token(settings: Settings, token: str | None) -> None:
    """The bearer token must be one of the configured root tokens (none are configured by default)."""
    valid = token is not None and any(
        hmac.compare_digest(token.encode(), configured.encode())
        for configured in settings.root_tokens
        if configured
    )
    if not valid:
        raise OasstError("Not authorized", ErrorCode.ROOT_TOKEN_NOT_AUTHORIZED, 403)


async def create_api_client(
    session: AsyncSession, settings: Settings, token: str | None, request: CreateApiClientRequest
) -> str:
    """POST /admin/api_client: a new client; its key is returned this once and stored hashed."""
    check_root_token(settings, token)
    new = await auth_service.create_client(
        session,
        request.description,
        trusted=request.trusted,
        frontend_type=request.frontend_type,
        admin_email=request.admin_email,
    )
    return new.api_key


def _hide_url_password(url: str) -> str:
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return REDACTED
    if not has_password:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{hostport}"))


def _redact(name: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _redact(key, item) for key, item in value.items()}
    if value in (None, "", []):
        return value
    if any(word in name.lower() for word in _SECRET_WORDS):
        return [REDACTED for _ in value] if isinstance(value, list) else REDACTED
    if name.lower().endswith("_url") and isinstance(value, str):
        return _hide_url_password(value)
    return value


def full_settings(settings: Settings) -> dict[str, Any]:
    """Every setting, with keys, tokens, secrets and passwords in URLs replaced by a mask."""
    return {name: _redact(name, value) for name, value in settings.model_dump(mode="json").items()}


def public_settings(settings: Settings) -> PublicSettings:
    """Upstream's public subset, mapped from our settings (we compute no embeddings or toxicity)."""
    return PublicSettings(
        PROJECT_NAME="oasst",
        API_V1_STR="/api/v1",
        MESSAGE_SIZE_LIMIT=settings.message_size_limit,
        DEBUG_USE_SEED_DATA=False,
        DEBUG_ALLOW_SELF_LABELING=settings.debug_allow_self_labeling,
        DEBUG_SKIP_EMBEDDING_COMPUTATION=True,
        DEBUG_SKIP_TOXICITY_CALCULATION=True,
        DEBUG_DATABASE_ECHO=False,
        USER_STATS_INTERVAL_DAY=settings.user_stats_interval_day,
        USER_STATS_INTERVAL_WEEK=settings.user_stats_interval_week,
        USER_STATS_INTERVAL_MONTH=settings.user_stats_interval_month,
        USER_STATS_INTERVAL_TOTAL=settings.user_stats_interval_total,
    )
