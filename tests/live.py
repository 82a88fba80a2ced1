"""A real oasst server on a free local port, run by uvicorn in a background thread, for end-to-end tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import httpx
import uvicorn

from oasst.app import create_app
from oasst.config import Settings

STARTUP_TIMEOUT = 20.0


def serve(settings: Settings) -> AbstractContextManager[str]:
    """Serve `create_app(settings)` over real HTTP until the block ends; yields the base URL."""
    return serve_app(create_app(settings))


def _wait_until_healthy(base_url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client(base_url=base_url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if not thread.is_alive():
                raise RuntimeError("the test server stopped during startup")
            try:
                if http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            # The server thread gives no readiness event; /health answering is that event, polled briefly.
            time.sleep(0.02)
    raise TimeoutError(f"the test server at {base_url} did not answer /health within {STARTUP_TIMEOUT}s")


@contextmanager
def serve_app(app: object) -> Iterator[str]:
    """Serve an ASGI app (ours, or a fake upstream) until the block ends; it must answer GET /health."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    # The socket is bound before the thread starts, so no other process can take the port meanwhile.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base_url, thread)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
        sock.close()
