"""Queries on api_client rows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import ApiClient


async def by_key_hash(session: AsyncSession, key_hash: str) -> ApiClient | None:
    return await session.scalar(select(ApiClient).where(ApiClient.api_key_hash == key_hash))


async def by_frontend_type(session: AsyncSession, frontend_type: str) -> ApiClient | None:
    return await session.scalar(select(ApiClient).where(ApiClient.frontend_type == frontend_type).limit(1))
