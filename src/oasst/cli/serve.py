"""`oasst serve`: migrate, then run every API in one process."""

from __future__ import annotations

import enum
import signal
import sys

import typer


class EmbeddedBackend(enum.StrEnum):
    transformers = "transformers"
    fake = "fake"


class ServedApi(enum.StrEnum):
    collection = "collection"
    inference = "inference"


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    worker: bool | None = typer.Option(
        None,
        "--worker/--no-worker",
        help="Run a model worker beside the server, as a child process (default: OASST_EMBEDDED_WORKER, on).",
    ),
    only: ServedApi | None = typer.Option(
        None,
        help="Serve one API alone: collection (/api/v1) or inference (at the root: /chats, /auth/..., "
        "/workers/work, as upstream).",
    ),
    worker_backend: EmbeddedBackend | None = typer.Option(
        None,
        help="The embedded worker's backend: transformers (the bundled SmolLM2, or the folder in "
        "OASST_EMBEDDED_WORKER_MODEL) or fake, which echoes (default: OASST_EMBEDDED_WORKER_BACKEND).",
    ),
) -> None:
    """Migrate the database and serve the APIs (data collection under /api/v1)."""
    import uvicorn

    from oasst.app import create_app
    from oasst.config import Settings
    from oasst.db.migrations import upgrade
    from oasst.inference.embedded import EmbeddedWorker

    settings = Settings()
    chosen = {
        "embedded_worker": worker,
        "embedded_worker_backend": worker_backend and worker_backend.value,
        "serve_only": only and only.value,
    }
    settings = settings.model_copy(
        update={name: value for name, value in chosen.items() if value is not None}
    )
    upgrade(settings.effective_database_url)
    embedded = EmbeddedWorker(settings, host, port) if EmbeddedWorker.wanted(settings) else None
    if embedded is not None:
        pid = embedded.start()
        typer.echo(f"model worker ({settings.embedded_worker_backend}) started as process {pid}", err=True)
        # uvicorn re-raises the SIGTERM it stopped on once it is done: exit through `finally` instead.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            create_app(settings), host=host, port=port, log_level=settings.log_level, access_log=False
        )
    finally:
        if embedded is not None:
            embedded.stop()
