"""`oasst api-client`: mint keys for frontends (website, bots, scripts)."""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(help="Manage API clients of /api/v1.", no_args_is_help=True)


@app.command()
def create(
    name: str = typer.Argument(..., help="A description of the frontend, e.g. 'discord bot'."),
    trusted: bool = typer.Option(False, "--trusted", help="Allow admin and moderation routes."),
    frontend_type: str = typer.Option("", help="Free text, e.g. web, discord, import."),
    admin_email: str | None = typer.Option(None, help="Who to contact about this client."),
) -> None:
    """Create an API client and print its new key. The key is shown once: store it now."""
    from oasst.collection.auth.service import create_client
    from oasst.config import Settings
    from oasst.db.migrations import upgrade
    from oasst.db.session import create_engine, sessionmaker, transaction

    settings = Settings()
    upgrade(settings.effective_database_url)

    async def run() -> str:
        engine = create_engine(settings.effective_database_url)
        try:
            async with transaction(sessionmaker(engine)) as session:
                new = await create_client(
                    session, name, trusted=trusted, frontend_type=frontend_type, admin_email=admin_email
                )
                return new.api_key
        finally:
            await engine.dispose()

    typer.echo(asyncio.run(run()))
