"""`oasst accounts`: local accounts of people who sign in to oasst (web UI, inference API)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

app = typer.Typer(
    help="Manage local accounts (sign-in to the web UI and the inference API).", no_args_is_help=True
)

T = TypeVar("T")

PASSWORD_STDIN = typer.Option(
    False, "--password-stdin", help="Read the password from the first line of stdin instead of prompting."
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run `work` in one transaction; a refusal (taken name, weak password...) exits 1."""
    from oasst.config import Settings
    from oasst.db.migrations import upgrade
    from oasst.db.session import create_engine, sessionmaker, transaction
    from oasst.errors import OasstError

    settings = Settings()
    upgrade(settings.effective_database_url)

    async def run() -> T:
        engine = create_engine(settings.effective_database_url)
        try:
            async with transaction(sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except OasstError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from error


@app.command()
def create(
    username: str = typer.Argument(..., help="3-32 letters, digits, '_', '.' or '-'; case does not matter."),
    role: str = typer.Option("user", help="user, moderator or admin."),
    display_name: str | None = typer.Option(None, help="The name shown to others (default: USERNAME)."),
    password_stdin: bool = PASSWORD_STDIN,
) -> None:
    """Create an account (prompts for its password)."""
    from oasst.accounts import service

    password = _password(password_stdin)
    account = _run(lambda session: service.register(session, username, password, display_name, role))
    typer.echo(f"created {account.username} ({account.role})")


@app.command("set-role")
def set_role(
    username: str = typer.Argument(...), role: str = typer.Argument(..., help="user, moderator or admin.")
) -> None:
    """Change the role of an account."""
    from oasst.accounts import service

    account = _run(lambda session: service.set_role(session, username, role))
    typer.echo(f"{account.username} is now {account.role}")


@app.command("set-password")
def set_password(username: str = typer.Argument(...), password_stdin: bool = PASSWORD_STDIN) -> None:
    """Set a new password for an account."""
    from oasst.accounts import service

    password = _password(password_stdin)
    account = _run(lambda session: service.set_password(session, username, password))
    typer.echo(f"password of {account.username} changed")


@app.command()
def disable(username: str = typer.Argument(...)) -> None:
    """Stop an account from signing in."""
    from oasst.accounts import service

    account = _run(lambda session: service.set_enabled(session, username, False))
    typer.echo(f"{account.username} disabled")


@app.command()
def enable(username: str = typer.Argument(...)) -> None:
    """Let a disabled account sign in again."""
    from oasst.accounts import service

    account = _run(lambda session: service.set_enabled(session, username, True))
    typer.echo(f"{account.username} enabled")


@app.command("list")
def list_accounts() -> None:
    """Show every account: username, role, state, display name."""
    from oasst.accounts import service

    for account in _run(service.list_accounts):
        state = "enabled" if account.enabled else "disabled"
        typer.echo(f"{account.username:<32} {account.role:<9} {state:<8} {account.display_name}")
