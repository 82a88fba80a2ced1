"""What the inference API runs on (queue, streams, workers, token secret) and its request dependencies."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from oasst.config import Settings
from oasst.db.models import InferenceUser
from oasst.db.session import transaction
from oasst.inference import service
from oasst.inference.queue import MemoryMessageStreams, MemoryWorkQueue, MessageStreams, WorkQueue
from oasst.inference.workers import WorkerRegistry

log = logging.getLogger(__name__)


class InferenceRuntime:
    """Built by the app's lifespan: the in-memory queue and streams (Redis next), workers, token secret."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        if settings.inference_auth_secret:
            self.secret = settings.inference_auth_secret
        else:
            self.secret = secrets.token_urlsafe(32)
            if settings.allow_debug_auth:
                log.warning(
                    "OASST_INFERENCE_AUTH_SECRET is not set: tokens are valid until this process ends"
                )
        self.queue: WorkQueue = MemoryWorkQueue(settings.work_queue_max_size)
        self.streams: MessageStreams = MemoryMessageStreams(settings.message_queue_expire)
        self.workers = WorkerRegistry()

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self.sessions)

    async def close(self) -> None:
        await asyncio.gather(*(connection.close() for connection in self.workers))


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


async def _user(unit: UnitOfWorkDep, runtime: RuntimeDep, credentials: BearerDep) -> InferenceUser:
    return await service.authenticate(unit.session, runtime.secret, _token(credentials))


async def _admin(runtime: RuntimeDep, credentials: BearerDep) -> None:
    service.require_admin(runtime.settings, _token(credentials))


UserDep = Annotated[InferenceUser, Depends(_user)]
AdminDep = Annotated[None, Depends(_admin)]
