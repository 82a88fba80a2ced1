"""`oasst worker`: serve a model to an oasst server, connecting out over a websocket."""

from __future__ import annotations

import enum

import typer


class BackendName(enum.StrEnum):
    fake = "fake"
    openai_http = "openai_http"


class OpenAIMode(enum.StrEnum):
    chat = "chat"
    completions = "completions"


def worker(
    server: str = typer.Option("http://127.0.0.1:8080", help="The oasst server (http(s):// or ws(s)://)."),
    api_key: str = typer.Option(
        ..., envvar="OASST_WORKER_API_KEY", help="A worker key (PUT /inference/admin/workers)."
    ),
    backend: BackendName = typer.Option(BackendName.fake, help="What runs the model."),
    model: str = typer.Option(..., help="The model name clients choose (model_config_name)."),
    max_input_length: int = typer.Option(2048, help="Longest prompt, in tokens."),
    max_total_length: int = typer.Option(4096, help="Longest prompt plus reply, in tokens."),
    max_parallel_requests: int = typer.Option(1, help="Requests served at once."),
    backend_url: str = typer.Option("http://127.0.0.1:8000/v1", help="openai_http: the server's base URL."),
    backend_api_key: str | None = typer.Option(
        None, envvar="OASST_BACKEND_API_KEY", help="openai_http: its key."
    ),
    backend_model: str | None = typer.Option(
        None, help="openai_http: the model name it knows (default: --model)."
    ),
    openai_mode: OpenAIMode = typer.Option(
        OpenAIMode.chat, help="openai_http: chat turns (the model's template) or an Open-Assistant prompt."
    ),
    fake_token_delay: float = typer.Option(0.0, help="fake: seconds before each token."),
    fake_stall_after: int | None = typer.Option(None, help="fake: hang after this many tokens (for tests)."),
    log_level: str = typer.Option("info", help="Logging level."),
) -> None:
    """Connect to SERVER and serve MODEL until stopped; reconnects with backoff when the connection drops."""
    import asyncio
    import logging

    from oasst.protocol.inference import ModelConfig
    from oasst.worker.backends.base import Backend
    from oasst.worker.main import ModelWorker, WorkerRejected

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ModelConfig(model_id=model, max_input_length=max_input_length, max_total_length=max_total_length)
    chosen: Backend
    if backend is BackendName.fake:
        from oasst.worker.backends.fake import FakeBackend

        chosen = FakeBackend(config, token_delay=fake_token_delay, stall_after=fake_stall_after)
    else:
        from oasst.worker.backends.openai_http import OpenAIHttpBackend

        chosen = OpenAIHttpBackend(
            config,
            base_url=backend_url,
            served_model=backend_model,
            api_key=backend_api_key,
            mode=openai_mode.value,
        )
    model_worker = ModelWorker(
        chosen, server=server, api_key=api_key, max_parallel_requests=max_parallel_requests
    )
    try:
        asyncio.run(model_worker.run())
    except WorkerRejected as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from error
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
