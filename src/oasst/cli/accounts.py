"""`oasst accounts`: local accounts of people who sign in to oasst (web UI, inference API)."""

from __future__ import annotations

import sys

import typer

from oasst.cli._db import in_transaction

app = typer.Typer(
    help="Manage local accounts (sign-in to the web UI and the inference API).", no_args_is_help=True
)

PASSWORD_STDIN = typer.Option(
    False, "--password-stdin", help="Read the password from the first line of stdin instead of prompting."
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


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
    account = in_transaction(
        lambda session, _settings: service.register(session, username, password, display_name, role)
    )
    typer.echo(f"created {account.username} ({account.role})")


@app.command("set-role")
def set_role(
    username: str = typer.Argument(...), role: str = typer.Argument(..., help="user, moderator or admin.")
) -> None:
    """Change the role of an account."""
    from oasst.accounts import service

    account = in_transaction(lambda session, _settings: service.set_role(session, username, role))
    typer.echo(f"{account.username} is now {account.role}")


@app.command("set-password")
def set_password(username: str = typer.Argument(...), password_stdin: bool = PASSWORD_STDIN) -> None:
    """Set a new password for an account."""
    from oasst.accounts import service

    password = _password(password_stdin)
    account = in_transaction(lambda session, _settings: service.set_password(session, username, password))
    typer.echo(f"password of {account.username} changed")


@app.command()
def disable(username: str = typer.Argument(...)) -> None:
    """Stop an account from signing in."""
    from oasst.accounts import service

    account = in_transaction(lambda session, _settings: service.set_enabled(session, username, False))
    typer.echo(f"{account.username} disabled")


@app.command()
def enable(username: str = typer.Argument(...)) -> None:
    """Let a disabled account sign in again."""
    from oasst.accounts import service

    account = in_transaction(lambda session, _settings: service.set_enabled(session, username, True))
    typer.echo(f"{account.username} enabled")


@app.command("list")
def list_accounts() -> None:
    """Show every account: username, role, state, display name."""
    from oasst.accounts import service

    for account in in_transaction(lambda session, _settings: service.list_accounts(session)):
        state = "enabled" if account.enabled else "disabled"
        typer.echo(f"{account.username:<32} {account.role:<9} {state:<8} {account.display_name}")
