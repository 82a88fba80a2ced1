"""Queries on the gateway's tables."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, func, insert, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

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


class ChatView(NamedTuple):
    """What asking needs of a chat."""

    id: int
    account_id: int
    model_type: str
    model: str | None
    instruction_prefix: str
    user_prefix: str
    assistant_prefix: str


class MessageView(NamedTuple):
    id: int
    chat_id: int
    role: str
    content: str
    model_args: dict[str, Any]
    usage: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None


_CHAT = cast(Table, GatewayChat.__table__)
_MESSAGE = cast(Table, GatewayMessage.__table__)
# Core, not the ORM: reading a chat this way takes a third of the CPU, on the path of every ask.
_CHAT_WITH_MESSAGES = (
    select(
        *(_CHAT.c[name] for name in ChatView._fields),
        *(_MESSAGE.c[name].label(f"message_{name}") for name in MessageView._fields),
    )
    .outerjoin(_MESSAGE, _MESSAGE.c.chat_id == _CHAT.c.id)
    .where(_CHAT.c.id == bindparam("chat_id"))
    .order_by(_MESSAGE.c.id)
)


async def chat_with_messages(
    session: AsyncSession, chat_id: int
) -> tuple[ChatView | None, list[MessageView]]:
    """A chat and its messages in order, in one query."""
    rows = (await session.execute(_CHAT_WITH_MESSAGES, {"chat_id": chat_id})).all()
    if not rows:
        return None, []
    split = len(ChatView._fields)
    messages = [MessageView(*row[split:]) for row in rows if row.message_id is not None]
    return ChatView(*rows[0][:split]), messages


class Stored(NamedTuple):
    """What storing a turn and its reply tells: the reply's id, and its account's usage and budget after."""

    reply_id: int
    usage: int
    budget: int


_TURN_COLUMNS = ("role", "content", "model_args", "usage")


@functools.cache
def _store_turns(count: int) -> ReturningInsert[Any]:
    """The INSERT of `count` turns, built once per count: rows from a UNION ALL of parameters (SQLAlchemy
    compiles a multi-row VALUES anew every time)."""
    columns = ("chat_id", "created_at", *_TURN_COLUMNS)
    rows = [
        select(
            bindparam("chat_id", type_=_MESSAGE.c.chat_id.type),
            bindparam("at", type_=_MESSAGE.c.created_at.type),
            *(bindparam(f"{name}_{index}", type_=_MESSAGE.c[name].type) for name in _TURN_COLUMNS),
        )
        for index in range(count)
    ]
    account = select(GatewayAccount.usage).where(GatewayAccount.id == bindparam("account_id"))
    return (
        insert(_MESSAGE)
        .from_select(columns, union_all(*rows))
        .returning(
            _MESSAGE.c.id,
            _MESSAGE.c.role,
            account.scalar_subquery(),
            account.with_only_columns(GatewayAccount.budget).scalar_subquery(),
        )
    )


async def store_turns(
    session: AsyncSession, account_id: int, chat_id: int, turns: list[dict[str, Any]], at: datetime
) -> Stored:
    """Add `turns` (role, content, model_args, usage; the reply is the one assistant turn) to a chat with one
    INSERT, which also reads the account's usage and budget as they are (the reply's charge settled)."""
    params = {"account_id": account_id, "chat_id": chat_id, "at": at}
    for index, turn in enumerate(turns):
        params.update({f"{name}_{index}": turn[name] for name in _TURN_COLUMNS})
    rows = (await session.execute(_store_turns(len(turns)), params)).all()
    reply_id, _role, usage, budget = next(row for row in rows if row.role == "assistant")
    return Stored(reply_id, usage, budget)


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
