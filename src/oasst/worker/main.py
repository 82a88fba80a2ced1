"""The worker's main loop: connect out to the server, hand work to the backend, stream tokens back, and
reconnect with backoff when the connection drops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from oasst.protocol.inference import TokenUsage
from oasst.protocol.worker import (
    API_KEY_HEADER,
    PROTOCOL_VERSION,
    PROTOCOL_VERSION_HEADER,
    ErrorRequest,
    ErrorResponse,
    GeneratedTextResponse,
    PingRequest,
    PongResponse,
    TerminateRequest,
    TokenResponse,
    UpgradeProtocolRequest,
    WorkerConfig,
    WorkerHardwareInfo,
    WorkerInfo,
    WorkerMetricsInfo,
    WorkRequest,
    WrongApiKeyRequest,
    worker_request_adapter,
)
from oasst.worker.backends.base import Backend, BackendError, Finish, FinishReason, Generation, Started
from oasst.worker.prompts import STOP_SEQUENCES, StopBuffer

log = logging.getLogger(__name__)
WORK_PATH = "/inference/workers/work"


class WorkerRejected(Exception):
    """The server will not take this worker (wrong key, other protocol): retrying cannot help."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def work_url(server: str) -> str:
    """The websocket URL for a server given as http(s)://host[:port] (or ws(s)://..., or the full URL)."""
    parts = urlsplit(server)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if not path.endswith("/workers/work"):
        path += WORK_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def hardware_info() -> WorkerHardwareInfo:
    uname = platform.uname()
    try:
        mem_total: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        mem_total = None
    return WorkerHardwareInfo(
        uname_sysname=uname.system,
        uname_release=uname.release,
        uname_version=uname.version,
        uname_machine=uname.machine,
        uname_processor=uname.processor,
        cpu_count_logical=os.cpu_count(),
        mem_total=mem_total,
    )


def _metrics() -> WorkerMetricsInfo:
    return WorkerMetricsInfo(created_at=datetime.now(UTC))


class ModelWorker:
    """Serves one backend's model to one server, for as long as it runs."""

    def __init__(
        self,
        backend: Backend,
        *,
        server: str,
        api_key: str,
        max_parallel_requests: int = 1,
        stop_sequences: list[str] | None = None,
        max_backoff: float = 30.0,
    ) -> None:
        self.backend = backend
        self.url = work_url(server)
        self.api_key = api_key
        self.config = WorkerConfig(model=backend.model, max_parallel_requests=max_parallel_requests)
        self.stop = STOP_SEQUENCES if stop_sequences is None else stop_sequences
        self.max_backoff = max_backoff
        self._delay = 1.0

    async def run(self) -> None:
        """Connect, serve, and reconnect (1 s, doubling up to `max_backoff`) until rejected or terminated."""
        await self.backend.start()
        try:
            while True:
                try:
                    if await self._session():
                        return
                except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as error:
                    log.warning(
                        "connection to %s lost (%r); retrying in %.0f s", self.url, error, self._delay
                    )
                await asyncio.sleep(self._delay)
                self._delay = min(self._delay * 2, self.max_backoff)
        finally:
            await self.backend.close()

    async def _session(self) -> bool:
        """One connection; True when the server asked the worker to stop."""
        headers = {API_KEY_HEADER: self.api_key, PROTOCOL_VERSION_HEADER: PROTOCOL_VERSION}
        tasks: set[asyncio.Task[None]] = set()
        async with connect(self.url, additional_headers=headers, open_timeout=10) as websocket:
            await websocket.send(
                WorkerInfo(config=self.config, hardware_info=hardware_info()).model_dump_json()
            )
            registered = False
            try:
                async for frame in websocket:
                    try:
                        packet = worker_request_adapter.validate_json(frame)
                    except ValidationError as error:
                        log.warning("ignoring a packet that is not one: %s", error)
                        continue
                    if isinstance(packet, PingRequest):
                        if not registered:
                            registered, self._delay = True, 1.0
                            log.info("registered with %s serving %s", self.url, self.config.model.model_id)
                        await websocket.send(
                            PongResponse(request_id=packet.id, metrics=_metrics()).model_dump_json()
                        )
                    elif isinstance(packet, WorkRequest):
                        log.info("work request %s received", packet.id)
                        task = asyncio.create_task(self._work(websocket, packet))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    elif isinstance(packet, WrongApiKeyRequest):
                        raise WorkerRejected("the server refused the API key", 3)
                    elif isinstance(packet, UpgradeProtocolRequest):
                        raise WorkerRejected(f"the server speaks another protocol than {PROTOCOL_VERSION}", 2)
                    elif isinstance(packet, ErrorRequest):
                        raise ConnectionError(f"the server reported an error: {packet.error}")
                    elif isinstance(packet, TerminateRequest):
                        return True
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return False

    async def _work(self, websocket: ClientConnection, request: WorkRequest) -> None:
        async def send(packet: BaseModel) -> None:
            await websocket.send(packet.model_dump_json())

        generation = Generation.build(request.thread.messages, request.parameters, self.stop)
        buffer = StopBuffer(generation.stop)
        reason: FinishReason = "eos_token"
        prompt_tokens: int | None = None
        completion_tokens = 0
        try:
            async with contextlib.aclosing(self.backend.generate(generation)) as items:
                async for item in items:
                    if isinstance(item, Started):
                        prompt_tokens = item.prompt_tokens
                        continue
                    if isinstance(item, Finish):
                        reason = item.reason
                        break
                    completion_tokens += 1
                    text = buffer.push(item.text)
                    if text:
                        await send(
                            TokenResponse(
                                request_id=request.id,
                                text=text,
                                token_id=item.token_id,
                                log_prob=item.log_prob,
                            )
                        )
                    if buffer.stopped:
                        reason = "stop_sequence"
                        break
            tail = buffer.flush()
            if tail:
                await send(TokenResponse(request_id=request.id, text=tail))
            # Counted only by a backend that said how long the prompt was (then each Token is a model token).
            usage = (
                None
                if prompt_tokens is None
                else TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
            )
            await send(
                GeneratedTextResponse(
                    request_id=request.id,
                    text=buffer.text,
                    finish_reason=reason,
                    metrics=_metrics(),
                    usage=usage,
                )
            )
            log.info("work request %s done (%s)", request.id, reason)
        except BackendError as error:
            log.warning("work request %s failed: %s", request.id, error)
            with contextlib.suppress(ConnectionClosed):
                await send(ErrorResponse(request_id=request.id, error=str(error), metrics=_metrics()))
        except ConnectionClosed:
            log.info("work request %s dropped: the connection closed", request.id)
