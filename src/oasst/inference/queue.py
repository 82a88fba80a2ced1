"""Work queues (one per model compat hash) and per-message event streams, in memory or shared in Redis.

The in-memory versions serve one process (the embedded default); the Redis versions (and the directory of
served models) let several server processes share queues, workers and streams. Both hold only ids and events,
never rows.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field, TypeAdapter
from redis.asyncio import Redis

from oasst.protocol.inference import ErrorResponseEvent, MessageResponseEvent, ModelConfig, TokenResponseEvent

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
    def listen(self, message_id: str, idle: float) -> AsyncIterator[list[StreamEvent]]:
        """Every event from the first on, in batches of those that came in since the last batch (a reader
        falling behind a fast stream catches up in one step); an empty batch after each `idle` seconds
        without an event."""


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

    async def listen(self, message_id: str, idle: float) -> AsyncIterator[list[StreamEvent]]:
        stream = self._streams.setdefault(message_id, _Stream())
        stream.listeners += 1
        seen = 0
        try:
            while True:
                if seen < len(stream.events):
                    batch = stream.events[seen:]
                    seen += len(batch)
                    yield batch
                    continue
                changed = stream.changed
                try:
                    # asyncio.timeout, not wait_for: no task per wait (one wait per token on a busy stream).
                    async with asyncio.timeout(idle):
                        await changed.wait()
                except TimeoutError:
                    yield []
        finally:
            stream.listeners -= 1
            if not stream.listeners and not stream.events:
                self._drop(message_id, stream)


# --- Redis: shared by every server process ------------------------------------------------------------------

REDIS_PREFIX = "oasst:inference:"
_event_adapter: TypeAdapter[StreamEvent] = TypeAdapter(
    Annotated[StreamEvent, Field(discriminator="event_type")]
)
_POP_TIMEOUT = 2  # seconds a blocking pop waits before it asks again (a dead connection shows up)
_POSITION_TTL = 86_400  # seconds; a message queued longer than this has long timed out

# Append unless the queue is bounded and full; the enqueue counter gives the message its place.
_PUT_SCRIPT = """
local size = redis.call('LLEN', KEYS[1])
if ARGV[3] == '0' and tonumber(ARGV[2]) > 0 and size >= tonumber(ARGV[2]) then
    return -1
end
local place = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[3], place, 'EX', ARGV[4])
redis.call('LPUSH', KEYS[1], ARGV[1])
return place
"""

# A pop whose reply the caller never saw goes back to the head of the queue (ARGV[1]: the id it saw, if any).
_GIVE_BACK_SCRIPT = """
local taken = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
if #taken == 0 and ARGV[1] ~= '' then
    taken = {ARGV[1]}
end
for _, message_id in ipairs(taken) do
    redis.call('RPUSH', KEYS[2], message_id)
end
return #taken
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(answer: Any) -> list[tuple[str, str]]:
    """(entry id, event JSON) from an XREAD answer, as RESP2 (a list) or RESP3 (a dict) shapes it."""
    if not answer:
        return []
    streams = answer.values() if isinstance(answer, dict) else [entries for _key, entries in answer]
    found: list[tuple[str, str]] = []
    for entries in streams:
        for entry_id, fields in entries:
            value = fields.get(b"event", fields.get("event"))
            found.append((_text(entry_id), _text(value)))
    return found


class RedisWorkQueue(WorkQueue):
    """One Redis list per compat hash (push left, pop right), so every server process feeds the same workers.

    A pop moves the id into a list of the popping call's own, which is dropped once the id is handed over; if
    the call is cancelled before that, the id goes back to the head of the queue, so nothing is lost."""

    def __init__(self, client: Redis, max_size: int | None = None, prefix: str = REDIS_PREFIX) -> None:
        self._client = client
        self._max_size = max_size
        self._prefix = prefix
        self._put = client.register_script(_PUT_SCRIPT)
        self._give_back = client.register_script(_GIVE_BACK_SCRIPT)

    def _work(self, compat_hash: str) -> str:
        return f"{self._prefix}work:{compat_hash}"

    def _enqueued(self, compat_hash: str) -> str:
        return f"{self._prefix}enqueued:{compat_hash}"

    def _position(self, message_id: str) -> str:
        return f"{self._prefix}pos:{message_id}"

    async def has_room(self, compat_hash: str) -> bool:
        return self._max_size is None or await self._client.llen(self._work(compat_hash)) < self._max_size

    async def put(self, compat_hash: str, message_id: str, *, force: bool = False) -> None:
        keys = [self._work(compat_hash), self._enqueued(compat_hash), self._position(message_id)]
        args: list[str | int] = [message_id, self._max_size or 0, int(force), _POSITION_TTL]
        if int(await self._put(keys=keys, args=args)) < 0:
            raise QueueFull(compat_hash)

    async def get(self, compat_hash: str) -> str:
        work = self._work(compat_hash)
        taking = f"{self._prefix}taking:{uuid.uuid4().hex}"
        seen = ""
        try:
            while True:
                popped = await self._client.blmove(work, taking, _POP_TIMEOUT, "RIGHT", "LEFT")
                if popped is not None:
                    seen = _text(popped)
                    await self._client.delete(taking, self._position(seen))
                    return seen
        except BaseException:
            # Shielded: the give-back must finish even when the caller is cancelled again meanwhile.
            await asyncio.shield(self._give_back(keys=[taking, work], args=[seen]))
            raise

    async def position(self, compat_hash: str, message_id: str) -> tuple[int, int]:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.get(self._enqueued(compat_hash))
            pipe.llen(self._work(compat_hash))
            pipe.get(self._position(message_id))
            enqueued_raw, size, place_raw = await pipe.execute()
        enqueued = int(enqueued_raw or 0)
        # Everything enqueued that is no longer in the list has been dequeued (first in, first out).
        dequeued = enqueued - int(size)
        place = int(place_raw) if place_raw is not None else dequeued
        position = max(place - dequeued, 0)
        return position, max(int(size), position)


class RedisMessageStreams(MessageStreams):
    """One Redis stream per message, kept `expire` seconds after its last event: any server process can
    serve it, and a late reader reads it from the first event on."""

    def __init__(self, client: Redis, expire: float, prefix: str = REDIS_PREFIX) -> None:
        self._client = client
        self._expire_ms = max(1, round(expire * 1000))
        self._prefix = prefix

    def _key(self, message_id: str) -> str:
        return f"{self._prefix}message:{message_id}"

    async def publish(self, message_id: str, event: StreamEvent) -> None:
        key = self._key(message_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"event": event.model_dump_json()})
            pipe.pexpire(key, self._expire_ms)
            await pipe.execute()

    async def kept(self, message_id: str) -> bool:
        return bool(await self._client.exists(self._key(message_id)))

    async def listen(self, message_id: str, idle: float) -> AsyncIterator[list[StreamEvent]]:
        key = self._key(message_id)
        last = "0-0"
        block = max(1, round(idle * 1000))
        while True:
            entries = _entries(await self._client.xread({key: last}, count=100, block=block))
            if entries:
                last = entries[-1][0]
            yield [_event_adapter.validate_json(event) for _entry_id, event in entries]


class RedisWorkerModels:
    """The models served by the workers of every server process: each process announces its own under a
    deadline and renews it; a process that stops renewing drops out once its deadline has passed."""

    def __init__(self, client: Redis, ttl: float, prefix: str = REDIS_PREFIX) -> None:
        self._client = client
        self._ttl = ttl
        self._key = f"{prefix}models"

    async def announce(self, process_id: str, models: Iterable[ModelConfig]) -> None:
        value = json.dumps(
            {"until": time.time() + self._ttl, "models": [model.model_dump(mode="json") for model in models]}
        )
        await self._client.hset(self._key, process_id, value)

    async def withdraw(self, process_id: str) -> None:
        await self._client.hdel(self._key, process_id)

    async def models(self) -> dict[str, ModelConfig]:
        """Model name -> config over every live process (forgetting processes past their deadline)."""
        models: dict[str, ModelConfig] = {}
        gone: list[bytes | str] = []
        now = time.time()
        for process_id, raw in sorted((await self._client.hgetall(self._key)).items()):
            entry = json.loads(raw)
            if entry["until"] < now:
                gone.append(process_id)
                continue
            for data in entry["models"]:
                model = ModelConfig.model_validate(data)
                models.setdefault(model.model_id, model)
        if gone:
            await self._client.hdel(self._key, *gone)
        return models
