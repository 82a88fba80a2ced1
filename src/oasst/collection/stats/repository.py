"""Queries that count: trees by state over all languages."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import MessageTreeState


async def tree_state_counts(session: AsyncSession) -> dict[str, int]:
    """How many trees are in each state (states with no tree are absent)."""
    rows = await session.execute(
        select(MessageTreeState.state, func.count()).group_by(MessageTreeState.state)
    )
    return {state: int(count) for state, count in rows}
