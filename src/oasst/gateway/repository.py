"""Queries on the gateway's tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import GatewayAccount, GatewayCharge, GatewayChat, GatewayMessage, GatewayUser


async def active_account_by_key_hash(session: AsyncSession, key_hash: str) -> GatewayAccount | None:
    return await session.scalar(
        select(GatewayAccount).where(GatewayAccount.api_key_hash == key_hash, GatewayAccount.active)
    )


async def account(session: AsyncSession, account_id: int, *, active_only: bool) -> GatewayAccount | None:
    query = select(GatewayAccount).where(GatewayAccount.id == account_id)
    if active_only:
        query = query.where(GatewayAccount.active)
    return await session.scalar(query)


async def account_by_name(session: AsyncSession, name: str) -> GatewayAccount | None:
    return await session.scalar(select(GatewayAccount).where(GatewayAccount.name == name))


async def accounts(
    session: AsyncSession, active: bool, usage_above: int | None, name: str | None
) -> Sequence[GatewayAccount]:
    query = select(GatewayAccount).where(GatewayAccount.active == active).order_by(GatewayAccount.name)
    if name is not None:
        query = query.where(GatewayAccount.name.icontains(name, autoescape=True))
    if usage_above is not None:
        query = query.where(GatewayAccount.usage > usage_above)
    return (await session.scalars(query)).all()


async def accounts_by_id(session: AsyncSession, ids: set[int]) -> dict[int, GatewayAccount]:
    if not ids:
        return {}
    rows = await session.scalars(select(GatewayAccount).where(GatewayAccount.id.in_(ids)))
    return {row.id: row for row in rows}


async def users_of(session: AsyncSession, account_ids: Sequence[int]) -> Sequence[GatewayUser]:
    if not account_ids:
        return []
    query = select(GatewayUser).where(GatewayUser.account_id.in_(account_ids)).order_by(GatewayUser.id)
    return (await session.scalars(query)).all()


async def users_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, GatewayUser]:
    if not ids:
        return {}
    rows = await session.scalars(select(GatewayUser).where(GatewayUser.id.in_(ids)))
    return {row.id: row for row in rows}


async def users(session: AsyncSession) -> Sequence[GatewayUser]:
    return (await session.scalars(select(GatewayUser).order_by(GatewayUser.code))).all()


async def user_by_code(session: AsyncSession, code: str) -> GatewayUser | None:
    return await session.scalar(select(GatewayUser).where(GatewayUser.code == code))


async def chats(session: AsyncSession, account_id: int, name: str | None) -> Sequence[GatewayChat]:
    query = select(GatewayChat).where(GatewayChat.account_id == account_id).order_by(GatewayChat.id)
    if name is not None:
        query = query.where(GatewayChat.name.icontains(name, autoescape=True))
    return (await session.scalars(query)).all()


async def chat(session: AsyncSession, chat_id: int) -> GatewayChat | None:
    return await session.get(GatewayChat, chat_id)


async def chat_with_messages(
    session: AsyncSession, chat_id: int
) -> tuple[GatewayChat | None, list[GatewayMessage]]:
    """A chat and its messages in order, in one query."""
    query = (
        select(GatewayChat, GatewayMessage)
        .outerjoin(GatewayMessage, GatewayMessage.chat_id == GatewayChat.id)
        .where(GatewayChat.id == chat_id)
        .order_by(GatewayMessage.id)
    )
    rows = (await session.execute(query)).all()
    if not rows:
        return None, []
    return rows[0][0], [message for _chat, message in rows if message is not None]


async def count_chats(session: AsyncSession, account_id: int) -> int:
    query = select(func.count(GatewayChat.id)).where(GatewayChat.account_id == account_id)
    return int(await session.scalar(query) or 0)


async def count_messages(session: AsyncSession, chat_id: int) -> int:
    query = select(func.count(GatewayMessage.id)).where(GatewayMessage.chat_id == chat_id)
    return int(await session.scalar(query) or 0)


async def usage_by_day(
    session: AsyncSession, since: date | None, until: date | None, account_name: str | None
) -> Sequence[tuple[int, str, str, date, int, int, int, int]]:
    """Settled charges summed per account and UTC day, ordered by day then account name."""
    charge, account = GatewayCharge, GatewayAccount
    query = (
        select(
            account.id,
            account.name,
            account.course,
            charge.day,
            func.count(charge.id),
            func.sum(charge.prompt_tokens),
            func.sum(charge.completion_tokens),
            func.sum(charge.charged_tokens),
        )
        .join(account, account.id == charge.account_id)
        .where(charge.state == "settled")
        .group_by(account.id, account.name, account.course, charge.day)
        .order_by(charge.day, account.name)
    )
    if since is not None:
        query = query.where(charge.day >= since)
    if until is not None:
        query = query.where(charge.day <= until)
    if account_name is not None:
        query = query.where(account.name == account_name)
    rows = await session.execute(query)
    return [tuple(row) for row in rows.all()]  # type: ignore[misc]
