"""`oasst serve`: migrate, then run every API in one process."""

from __future__ import annotations

import typer


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
) -> None:
    """Migrate the database and serve the APIs (data collection under /api/v1)."""
    import uvicorn

    from oasst.app import create_app
    from oasst.config import Settings
    from oasst.db.migrations import upgrade

    settings = Settings()
    upgrade(settings.effective_database_url)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level, access_log=False)
