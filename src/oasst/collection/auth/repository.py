"""Queries on api_client rows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import ApiClient


async def by_key_hash(session: AsyncSession, key_hash: str) -> ApiClient | None:
    return await session.scalar(select(ApiClient).where(ApiClient.api_key_hash == key_hash))


async def any_client(session: AsyncSession) -> bool:
    return await session.scalar(select(ApiClient.id).limit(1)) is not None
