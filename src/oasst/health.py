"""The health check: is the database answering, and Redis when one is configured."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3.0


async def _database(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _redis(client: Redis) -> None:
    await client.ping()


async def _probe(name: str, probe: Callable[[], Awaitable[None]]) -> str:
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            await probe()
    except Exception as error:  # any failure means down, whatever the driver raises
        log.warning("health: %s is down: %r", name, error)
        # The error's type only: its text can carry host names and user names.
        return f"down: {type(error).__name__}"
    return "ok"


async def check(engine: AsyncEngine, redis: Redis | None) -> tuple[bool, dict[str, str]]:
    """Whether everything answers, and each service's state ("ok" or "down: <ErrorType>")."""
    probes: dict[str, Callable[[], Awaitable[None]]] = {"database": lambda: _database(engine)}
    if redis is not None:
        probes["redis"] = lambda: _redis(redis)
    states = await asyncio.gather(*(_probe(name, probe) for name, probe in probes.items()))
    results = dict(zip(probes, states, strict=True))
    return all(state == "ok" for state in states), results
