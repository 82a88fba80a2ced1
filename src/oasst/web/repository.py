"""Queries of the web UI's own: the built-in API client it acts as."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.dml import insert_ignore
from oasst.db.models import ApiClient


async def client_by_frontend_type(session: AsyncSession, frontend_type: str) -> ApiClient | None:
    return await session.scalar(
        select(ApiClient).where(ApiClient.frontend_type == frontend_type).order_by(ApiClient.id).limit(1)
    )


async def add_client_once(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert a client unless one with the same key hash exists (a process that started at the same time)."""
    await insert_ignore(session, ApiClient, values, ["api_key_hash"])
