"""What the inference API runs on (queue, streams, workers, token secret) and its request dependencies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from oasst.config import Settings
from oasst.db.models import InferenceUser
from oasst.db.models.inference import uuid7_time
from oasst.db.session import transaction
from oasst.inference import repository, service
from oasst.inference.queue import (
    REDIS_PREFIX,
    MemoryMessageStreams,
    MemoryWorkQueue,
    MessageStreams,
    RedisMessageStreams,
    RedisWorkerModels,
    RedisWorkQueue,
    StreamEvent,
    WorkQueue,
    is_terminal,
)
from oasst.inference.workers import WorkerConnection, WorkerRegistry
from oasst.metrics import Metrics
from oasst.protocol.inference import ErrorResponseEvent, ModelConfig, TokenResponseEvent

log = logging.getLogger(__name__)
ANNOUNCE_EVERY = 1.0  # seconds between two announcements of this process's models (and reads of the others')
ANNOUNCE_TTL = 10.0  # seconds after its last announcement that a silent process's models are forgotten


class SharedWorkerRegistry(WorkerRegistry):
    """The workers connected to this process, and the models served by the workers of every process."""

    def __init__(self) -> None:
        super().__init__()
        self.elsewhere: dict[str, ModelConfig] = {}
        self.changed = asyncio.Event()

    def add(self, connection: WorkerConnection) -> None:
        super().add(connection)
        self.changed.set()

    def remove(self, connection: WorkerConnection) -> None:
        super().remove(connection)
        self.changed.set()

    def local_models(self) -> dict[str, ModelConfig]:
        return super().models()

    def models(self) -> dict[str, ModelConfig]:
        models = super().models()
        for name, model in self.elsewhere.items():
            models.setdefault(name, model)
        return models


class ObservedStreams(MessageStreams):
    """Message streams that count the tokens passing through this process and time them: the first from
    its message's creation (the id is a UUIDv7), each later one from the one before."""

    MAX_TRACKED = 10_000  # messages whose last token time is kept; more means ends were missed: start over

    def __init__(self, streams: MessageStreams, metrics: Metrics) -> None:
        self.streams = streams
        self.metrics = metrics
        self._last_token: dict[str, float] = {}

    async def publish(self, message_id: str, event: StreamEvent) -> None:
        if isinstance(event, TokenResponseEvent):
            self._observe_token(message_id)
        elif is_terminal(event):
            self._last_token.pop(message_id, None)
        await self.streams.publish(message_id, event)

    def _observe_token(self, message_id: str) -> None:
        now = time.time()
        last = self._last_token.get(message_id)
        if last is None:
            if len(self._last_token) >= self.MAX_TRACKED:
                self._last_token.clear()
            self.metrics.inference_first_token.observe(max(now - uuid7_time(uuid.UUID(message_id)), 0.0))
        else:
            self.metrics.inference_inter_token.observe(now - last)
        self._last_token[message_id] = now
        self.metrics.inference_tokens.inc()

    async def kept(self, message_id: str) -> bool:
        return await self.streams.kept(message_id)

    def listen(self, message_id: str, idle: float) -> AsyncIterator[list[StreamEvent]]:
        return self.streams.listen(message_id, idle)


class InferenceRuntime:
    """Built by the app's lifespan: queue and streams (in memory, or in Redis when the app has a client, so
    several server processes share them), workers, token secret."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.metrics = metrics
        if settings.inference_auth_secret:
            self.secret = settings.inference_auth_secret
        else:
            self.secret = secrets.token_urlsafe(32)
            if settings.allow_debug_auth:
                log.warning(
                    "OASST_INFERENCE_AUTH_SECRET is not set: tokens are valid until this process ends"
                )
        self.process_id = uuid.uuid4().hex
        self.operator_id = ""  # set by start()
        self.queue: WorkQueue
        self.streams: MessageStreams
        self.workers: WorkerRegistry
        self._directory: RedisWorkerModels | None = None
        self._announcing: asyncio.Task[None] | None = None
        if redis is None:
            self.queue = MemoryWorkQueue(settings.work_queue_max_size)
            self.streams = MemoryMessageStreams(settings.message_queue_expire)
            self.workers = WorkerRegistry()
        else:
            # REDIS_PREFIX is read here, not bound as a default: a test can give its servers their own keys.
            self.queue = RedisWorkQueue(redis, settings.work_queue_max_size, REDIS_PREFIX)
            self.streams = RedisMessageStreams(redis, settings.message_queue_expire, REDIS_PREFIX)
            self._directory = RedisWorkerModels(redis, ANNOUNCE_TTL, REDIS_PREFIX)
            self.workers = SharedWorkerRegistry()
        if metrics is not None:
            self.streams = ObservedStreams(self.streams, metrics)

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self.sessions)

    async def enqueue(self, queued: service.QueuedMessage) -> None:
        """Queue a new assistant message (once its transaction has committed) and end the streams of the
        messages it cancelled (upstream's kept sending `pending` forever)."""
        await self.queue.put(queued.compat_hash, str(queued.message.id), force=True)
        for cancelled in queued.cancelled:
            await self.streams.publish(str(cancelled), ErrorResponseEvent(error=service.CANCELLED))

    def refused(self, reason: str) -> None:
        """Count a request turned away (`queue_full`, `no_worker`) on /metrics."""
        if self.metrics is not None:
            self.metrics.inference_rejected.labels(reason).inc()

    async def start(self) -> None:
        """Make sure the operator user exists (it owns the chats of /v1 requests). With Redis, start telling
        the other processes which models this one's workers serve. In memory, queue again what was pending
        when this server last stopped (its queue died with it; Redis keeps its own); a worker takes each at
        most once, as a message is started only while it is pending."""
        if self._directory is not None and isinstance(self.workers, SharedWorkerRegistry):
            self._announcing = asyncio.create_task(self._announce(self._directory, self.workers))
        in_memory = isinstance(self.queue, MemoryWorkQueue)
        async with self.transaction() as session:
            self.operator_id = await service.ensure_operator(session)
            pending = await repository.pending_messages(session) if in_memory else []
        for message_id, compat_hash in pending:
            await self.queue.put(compat_hash, str(message_id), force=True)

    async def _announce(self, directory: RedisWorkerModels, workers: SharedWorkerRegistry) -> None:
        failing = False
        while True:
            workers.changed.clear()
            try:
                await directory.announce(self.process_id, workers.local_models().values())
                workers.elsewhere = await directory.models()
                failing = False
            except RedisError as error:
                if not failing:
                    log.warning("cannot share this process's models through Redis: %s", error)
                failing = True
            # A worker connecting or leaving is announced at once; otherwise the announcement is renewed.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(workers.changed.wait(), ANNOUNCE_EVERY)

    async def close(self) -> None:
        await asyncio.gather(*(connection.close() for connection in self.workers))
        if self._announcing is not None:
            self._announcing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._announcing
        if self._directory is not None:
            with contextlib.suppress(RedisError):
                await self._directory.withdraw(self.process_id)


async def _runtime(request: Request) -> InferenceRuntime:
    runtime: InferenceRuntime = request.app.state.inference
    return runtime


RuntimeDep = Annotated[InferenceRuntime, Depends(_runtime)]


@dataclass
class UnitOfWork:
    """The request's one transaction (every inference route and dependency shares it), and what to do once
    it has committed: queue work only then, so a worker never dequeues a message it cannot read yet."""

    session: AsyncSession
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def _unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    async with transaction(request.app.state.sessions) as session:
        unit = UnitOfWork(session)
        yield unit
    for hook in unit.after_commit:
        await hook()


UnitOfWorkDep = Annotated[UnitOfWork, Depends(_unit_of_work, scope="function")]


_bearer = HTTPBearer(auto_error=False)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials is not None else None


TrustedClientHeader = Annotated[str | None, Header(alias="TrustedClient", max_length=4096)]


async def _user(
    request: Request,
    unit: UnitOfWorkDep,
    runtime: RuntimeDep,
    credentials: BearerDep,
    trusted_client: TrustedClientHeader = None,
) -> InferenceUser:
    """The caller: a TrustedClient header (which wins, as upstream) or a Bearer access token."""
    if trusted_client is not None:
        return await service.trusted_user(unit.session, request.app.state.api_clients, trusted_client)
    return await service.authenticate(unit.session, runtime.secret, _token(credentials))


async def _admin(runtime: RuntimeDep, credentials: BearerDep) -> None:
    service.require_admin(runtime.settings, _token(credentials))


UserDep = Annotated[InferenceUser, Depends(_user)]
AdminDep = Annotated[None, Depends(_admin)]
