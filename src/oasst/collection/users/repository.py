"""Queries on user rows."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import User


async def by_identity(
    session: AsyncSession, api_client_id: uuid.UUID, auth_method: str, username: str
) -> User | None:
    return await session.scalar(
        select(User).where(
            User.api_client_id == api_client_id, User.auth_method == auth_method, User.username == username
        )
    )


async def by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)
