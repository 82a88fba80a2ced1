"""Worker connections: one object per websocket owns its receive loop, its dequeuing and its in-flight work,
and on any exit gives back what it held (re-queued before the first token, aborted after)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from oasst.config import Settings
from oasst.inference import service
from oasst.inference.queue import MessageStreams, WorkQueue
from oasst.inference.service import Transaction
from oasst.protocol.inference import ErrorResponseEvent, MessageResponseEvent, ModelConfig, TokenResponseEvent
from oasst.protocol.worker import (
    API_KEY_HEADER,
    CLOSE_BAD_HANDSHAKE,
    CLOSE_UPGRADE_PROTOCOL,
    CLOSE_WRONG_API_KEY,
    PROTOCOL_VERSION,
    PROTOCOL_VERSION_HEADER,
    ErrorResponse,
    GeneralErrorResponse,
    GeneratedTextResponse,
    PingRequest,
    PongResponse,
    TokenResponse,
    UpgradeProtocolRequest,
    WorkerInfo,
    WorkerMetricsInfo,
    WrongApiKeyRequest,
    worker_response_adapter,
)

log = logging.getLogger(__name__)
HANDSHAKE_TIMEOUT = 30.0


class WorkerRegistry:
    """The workers connected to this process, and the models they serve."""

    def __init__(self) -> None:
        self._connections: dict[str, WorkerConnection] = {}

    def add(self, connection: WorkerConnection) -> None:
        self._connections[connection.session_id] = connection

    def remove(self, connection: WorkerConnection) -> None:
        self._connections.pop(connection.session_id, None)

    def __iter__(self) -> Iterator[WorkerConnection]:
        return iter(list(self._connections.values()))

    def models(self) -> dict[str, ModelConfig]:
        """Model name -> config; the first connected worker of a name decides its config (and queue)."""
        models: dict[str, ModelConfig] = {}
        for connection in self._connections.values():
            models.setdefault(connection.model.model_id, connection.model)
        return models


@dataclass
class InFlight:
    message_id: uuid.UUID
    started: float
    responses: int = 0


class WorkerConnection:
    """One worker's websocket: dequeues while it has room, relays packets, pings when idle."""

    def __init__(
        self,
        websocket: WebSocket,
        worker_id: uuid.UUID,
        info: WorkerInfo,
        *,
        settings: Settings,
        transaction: Transaction,
        queue: WorkQueue,
        streams: MessageStreams,
        registry: WorkerRegistry,
    ) -> None:
        self.session_id = str(uuid.uuid4())
        self.websocket = websocket
        self.worker_id = worker_id
        self.info = info
        self.model = info.config.model
        self.settings = settings
        self.transaction = transaction
        self.queue = queue
        self.streams = streams
        self.registry = registry
        self.in_flight: dict[str, InFlight] = {}
        self.metrics: WorkerMetricsInfo | None = None

    async def _send(self, packet: BaseModel) -> None:
        await self.websocket.send_text(packet.model_dump_json())

    async def run(self) -> None:
        compat_hash = self.model.compat_hash
        receiving: asyncio.Task[str] | None = None
        dequeuing: asyncio.Task[str] | None = None
        self.registry.add(self)
        log.info("worker %s connected serving %s (session %s)", self.worker_id, compat_hash, self.session_id)
        try:
            # A first ping tells the worker it is registered (it answers with a pong, as to every ping).
            await self._send(PingRequest())
            while True:
                if dequeuing is None and len(self.in_flight) < self.info.config.max_parallel_requests:
                    dequeuing = asyncio.create_task(self.queue.get(compat_hash))
                if dequeuing is None and receiving is None:
                    # At capacity only packets can come: wait for them without a task and an asyncio.wait
                    # per packet (the hot path: one packet per token).
                    try:
                        async with asyncio.timeout(self.settings.worker_ping_interval):
                            text = await self.websocket.receive_text()
                    except TimeoutError:
                        await self._send(PingRequest())
                        continue
                    await self._handle(text)
                    continue
                if receiving is None:
                    receiving = asyncio.create_task(self.websocket.receive_text())
                waiting = {task for task in (receiving, dequeuing) if task is not None}
                done, _ = await asyncio.wait(
                    waiting, timeout=self.settings.worker_ping_interval, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    await self._send(PingRequest())
                    continue
                if dequeuing in done:
                    message_id, dequeuing = dequeuing.result(), None
                    await self._start(uuid.UUID(message_id))
                if receiving in done:
                    text, receiving = receiving.result(), None
                    await self._handle(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as error:
            log.info("worker session %s ended: %r", self.session_id, error)
        finally:
            self.registry.remove(self)
            await self._cleanup(receiving, dequeuing)

    async def _cleanup(
        self, receiving: asyncio.Task[str] | None, dequeuing: asyncio.Task[str] | None
    ) -> None:
        tasks = [task for task in (receiving, dequeuing) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if dequeuing is not None and not dequeuing.cancelled() and dequeuing.exception() is None:
            # Taken off the queue in the very moment the worker left: it goes back.
            await self.queue.put(self.model.compat_hash, dequeuing.result(), force=True)
        for request_id, work in list(self.in_flight.items()):
            del self.in_flight[request_id]
            try:
                await self._give_back(work)
            except Exception:
                log.exception("could not give back message %s", work.message_id)

    async def _give_back(self, work: InFlight) -> None:
        if work.responses == 0:
            async with self.transaction() as session:
                requeue = await service.reset_work(session, work.message_id)
            if requeue:
                await self.queue.put(self.model.compat_hash, str(work.message_id), force=True)
            return
        async with self.transaction() as session:
            message = await service.abort_work(session, work.message_id, service.ABORTED_BY_WORKER)
        if message is not None:
            event = ErrorResponseEvent(error=service.ABORTED_BY_WORKER, message=message)
            await self.streams.publish(str(work.message_id), event)

    async def _start(self, message_id: uuid.UUID) -> None:
        async with self.transaction() as session:
            start = await service.start_work(
                session, self.settings, message_id, self.worker_id, self.info.config
            )
        if start.event is not None:
            await self.streams.publish(str(message_id), start.event)
        if start.request is None:
            return
        # In flight before it is sent: if sending fails, the clean-up re-queues it (no token was seen).
        self.in_flight[start.request.id] = InFlight(message_id, time.monotonic())
        await self._send(start.request)

    async def _handle(self, text: str) -> None:
        try:
            packet = worker_response_adapter.validate_json(text)
        except ValidationError as error:
            log.warning("worker session %s sent a packet that is not one: %s", self.session_id, error)
            return
        if isinstance(packet, PongResponse):
            self.metrics = packet.metrics
        elif isinstance(packet, GeneralErrorResponse):
            log.warning("worker session %s reports: %s", self.session_id, packet.error)
        elif isinstance(packet, TokenResponse):
            work = self.in_flight.get(packet.request_id or "")
            if work is not None:
                work.responses += 1
                await self.streams.publish(str(work.message_id), TokenResponseEvent(text=packet.text))
        elif isinstance(packet, GeneratedTextResponse):
            await self._finish(packet)
        elif isinstance(packet, ErrorResponse):
            await self._fail(packet)

    async def _finish(self, packet: GeneratedTextResponse) -> None:
        work = self.in_flight.pop(packet.request_id or "", None)
        if work is None:
            return
        async with self.transaction() as session:
            message = await service.complete_work(
                session, work.message_id, packet.text, packet.used_plugin, packet.usage, work.responses
            )
        if message is not None:
            event = MessageResponseEvent(message=message, usage=packet.usage)
            await self.streams.publish(str(work.message_id), event)

    async def _fail(self, packet: ErrorResponse) -> None:
        work = self.in_flight.pop(packet.request_id or "", None)
        if work is None:
            return
        async with self.transaction() as session:
            message = await service.abort_work(session, work.message_id, packet.error)
        if message is not None:
            await self.streams.publish(
                str(work.message_id), ErrorResponseEvent(error=packet.error, message=message)
            )

    async def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            await self.websocket.close(1001, "Server shutting down")


async def handshake(websocket: WebSocket, transaction: Transaction) -> tuple[uuid.UUID, WorkerInfo] | None:
    """Accept the socket and check version, key and WorkerInfo; on a refusal say why, close, return None."""
    await websocket.accept()
    version = websocket.headers.get(PROTOCOL_VERSION_HEADER)
    if version != PROTOCOL_VERSION:
        await websocket.send_text(UpgradeProtocolRequest().model_dump_json())
        reason = f"Incompatible protocol version: {version}. Expected: {PROTOCOL_VERSION}."
        await websocket.close(CLOSE_UPGRADE_PROTOCOL, reason)
        return None
    api_key = websocket.headers.get(API_KEY_HEADER)
    async with transaction() as session:
        worker = await service.authenticate_worker(session, api_key)
        worker_id = worker.id if worker is not None else None
    if worker_id is None:
        await websocket.send_text(WrongApiKeyRequest().model_dump_json())
        await websocket.close(CLOSE_WRONG_API_KEY, "Invalid API key" if api_key else "Missing API key")
        return None
    try:
        info = WorkerInfo.model_validate_json(
            await asyncio.wait_for(websocket.receive_text(), HANDSHAKE_TIMEOUT)
        )
    except (ValidationError, TimeoutError) as error:
        await websocket.close(CLOSE_BAD_HANDSHAKE, f"Expected WorkerInfo: {type(error).__name__}")
        return None
    return worker_id, info
