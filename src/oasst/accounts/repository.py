"""Queries on local_account rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import LocalAccount


async def by_id(session: AsyncSession, account_id: uuid.UUID) -> LocalAccount | None:
    return await session.get(LocalAccount, account_id)


async def by_username(session: AsyncSession, username: str) -> LocalAccount | None:
    """The account of an already lower-cased username."""
    return await session.scalar(select(LocalAccount).where(LocalAccount.username == username))


async def all_accounts(session: AsyncSession) -> Sequence[LocalAccount]:
    return (await session.scalars(select(LocalAccount).order_by(LocalAccount.username))).all()
