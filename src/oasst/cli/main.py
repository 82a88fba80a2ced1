"""Entry point of the `oasst` command."""

from __future__ import annotations

import typer

from oasst.cli import accounts, api_client, chat, contribute, db, export, gateway, jobs, serve, train, worker

app = typer.Typer(
    name="oasst",
    help="Build your own assistant: collect feedback, train, serve and meter it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("chat")(chat.chat)
app.command("contribute")(contribute.contribute)
app.command("export")(export.export)
app.command("import")(export.import_)
app.add_typer(db.app, name="db")
app.add_typer(gateway.app, name="gateway")
app.add_typer(accounts.app, name="accounts")
app.add_typer(api_client.app, name="api-client")
app.add_typer(jobs.app, name="jobs")
app.add_typer(train.app, name="train")


if __name__ == "__main__":
    app()
