"""Work queues and message streams, the same tests in memory and in Redis; two servers sharing one Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from oasst.config import Settings
from oasst.inference import deps
from oasst.inference.queue import (
    MemoryMessageStreams,
    MemoryWorkQueue,
    MessageStreams,
    QueueFull,
    RedisMessageStreams,
    RedisWorkerModels,
    RedisWorkQueue,
    StreamEvent,
    WorkQueue,
)
from oasst.protocol.inference import ErrorResponseEvent, ModelConfig, TokenResponseEvent
from tests.conftest import REDIS_URL, missing_service
from tests.inference.helpers import MODEL, ChatClient, WorkerProcess, mint_worker_key
from tests.live import serve

HASH = "model-a-1024-512-f"
OTHER_HASH = "model-b-1024-512-f"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _redis_or_skip() -> Redis:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        await client.aclose()
        missing_service("Redis", error)
    return client


async def _delete_keys(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)


@dataclass
class Backend:
    """Builds queues and streams on one implementation; Redis ones share a prefix of this test's own."""

    kind: str
    client: Redis | None = None
    prefix: str = ""

    def queue(self, max_size: int | None = None) -> WorkQueue:
        if self.client is None:
            return MemoryWorkQueue(max_size)
        return RedisWorkQueue(self.client, max_size, self.prefix)

    def streams(self, expire: float = 60.0) -> MessageStreams:
        if self.client is None:
            return MemoryMessageStreams(expire)
        return RedisMessageStreams(self.client, expire, self.prefix)


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield Backend("memory")
        return
    client = await _redis_or_skip()
    prefix = f"oasst-test:{uuid.uuid4().hex}:"
    try:
        yield Backend("redis", client, prefix)
    finally:
        await _delete_keys(client, prefix)
        await client.aclose()


async def _collect(stream: AsyncIterator[list[StreamEvent]], idle_limit: int = 50) -> list[StreamEvent]:
    """Events up to and including the terminal one (fails after `idle_limit` idle ticks in a row)."""
    events: list[StreamEvent] = []
    idle = 0
    async for batch in stream:
        if not batch:
            idle += 1
            assert idle < idle_limit, f"the stream went quiet after {events}"
            continue
        idle = 0
        events += batch
        if not isinstance(events[-1], TokenResponseEvent):
            break
    return events


def _tokens(*texts: str) -> list[StreamEvent]:
    return [TokenResponseEvent(text=text) for text in texts]


# --- queues ----------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_queue_is_first_in_first_out_per_model(backend: Backend) -> None:
    queue = backend.queue()
    for message_id in ("a1", "a2", "a3"):
        await queue.put(HASH, message_id)
    await queue.put(OTHER_HASH, "b1")
    assert [await queue.get(HASH) for _ in range(3)] == ["a1", "a2", "a3"]
    assert await queue.get(OTHER_HASH) == "b1"


@pytest.mark.anyio
async def test_a_waiting_get_takes_work_queued_later(backend: Backend) -> None:
    queue = backend.queue()
    waiting = asyncio.create_task(queue.get(HASH))
    await asyncio.sleep(0)
    await queue.put(HASH, "late")
    assert await asyncio.wait_for(waiting, 10) == "late"


@pytest.mark.anyio
async def test_position_counts_the_messages_ahead_and_the_queue_size(backend: Backend) -> None:
    queue = backend.queue()
    for message_id in ("m1", "m2", "m3"):
        await queue.put(HASH, message_id)
    assert [await queue.position(HASH, m) for m in ("m1", "m2", "m3")] == [(1, 3), (2, 3), (3, 3)]
    assert await queue.get(HASH) == "m1"
    assert [await queue.position(HASH, m) for m in ("m1", "m2", "m3")] == [(0, 2), (1, 2), (2, 2)]
    # A message not queued (taken, or never put) has nothing ahead; another model's queue is counted apart.
    assert await queue.position(HASH, "unknown") == (0, 2)
    assert await queue.position(OTHER_HASH, "unknown") == (0, 0)


@pytest.mark.anyio
async def test_bounded_queue_refuses_when_full_except_re_queued_work(backend: Backend) -> None:
    queue = backend.queue(max_size=2)
    assert await queue.has_room(HASH)
    await queue.put(HASH, "x1")
    await queue.put(HASH, "x2")
    assert not await queue.has_room(HASH)
    assert await queue.has_room(OTHER_HASH)
    with pytest.raises(QueueFull):
        await queue.put(HASH, "x3")
    await queue.put(HASH, "again", force=True)
    assert [await queue.get(HASH) for _ in range(2)] == ["x1", "x2"]
    assert await queue.has_room(HASH)
    assert await queue.get(HASH) == "again"


@pytest.mark.anyio
async def test_cancelled_gets_lose_no_work(backend: Backend) -> None:
    queue = backend.queue()
    expected = [f"w{n}" for n in range(30)]
    for message_id in expected:
        await queue.put(HASH, message_id)
    taken: list[str] = []
    for attempt in range(30):
        getting = asyncio.create_task(queue.get(HASH))
        for _ in range(attempt % 4):  # cancel at different points of the pop
            await asyncio.sleep(0)
        getting.cancel()
        result = (await asyncio.gather(getting, return_exceptions=True))[0]
        if isinstance(result, str):
            taken.append(result)
    _ahead, left = await queue.position(HASH, "none")
    taken += [await queue.get(HASH) for _ in range(left)]
    assert sorted(taken) == sorted(expected)
    assert await queue.position(HASH, "none") == (0, 0)


# --- streams ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_stream_delivers_events_in_order_to_early_and_late_readers(backend: Backend) -> None:
    streams = backend.streams()
    early = asyncio.create_task(_collect(streams.listen("msg", 0.05)))
    await asyncio.sleep(0)
    assert not await streams.kept("msg")
    sent = [*_tokens("Hello", ", ", "world"), ErrorResponseEvent(error="Timeout")]
    for event in sent:
        await streams.publish("msg", event)
    assert await asyncio.wait_for(early, 10) == sent
    assert await streams.kept("msg")
    # A reader that comes after the end (another tab, another server process) reads it from the start.
    assert await asyncio.wait_for(_collect(streams.listen("msg", 0.05)), 10) == sent
    assert not await streams.kept("other")


@pytest.mark.anyio
async def test_stream_reports_idle_ticks_while_nothing_comes(backend: Backend) -> None:
    streams = backend.streams()
    listening = streams.listen("quiet", 0.02)
    assert await anext(listening) == []
    await streams.publish("quiet", TokenResponseEvent(text="hi"))
    await streams.publish("quiet", TokenResponseEvent(text=" there"))
    batch = await anext(listening)
    while not batch:
        batch = await anext(listening)
    # What came in since the last look arrives as one batch.
    assert batch == [TokenResponseEvent(text="hi"), TokenResponseEvent(text=" there")]
    await listening.aclose()  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_finished_stream_is_dropped_after_expire(backend: Backend) -> None:
    streams = backend.streams(expire=0.2)
    await streams.publish("short", TokenResponseEvent(text="a"))
    await streams.publish("short", ErrorResponseEvent(error="Timeout"))
    assert await streams.kept("short")
    deadline = time.monotonic() + 10
    while await streams.kept("short"):
        assert time.monotonic() < deadline, "the finished stream was never dropped"
        await asyncio.sleep(0.05)


# --- Redis only: what several processes share ------------------------------------------------------------


@pytest.fixture
async def redis_pair() -> AsyncIterator[tuple[Redis, Redis, str]]:
    """Two clients (as two server processes have) and a key prefix of this test's own."""
    first = await _redis_or_skip()
    second = Redis.from_url(REDIS_URL, socket_connect_timeout=2, decode_responses=True)
    prefix = f"oasst-test:{uuid.uuid4().hex}:"
    try:
        yield first, second, prefix
    finally:
        await _delete_keys(first, prefix)
        await first.aclose()
        await second.aclose()


@pytest.mark.anyio
async def test_processes_share_queues_and_streams(redis_pair: tuple[Redis, Redis, str]) -> None:
    first, second, prefix = redis_pair
    await RedisWorkQueue(first, None, prefix).put(HASH, "shared")
    assert await RedisWorkQueue(second, None, prefix).get(HASH) == "shared"
    reading = asyncio.create_task(_collect(RedisMessageStreams(second, 60, prefix).listen("m", 0.05)))
    sent = [*_tokens("one", "two"), ErrorResponseEvent(error="boom")]
    for event in sent:
        await RedisMessageStreams(first, 60, prefix).publish("m", event)
    assert await asyncio.wait_for(reading, 10) == sent


@pytest.mark.anyio
async def test_models_announced_by_one_process_are_seen_by_all_until_withdrawn(
    redis_pair: tuple[Redis, Redis, str],
) -> None:
    first, second, prefix = redis_pair
    model = ModelConfig(model_id="shared-model")
    await RedisWorkerModels(first, 10, prefix).announce("process-a", [model])
    await RedisWorkerModels(first, -1, prefix).announce("process-gone", [ModelConfig(model_id="stale")])
    seen = RedisWorkerModels(second, 10, prefix)
    assert await seen.models() == {"shared-model": model}
    await RedisWorkerModels(first, 10, prefix).withdraw("process-a")
    assert await seen.models() == {}


# --- end to end: two servers, one Redis, one PostgreSQL --------------------------------------------------


@pytest.fixture
def redis_prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Keys of this test's own for the servers it starts; deleted afterwards."""

    async def probe_and(action: Callable[[Redis], Any]) -> None:
        client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            await action(client)
        finally:
            await client.aclose()

    try:
        asyncio.run(probe_and(lambda client: client.ping()))
    except (RedisError, OSError) as error:
        missing_service("Redis", error)
    prefix = f"oasst-test:{uuid.uuid4().hex}:"
    monkeypatch.setattr(deps, "REDIS_PREFIX", prefix)
    yield prefix
    asyncio.run(probe_and(lambda client: _delete_keys(client, prefix)))


def _wait_for_model(base_url: str, model: str) -> None:
    """Until the server lists `model` (a worker of another process serves it); fails after 15 s."""
    deadline = time.monotonic() + 15
    with httpx.Client(base_url=f"{base_url}/inference", timeout=5) as http:
        while True:
            configs = http.get("/configs/model_configs").json()
            if model in [config["name"] for config in configs]:
                return
            assert time.monotonic() < deadline, f"{base_url} never listed {model}: {configs}"
            # Announcements are renewed every second; this polls the state a user would see.
            time.sleep(0.05)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_servers_share_one_chat_through_redis(
    make_settings: Callable[..., Settings], redis_prefix: str
) -> None:
    settings = make_settings(
        allow_debug_auth=True,
        pending_event_interval=0.05,
        redis_url=REDIS_URL,
        inference_auth_secret="shared-secret-of-both-servers",
    )
    with ExitStack() as stack:
        server_a = stack.enter_context(serve(settings))
        server_b = stack.enter_context(serve(settings))
        worker = stack.enter_context(
            WorkerProcess(server_a, mint_worker_key(server_a), "--fake-token-delay", "0.01")
        )
        worker.wait_for("registered")
        _wait_for_model(server_b, MODEL)

        client = ChatClient(server_b)
        stack.callback(client.close)
        chat_id = client.new_chat()
        message_id = client.ask(chat_id, "hello from the other side")
        events = list(client.events(chat_id, message_id))
        worker.wait_for("work request")

        # The same stream, read late through server A, is replayed from Redis.
        client_a = ChatClient(server_a)
        stack.callback(client_a.close)
        client_a.http.headers["Authorization"] = client.http.headers["Authorization"]
        replayed = list(client_a.events(chat_id, message_id))

    kinds = [event["event_type"] for event in events]
    assert kinds[-1] == "message"
    assert set(kinds[:-1]) <= {"pending", "token"}
    tokens = [event["text"] for event in events if event["event_type"] == "token"]
    assert "".join(tokens) == "You said: hello from the other side"
    assert events[-1]["message"]["state"] == "complete"
    assert events[-1]["message"]["content"] == "You said: hello from the other side"
    assert replayed == [event for event in events if event["event_type"] != "pending"]
