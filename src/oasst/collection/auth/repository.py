"""Queries on api_client rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import ApiClient


async def by_key_hash(session: AsyncSession, key_hash: str) -> ApiClient | None:
    return await session.scalar(select(ApiClient).where(ApiClient.api_key_hash == key_hash))


async def any_client(session: AsyncSession) -> bool:
    return await session.scalar(select(ApiClient.id).limit(1)) is not None


async def by_id(session: AsyncSession, client_id: uuid.UUID) -> ApiClient | None:
    return await session.get(ApiClient, client_id)


async def all_clients(session: AsyncSession) -> Sequence[ApiClient]:
    return (await session.scalars(select(ApiClient).order_by(ApiClient.description, ApiClient.id))).all()
