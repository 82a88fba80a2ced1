"""Drive the inference API as a client would: debug login, chats, messages, the SSE stream; and real
`oasst worker` processes whose log lines the tests wait on."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADMIN_KEY

MODEL = "fake-model"
LINE_TIMEOUT = 30.0


def mint_worker_key(base_url: str, name: str = "test worker") -> str:
    response = httpx.put(
        f"{base_url}/inference/admin/workers",
        json={"name": name},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=LINE_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    key: str = response.json()["api_key"]
    return key


def read_events(http: httpx.Client, url: str) -> Iterator[dict[str, Any]]:
    """The events of an SSE stream, as parsed JSON, until the stream ends."""
    with http.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                yield json.loads(line[5:])


class LoggedProcess:
    """An `oasst` command in a child process; a thread reads its log (stderr) so tests can wait on lines."""

    def __init__(self, *arguments: str, env: Mapping[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "oasst.cli.main", *arguments]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = LINE_TIMEOUT) -> str:
        """Block until a log line contains `text` (fails if the process ends or time runs out first)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no log line with {text!r} in {timeout}s: {self.log}") from None
            if line is None:
                raise AssertionError(f"the worker ended before logging {text!r}: {self.log}")
            self.log.append(line)
            if text in line:
                return line

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = LINE_TIMEOUT) -> int:
        """Ask the process to stop (SIGTERM) and wait for it; returns its exit code."""
        self.process.terminate()
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process.poll() is None:
            self.kill()
        self._reader.join(timeout=5)


class WorkerProcess(LoggedProcess):
    """`oasst worker` serving MODEL with the fake backend, or with the backend options in `backend`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *extra: str,
        backend: Sequence[str] = ("--backend", "fake", "--model", MODEL),
    ) -> None:
        super().__init__("worker", "--server", base_url, "--api-key", api_key, *backend, *extra)


class ChatClient:
    """A user of the chat API, logged in through the debug login as the text-client does."""

    def __init__(self, base_url: str, username: str = "alice") -> None:
        self.http = httpx.Client(base_url=f"{base_url}/inference", timeout=30.0)
        response = self.http.get("/auth/login/debug", params={"username": username}, follow_redirects=True)
        assert response.status_code == 200, response.text
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']['access_token']}"

    def new_chat(self) -> str:
        response = self.http.post("/chats", json={})
        assert response.status_code == 200, response.text
        chat_id: str = response.json()["id"]
        return chat_id

    def ask(self, chat_id: str, content: str, parent_id: str | None = None, **extra: Any) -> str:
        """Post a prompter message and an assistant message under it; returns the assistant message id."""
        prompter = self.http.post(
            f"/chats/{chat_id}/prompter_message", json={"parent_id": parent_id, "content": content}
        )
        assert prompter.status_code == 200, prompter.text
        body = {"parent_id": prompter.json()["id"], "model_config_name": MODEL, **extra}
        assistant = self.http.post(f"/chats/{chat_id}/assistant_message", json=body)
        assert assistant.status_code == 200, assistant.text
        assert assistant.json()["state"] == "pending"
        message_id: str = assistant.json()["id"]
        return message_id

    def events(self, chat_id: str, message_id: str) -> Iterator[dict[str, Any]]:
        """The SSE events of an assistant message, as parsed JSON, until the stream ends."""
        return read_events(self.http, f"/chats/{chat_id}/messages/{message_id}/events")

    def message(self, chat_id: str, message_id: str) -> dict[str, Any]:
        response = self.http.get(f"/chats/{chat_id}/messages/{message_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def close(self) -> None:
        self.http.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_process(
    database_url: str, data_dir: Path, *arguments: str, port: int | None = None, **env: str
) -> Iterator[tuple[str, LoggedProcess]]:
    """`oasst serve` in a child process (debug sign-in, no jobs or rate limits, no Redis unless `env` sets
    OASST_REDIS_URL); yields its URL and the process, whose log the test waits on."""
    port = port or free_port()
    environment = {
        **os.environ,
        "OASST_DATABASE_URL": database_url,
        "OASST_DATA_DIR": str(data_dir),
        "OASST_BOOTSTRAP_API_KEY": ADMIN_KEY,
        "OASST_ALLOW_DEBUG_AUTH": "true",
        "OASST_JOBS_ENABLED": "false",
        "OASST_RATE_LIMIT": "false",
        "OASST_PENDING_EVENT_INTERVAL": "0.05",
    }
    environment.pop("OASST_REDIS_URL", None)
    with LoggedProcess("serve", "--port", str(port), *arguments, env={**environment, **env}) as server:
        yield f"http://127.0.0.1:{port}", server


def scrape_metrics(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and sorted labels."""
    text = httpx.get(f"{base_url}/metrics", timeout=LINE_TIMEOUT).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
