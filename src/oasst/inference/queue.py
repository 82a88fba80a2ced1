"""Work queues (one per model compat hash) and per-message event streams, behind interfaces for Redis.

The in-memory versions serve one process (the embedded default); both hold only ids and events, never rows.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from oasst.protocol.inference import ErrorResponseEvent, MessageResponseEvent, TokenResponseEvent

StreamEvent = TokenResponseEvent | ErrorResponseEvent | MessageResponseEvent


class QueueFull(Exception):
    """The model's queue holds `work_queue_max_size` messages already."""


class WorkQueue(ABC):
    """Assistant message ids waiting for a worker, first in first out, one queue per compat hash."""

    @abstractmethod
    async def has_room(self, compat_hash: str) -> bool: ...

    @abstractmethod
    async def put(self, compat_hash: str, message_id: str, *, force: bool = False) -> None:
        """Append `message_id`; raises QueueFull when bounded and full, unless `force` (re-queued work)."""

    @abstractmethod
    async def get(self, compat_hash: str) -> str:
        """Wait for the next message id; cancelling the wait loses nothing."""

    @abstractmethod
    async def position(self, compat_hash: str, message_id: str) -> tuple[int, int]:
        """(messages ahead of `message_id`, queue size) as the pending event reports them."""


class MessageStreams(ABC):
    """The events of each assistant message (tokens, then the message or an error), replayable while kept."""

    @abstractmethod
    async def publish(self, message_id: str, event: StreamEvent) -> None: ...

    @abstractmethod
    async def kept(self, message_id: str) -> bool:
        """Whether the message has events kept for replay."""

    @abstractmethod
    def listen(self, message_id: str, idle: float) -> AsyncIterator[StreamEvent | None]:
        """Every event from the first on; None after each `idle` seconds without one."""


def is_terminal(event: StreamEvent) -> bool:
    return not isinstance(event, TokenResponseEvent)


class MemoryWorkQueue(WorkQueue):
    def __init__(self, max_size: int | None = None) -> None:
        self._max_size = max_size
        self._queues: defaultdict[str, asyncio.Queue[str]] = defaultdict(asyncio.Queue)
        self._enqueued: defaultdict[str, int] = defaultdict(int)
        self._dequeued: defaultdict[str, int] = defaultdict(int)
        self._positions: dict[str, int] = {}

    async def has_room(self, compat_hash: str) -> bool:
        return self._max_size is None or self._queues[compat_hash].qsize() < self._max_size

    async def put(self, compat_hash: str, message_id: str, *, force: bool = False) -> None:
        if not force and not await self.has_room(compat_hash):
            raise QueueFull(compat_hash)
        self._enqueued[compat_hash] += 1
        self._positions[message_id] = self._enqueued[compat_hash]
        self._queues[compat_hash].put_nowait(message_id)

    async def get(self, compat_hash: str) -> str:
        message_id = await self._queues[compat_hash].get()
        self._dequeued[compat_hash] += 1
        self._positions.pop(message_id, None)
        return message_id

    async def position(self, compat_hash: str, message_id: str) -> tuple[int, int]:
        dequeued = self._dequeued[compat_hash]
        position = max(self._positions.get(message_id, dequeued) - dequeued, 0)
        return position, max(self._enqueued[compat_hash] - dequeued, position)


@dataclass
class _Stream:
    events: list[StreamEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: int = 0
    finished: bool = False


class MemoryMessageStreams(MessageStreams):
    """Streams kept `expire` seconds after their last event (so a late or second reader still gets them)."""

    def __init__(self, expire: float) -> None:
        self._expire = expire
        self._streams: dict[str, _Stream] = {}

    async def publish(self, message_id: str, event: StreamEvent) -> None:
        stream = self._streams.setdefault(message_id, _Stream())
        stream.events.append(event)
        changed, stream.changed = stream.changed, asyncio.Event()
        changed.set()
        if is_terminal(event) and not stream.finished:
            stream.finished = True
            asyncio.get_running_loop().call_later(self._expire, self._drop, message_id, stream)

    async def kept(self, message_id: str) -> bool:
        stream = self._streams.get(message_id)
        return stream is not None and bool(stream.events)

    def _drop(self, message_id: str, stream: _Stream) -> None:
        if self._streams.get(message_id) is stream:
            del self._streams[message_id]

    async def listen(self, message_id: str, idle: float) -> AsyncIterator[StreamEvent | None]:
        stream = self._streams.setdefault(message_id, _Stream())
        stream.listeners += 1
        seen = 0
        try:
            while True:
                if seen < len(stream.events):
                    seen += 1
                    yield stream.events[seen - 1]
                    continue
                changed = stream.changed
                try:
                    await asyncio.wait_for(changed.wait(), idle)
                except TimeoutError:
                    yield None
        finally:
            stream.listeners -= 1
            if not stream.listeners and not stream.events:
                self._drop(message_id, stream)
