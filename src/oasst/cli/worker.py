"""`oasst worker`: serve a model to an oasst server, connecting out over a websocket."""

from __future__ import annotations

import enum
from pathlib import Path

import typer


class BackendName(enum.StrEnum):
    transformers = "transformers"
    openai_http = "openai_http"
    fake = "fake"


class PromptFormatName(enum.StrEnum):
    auto = "auto"
    chat_template = "chat_template"
    oasst = "oasst"


class OpenAIMode(enum.StrEnum):
    chat = "chat"
    completions = "completions"


def worker(
    server: str = typer.Option("http://127.0.0.1:8080", help="The oasst server (http(s):// or ws(s)://)."),
    api_key: str = typer.Option(
        ..., envvar="OASST_WORKER_API_KEY", help="A worker key (PUT /inference/admin/workers)."
    ),
    backend: BackendName = typer.Option(BackendName.transformers, help="What runs the model."),
    model: str | None = typer.Option(
        None,
        help="transformers: a Hugging Face model folder (default: the bundled SmolLM2-135M-Instruct); "
        "other backends: the model name clients choose (model_config_name).",
    ),
    model_name: str | None = typer.Option(
        None, help="transformers: the name clients choose (default: the folder's name)."
    ),
    threads: int = typer.Option(1, min=1, help="transformers: torch threads (1 unless the cores are idle)."),
    prompt_format: PromptFormatName = typer.Option(
        PromptFormatName.auto,
        help="transformers: the model's chat template, the Open-Assistant tokens, or auto (the template when "
        "the tokenizer has one).",
    ),
    cache_dir: Path | None = typer.Option(
        None, help="transformers: where the bundled model is converted once (default: DATA_DIR/models)."
    ),
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
    from oasst.worker.backends.base import Backend, BackendError
    from oasst.worker.main import ModelWorker, WorkerRejected

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def config(name: str) -> ModelConfig:
        return ModelConfig(
            model_id=name, max_input_length=max_input_length, max_total_length=max_total_length
        )

    chosen: Backend
    if backend is BackendName.transformers:
        from oasst.config import Settings
        from oasst.worker.backends.hf import BUNDLED_MODEL, TransformersBackend, bundled_model_dir

        if model is None:
            try:
                path = bundled_model_dir(cache_dir or Settings().models_dir)
            except BackendError as error:
                raise typer.BadParameter(str(error), param_hint="--model") from error
        else:
            path = Path(model)
            if not (path / "config.json").is_file():
                raise typer.BadParameter(f"no Hugging Face model folder at {path}", param_hint="--model")
        name = model_name or (BUNDLED_MODEL if model is None else path.resolve().name)
        chosen = TransformersBackend(
            config(name), path=path, threads=threads, prompt_format=prompt_format.value
        )
    elif model is None:
        raise typer.BadParameter(f"the {backend.value} backend needs the model's name", param_hint="--model")
    elif backend is BackendName.fake:
        from oasst.worker.backends.fake import FakeBackend

        chosen = FakeBackend(config(model), token_delay=fake_token_delay, stall_after=fake_stall_after)
    else:
        from oasst.worker.backends.openai_http import OpenAIHttpBackend

        chosen = OpenAIHttpBackend(
            config(model),
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
    except BackendError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    except WorkerRejected as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from error
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
