"""Named locks that keep one periodic job (or refresh) running at a time across processes.

On PostgreSQL they are transaction-scoped advisory locks, released at commit or rollback. SQLite lets one
transaction write at a time, so a second process simply waits for the first and then repeats idempotent work.
"""

from __future__ import annotations

import zlib

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

# The first key of the two-key form: the tree manager's one-key locks live in a separate key space.
_JOBS_KEYSPACE = 0x0A55


def _key(name: str) -> int:
    return zlib.crc32(f"oasst:job:{name}".encode()) & 0x7FFFFFFF


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def try_lock(session: AsyncSession, name: str) -> bool:
    """Take the lock `name` until the transaction ends; False if another transaction holds it."""
    if not _is_postgres(session):
        return True
    taken = await session.scalar(select(func.pg_try_advisory_xact_lock(_JOBS_KEYSPACE, _key(name))))
    return bool(taken)


async def lock(session: AsyncSession, name: str) -> None:
    """Take the lock `name` until the transaction ends, waiting for its holder to finish."""
    if _is_postgres(session):
        await session.execute(select(func.pg_advisory_xact_lock(_JOBS_KEYSPACE, _key(name))))
