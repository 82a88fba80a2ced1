"""`oasst db`: database migrations."""

from __future__ import annotations

import typer

app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the database (OASST_DATABASE_URL, or the embedded SQLite file) to the newest schema."""
    from oasst.config import Settings
    from oasst.db.migrations import upgrade as run_upgrade

    settings = Settings()
    run_upgrade(settings.effective_database_url, revision)
    typer.echo(f"database at {revision}: {settings.effective_database_url.split('@')[-1]}")
