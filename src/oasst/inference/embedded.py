"""The model worker `oasst serve` runs beside itself: a worker key minted at start, then `oasst worker` in a
child process (generation never blocks the server's event loop) that connects over the websocket."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import secrets
import signal
import socket
import subprocess
import sys

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.config import Settings
from oasst.db.session import create_engine, sessionmaker, transaction
from oasst.inference import repository, service

STOP_TIMEOUT = 10.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def worker_name(port: int) -> str:
    """One key row per host and port, so servers sharing a database do not revoke each other's key."""
    return f"embedded worker ({socket.gethostname()}:{port})"


async def rotate_key(session: AsyncSession, name: str) -> str:
    """A new key for the worker row `name` (made on first start); the previous key stops working."""
    for worker in await repository.workers(session):
        if worker.name == name:
            key = secrets.token_urlsafe(32)
            worker.api_key_hash = service.hash_secret(key)
            await session.flush()
            return key
    minted = await service.create_worker(session, name, trusted=True)
    assert minted.api_key is not None  # shown once, when minted
    return minted.api_key


async def _mint(settings: Settings, name: str) -> str:
    engine = create_engine(settings.effective_database_url, 1)
    try:
        async with transaction(sessionmaker(engine)) as session:
            return await rotate_key(session, name)
    finally:
        await engine.dispose()


def _die_with_parent() -> None:
    """Run in the child before it starts (Linux): SIGTERM it when the server dies, even by SIGKILL."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def local_url(host: str, port: int) -> str:
    """How a process on this machine reaches a server listening on `host` (a wildcard means loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class EmbeddedWorker:
    """`oasst worker` as a child process of the server; its log goes to the server's stderr."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.settings = settings
        # Served alone, the inference API (and its worker websocket) sits at the root.
        self.server = local_url(host, port) + ("/workers/work" if settings.serve_only == "inference" else "")
        self.name = worker_name(port)
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def wanted(settings: Settings) -> bool:
        """On unless turned off or the inference API is not served."""
        return settings.embedded_worker and settings.serve_only != "collection"

    def command(self) -> list[str]:
        settings = self.settings
        command = [sys.executable, "-m", "oasst.cli.main", "worker", "--server", self.server]
        command += ["--backend", settings.embedded_worker_backend, "--log-level", settings.log_level]
        if settings.embedded_worker_backend == "transformers":
            command += [
                "--threads",
                str(settings.embedded_worker_threads),
                "--cache-dir",
                str(settings.models_dir),
            ]
            if settings.embedded_worker_model:
                command += ["--model", settings.embedded_worker_model]
        else:
            command += ["--model", settings.embedded_worker_model or "fake"]
        return command

    def start(self) -> int:
        """Mint the key (the database must be migrated), then start the worker, which connects once the
        server listens (it retries until then); returns its process id."""
        key = asyncio.run(_mint(self.settings, self.name))
        env = {**os.environ, "OASST_WORKER_API_KEY": key}  # not on the command line, where `ps` shows it
        die_with_server = _die_with_parent if sys.platform == "linux" else None
        self.process = subprocess.Popen(self.command(), env=env, preexec_fn=die_with_server)
        return self.process.pid

    def stop(self) -> None:
        """Ask the worker to stop, and kill it if it has not within STOP_TIMEOUT seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
