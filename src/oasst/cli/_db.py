"""What the database commands share: migrate, then run one unit of work in a transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from oasst.config import Settings

T = TypeVar("T")


def in_transaction(work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """Migrate the configured database, then run `work` in one transaction; a refusal of the service (a taken
    name, a weak password, an unknown account...) is printed and exits with 1."""
    from oasst.config import Settings
    from oasst.db.migrations import upgrade
    from oasst.db.session import create_engine, sessionmaker, transaction
    from oasst.errors import OasstError
    from oasst.gateway.errors import GatewayError

    settings = Settings()
    upgrade(settings.effective_database_url)

    async def run() -> T:
        engine = create_engine(settings.effective_database_url)
        try:
            async with transaction(sessionmaker(engine)) as session:
                return await work(session, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (OasstError, GatewayError) as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from None
