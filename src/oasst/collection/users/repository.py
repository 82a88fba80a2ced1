"""Queries on user rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.users.schemas import UserFilter, UserKeyset
from oasst.db.models import User

SORT_KEYS = ("username", "display_name")


# Built once: every task request and interaction looks its user up this way.
_BY_IDENTITY = select(User).where(
    User.api_client_id == bindparam("client_id"),
    User.auth_method == bindparam("auth_method"),
    User.username == bindparam("username"),
)


# The id of that user, as a subquery for statements on other tables.
ID_BY_IDENTITY = (
    select(User.id)
    .where(
        User.api_client_id == bindparam("client_id"),
        User.auth_method == bindparam("auth_method"),
        User.username == bindparam("username"),
    )
    .scalar_subquery()
)


async def by_identity(
    session: AsyncSession, api_client_id: uuid.UUID, auth_method: str, username: str
) -> User | None:
    params = {"client_id": api_client_id, "auth_method": auth_method, "username": username}
    return await session.scalar(_BY_IDENTITY, params)


async def by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def listing(
    session: AsyncSession, sort_key: str, where: UserFilter, keyset: UserKeyset, *, desc: bool, limit: int
) -> list[User]:
    """Users matching `where` within `keyset`, ordered by (sort_key, id)."""
    key = getattr(User, sort_key)
    query = select(User)
    if where.api_client_id is not None:
        query = query.where(User.api_client_id == where.api_client_id)
    if where.auth_method:
        query = query.where(User.auth_method == where.auth_method)
    if where.search_text:
        # ILIKE on PostgreSQL, lower() LIKE lower() on SQLite: the same answers on both engines.
        query = query.where(key.ilike(f"%{_escape_like(where.search_text)}%", escape="\\"))
    if keyset.gte_key is not None:
        if keyset.gt_id is not None:
            query = query.where(
                or_(key > keyset.gte_key, and_(key == keyset.gte_key, User.id > keyset.gt_id))
            )
        else:
            query = query.where(key >= keyset.gte_key)
    if keyset.lte_key is not None:
        if keyset.lt_id is not None:
            query = query.where(
                or_(key < keyset.lte_key, and_(key == keyset.lte_key, User.id < keyset.lt_id))
            )
        else:
            query = query.where(key <= keyset.lte_key)
    order = (key.desc(), User.id.desc()) if desc else (key, User.id)
    return list(await session.scalars(query.order_by(*order).limit(limit)))


async def update_returning(session: AsyncSession, user_id: uuid.UUID, values: dict[str, Any]) -> User:
    """Set some columns of a user in one statement; the row as it is now."""
    stmt = (
        update(User)
        .where(User.id == user_id)
        .values(values)
        .returning(User)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    return (await session.scalars(stmt)).one()


async def reset_streaks(session: AsyncSession, inactive_since: datetime) -> int:
    """End the streak of every user not active since `inactive_since`; returns how many were reset."""
    result = await session.execute(
        update(User)
        .where(User.last_activity_date < inactive_since, User.streak_last_day_date.is_not(None))
        .values(streak_days=0, streak_last_day_date=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
