"""Queries of the web UI's own: the built-in API client it acts as, the accounts that sign in through OAuth,
the messages of the moderation queue and the counts of the status page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.dml import insert_ignore
from oasst.db.models import ApiClient, Message, MessageTreeState, OAuthAccount


async def client_by_frontend_type(session: AsyncSession, frontend_type: str) -> ApiClient | None:
    return await session.scalar(
        select(ApiClient).where(ApiClient.frontend_type == frontend_type).order_by(ApiClient.id).limit(1)
    )


async def add_client_once(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert a client unless one with the same key hash exists (a process that started at the same time)."""
    await insert_ignore(session, ApiClient, values, ["api_key_hash"])


async def oauth_account(session: AsyncSession, provider: str, account_id: str) -> OAuthAccount | None:
    return await session.scalar(
        select(OAuthAccount).where(OAuthAccount.provider == provider, OAuthAccount.account_id == account_id)
    )


async def oauth_account_by_id(session: AsyncSession, row_id: uuid.UUID) -> OAuthAccount | None:
    return await session.get(OAuthAccount, row_id)


async def add_oauth_account_once(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert the account unless it is there (a sign-in of the same person in another browser meanwhile)."""
    await insert_ignore(session, OAuthAccount, values, ["provider", "account_id"])


async def oauth_accounts(session: AsyncSession, search: str, limit: int) -> Sequence[OAuthAccount]:
    """Accounts whose name contains `search` or whose id is `search` (all if empty): admins first, then
    moderators, then the latest sign-ins."""
    query = select(OAuthAccount)
    if search:
        named = OAuthAccount.display_name.icontains(search, autoescape=True)
        query = query.where(or_(named, OAuthAccount.account_id == search))
    staff_first = case({"admin": 0, "moderator": 1}, value=OAuthAccount.role, else_=2)
    query = query.order_by(staff_first, OAuthAccount.signed_in_at.desc(), OAuthAccount.id).limit(limit)
    return (await session.scalars(query)).all()


async def delete_oauth_account(session: AsyncSession, provider: str, account_id: str) -> None:
    await session.execute(
        delete(OAuthAccount).where(OAuthAccount.provider == provider, OAuthAccount.account_id == account_id)
    )


async def messages_by_id(session: AsyncSession, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Message]:
    """The messages of `message_ids` in one query (the moderation queue shows up to 100)."""
    if not message_ids:
        return {}
    rows = await session.scalars(select(Message).where(Message.id.in_(message_ids)))
    return {row.id: row for row in rows}


async def trees_by_state_and_lang(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(state, language, count) of the message trees, in the tree's language (the one the tree manager hands
    out its work in): the state index alone answers, where the root messages' language takes a join."""
    rows = await session.execute(
        select(MessageTreeState.state, MessageTreeState.lang, func.count()).group_by(
            MessageTreeState.state, MessageTreeState.lang
        )
    )
    return [(state, lang, int(count)) for state, lang, count in rows]


async def message_counts(session: AsyncSession) -> tuple[int, int]:
    """(live, deleted) messages: all of them counted over the smallest index, the deleted few over their
    partial index (a pass over the table itself took most of the status page's time)."""
    total = await session.scalar(select(func.count()).select_from(Message))
    deleted = await session.scalar(select(func.count()).select_from(Message).where(Message.deleted))
    return int(total or 0) - int(deleted or 0), int(deleted or 0)
