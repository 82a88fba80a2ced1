"""`oasst chat`: a terminal chat with the assistant through the inference API, replies streamed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from oasst.client.inference import InferenceClient

HELP = "Type a message and press Enter. /new starts a new chat, /quit (or Ctrl-D) leaves."


def chat(
    server: str = typer.Option("http://127.0.0.1:8080", help="The oasst server."),
    token: str | None = typer.Option(
        None, envvar="OASST_INFERENCE_TOKEN", help="A bearer token of the inference API."
    ),
    username: str | None = typer.Option(
        None,
        help="Sign in as this user: a local account (`oasst accounts create`; the password is asked for), "
        "or through the debug provider on servers with OASST_ALLOW_DEBUG_AUTH.",
    ),
    password: str | None = typer.Option(
        None, envvar="OASST_PASSWORD", help="The local account's password (asked for when needed)."
    ),
    model: str | None = typer.Option(None, help="Model to talk to. Default: the first one a worker serves."),
    preset: str | None = typer.Option(None, help="Sampling preset of the model (see the server's configs)."),
    max_new_tokens: int | None = typer.Option(None, min=1, help="Longest reply, in tokens."),
) -> None:
    """Chat with the assistant in the terminal; the history of a chat is kept until /new."""
    from rich.console import Console

    from oasst.client.inference import InferenceApiError, InferenceClient
    from oasst.protocol.inference import SamplingParameters

    console = Console()
    if not token and not username:
        raise typer.BadParameter("give --username (a local account), or --token (or OASST_INFERENCE_TOKEN)")
    with InferenceClient(server, token) as client:
        try:
            if username:
                _sign_in(client, username, password)
            configs = client.model_configs()
        except (InferenceApiError, OSError) as error:
            console.print(f"[red]Cannot use {server}: {error}[/red]")
            raise typer.Exit(1) from error
        chosen = next((c for c in configs if model in (None, c.name)), None)
        if chosen is None:
            served = ", ".join(c.name for c in configs) or "none"
            console.print(f"[red]No worker serves {model or 'any model'} (served: {served}).[/red]")
            raise typer.Exit(1)
        sampling = next(
            (p.sampling_parameters for p in chosen.parameter_configs if p.name == preset),
            SamplingParameters(),
        )
        if preset and not any(p.name == preset for p in chosen.parameter_configs):
            console.print(f"[yellow]No preset {preset!r} for {chosen.name}; using the defaults.[/yellow]")
        if max_new_tokens:
            sampling = sampling.model_copy(update={"max_new_tokens": max_new_tokens})
        console.print(f"[dim]Model {chosen.name}. {HELP}[/dim]")
        chat_id, parent = client.create_chat().id, None
        while True:
            try:
                text = console.input("[bold green]you>[/bold green] ").strip()
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            if text == "/quit":
                return
            if text == "/new":
                chat_id, parent = client.create_chat().id, None
                console.print("[dim]New chat.[/dim]")
                continue
            if not text:
                continue
            try:
                prompt = client.prompter_message(chat_id, text, parent)
                reply = client.assistant_message(chat_id, prompt.id, chosen.name, sampling)
                console.print("[bold blue]assistant>[/bold blue] ", end="")
                for event in client.events(chat_id, reply.id):
                    if event.event_type == "token":
                        console.print(event.text, end="", markup=False, highlight=False)
                    elif event.event_type == "error":
                        console.print(f"\n[red]{event.error}[/red]")
                        break
                    elif event.event_type == "message":
                        parent = event.message.id
                console.print()
            except InferenceApiError as error:
                console.print(f"[red]{error.detail}[/red]")


def _sign_in(client: InferenceClient, username: str, password: str | None) -> None:
    """A local account when the server has them and no debug sign-in, or when a password is given."""
    from oasst.client.inference import InferenceApiError

    providers = client.providers()
    if "local" in providers and (password is not None or "debug" not in providers):
        client.login_local(username, password or typer.prompt("password", hide_input=True))
    elif "debug" in providers:
        client.login_debug(username)
    else:
        raise InferenceApiError(403, f"the server offers no password sign-in (it offers: {providers})")
