"""`oasst gateway`: what a teacher runs the course gateway with: accounts, key rotation, usage reports."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from enum import StrEnum

import typer

from oasst.cli._db import in_transaction

app = typer.Typer(help="The course gateway: accounts, keys and usage.", no_args_is_help=True)


class Format(StrEnum):
    json = "json"
    csv = "csv"


@app.command("create-account")
def create_account(
    name: str = typer.Argument(..., help="The account's unique name, e.g. a team."),
    course: str = typer.Option(..., help="The course it belongs to."),
    budget: int | None = typer.Option(
        None, min=0, help="Tokens it may use (default OASST_GATEWAY_DEFAULT_BUDGET)."
    ),
) -> None:
    """Create an account and print its id and key. The key is shown once: hand it out now."""
    from pydantic import ValidationError

    from oasst.gateway import service
    from oasst.gateway.schemas import AccountCreate

    try:
        body = AccountCreate(name=name, course=course, budget=budget)
    except ValidationError as error:
        raise typer.BadParameter(str(error)) from None
    account = in_transaction(lambda session, settings: service.create_account(session, settings, body))
    typer.echo(f"account {account.id}: {account.api_key}")


@app.command("rotate-key")
def rotate_key(account_id: int = typer.Argument(..., help="The account's id.")) -> None:
    """Give an account a new key (the old one stops working) and print it."""
    from oasst.gateway import service

    account = in_transaction(lambda session, _settings: service.rotate_key(session, account_id))
    typer.echo(account.api_key)


@app.command()
def usage(
    format: Format = typer.Option(Format.json, "--format", help="json (a list of rows) or csv."),
    since: datetime | None = typer.Option(None, formats=["%Y-%m-%d"], help="First UTC day (inclusive)."),
    until: datetime | None = typer.Option(None, formats=["%Y-%m-%d"], help="Last UTC day (inclusive)."),
    account: str | None = typer.Option(None, help="Only this account (by name)."),
) -> None:
    """Tokens charged per account and per UTC day (the Parrot API and /v1 together)."""
    from oasst.gateway import service
    from oasst.gateway.schemas import UsageRow

    rows = in_transaction(
        lambda session, _settings: service.usage_report(
            session, since.date() if since else None, until.date() if until else None, account
        )
    )
    if format is Format.json:
        typer.echo(json.dumps([row.model_dump() for row in rows], indent=2))
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(UsageRow.model_fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(row.model_dump() for row in rows)
    typer.echo(out.getvalue(), nl=False)
