"""Rate limits: the fixed-window limiters (memory, Redis) and the four task-request windows behind a 429."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis
from redis.exceptions import RedisError

from oasst.app import create_app
from oasst.config import Settings
from oasst.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tests.conftest import REDIS_URL, missing_service


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _redis_or_skip() -> Redis:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        await client.aclose()
        missing_service("Redis", error)
    return client


async def _keys(client: Redis, pattern: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=pattern)]


async def _delete_keys(client: Redis, pattern: str) -> None:
    keys = await _keys(client, pattern)
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis_limiter() -> AsyncIterator[tuple[RedisRateLimiter, Redis, str]]:
    """A Redis limiter writing under a prefix of its own; its keys are deleted afterwards."""
    client = await _redis_or_skip()
    prefix = f"oasst-test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter(client, prefix=prefix)
    try:
        yield limiter, client, prefix
    finally:
        await _delete_keys(client, prefix + "*")
        await client.aclose()


# --- the limiters ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_memory_limiter_allows_times_hits_per_window_then_tells_when_to_retry() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    assert [await limiter.hit("k", 3, 60) for _ in range(3)] == [None, None, None]
    clock.now += 15
    assert await limiter.hit("k", 3, 60) == pytest.approx(45)
    clock.now += 44.5
    assert await limiter.hit("k", 3, 60) == pytest.approx(0.5)
    clock.now += 0.5
    assert await limiter.hit("k", 3, 60) is None


@pytest.mark.anyio
async def test_memory_limiter_keys_are_independent() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())
    assert await limiter.hit("a", 1, 60) is None
    assert await limiter.hit("a", 1, 60) is not None
    assert await limiter.hit("b", 1, 60) is None


@pytest.mark.anyio
async def test_memory_limiter_forgets_ended_windows() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for n in range(100):
        await limiter.hit(f"user-{n}", 5, 10)
    clock.now += 61
    await limiter.hit("late", 5, 10)
    assert list(limiter._windows) == ["late"]


@pytest.mark.anyio
async def test_redis_limiter_window_and_retry_after(
    redis_limiter: tuple[RedisRateLimiter, Redis, str],
) -> None:
    limiter, client, prefix = redis_limiter
    assert [await limiter.hit("k", 2, 60) for _ in range(2)] == [None, None]
    retry_after = await limiter.hit("k", 2, 60)
    assert retry_after is not None
    assert 59 < retry_after <= 60
    # The window ends by itself: the key carries the window as its expiry.
    assert 59_000 < await client.pttl(prefix + "k") <= 60_000


@pytest.mark.anyio
async def test_redis_limiter_allows_again_once_the_window_ends(
    redis_limiter: tuple[RedisRateLimiter, Redis, str],
) -> None:
    limiter, _client, _prefix = redis_limiter
    assert await limiter.hit("short", 1, 0.2) is None
    retry_after = await limiter.hit("short", 1, 0.2)
    assert retry_after is not None
    assert 0 < retry_after <= 0.2
    # Waiting the announced time is the contract under test.
    await asyncio.sleep(retry_after + 0.05)
    assert await limiter.hit("short", 1, 0.2) is None


@pytest.mark.anyio
async def test_redis_limiter_keys_are_independent(redis_limiter: tuple[RedisRateLimiter, Redis, str]) -> None:
    limiter, _client, _prefix = redis_limiter
    assert await limiter.hit("a", 1, 60) is None
    assert await limiter.hit("a", 1, 60) is not None
    assert await limiter.hit("b", 1, 60) is None


@pytest.mark.anyio
async def test_redis_limiter_shares_windows_between_instances(
    redis_limiter: tuple[RedisRateLimiter, Redis, str],
) -> None:
    limiter, client, prefix = redis_limiter
    other_process = RedisRateLimiter(client, prefix=prefix)
    assert await limiter.hit("k", 1, 60) is None
    assert await other_process.hit("k", 1, 60) is not None


@pytest.mark.anyio
async def test_redis_limiter_fails_open_when_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisRateLimiter(
        Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1), owns_client=True
    )
    with caplog.at_level(logging.WARNING, logger="oasst.ratelimit"):
        assert await limiter.hit("k", 0, 60) is None
        assert await limiter.hit("k", 0, 60) is None
    await limiter.aclose()
    assert len([r for r in caplog.records if "Redis unavailable" in r.getMessage()]) == 1


# --- POST /tasks/ windows ------------------------------------------------------------------------------

TASKS_PATH = "/api/v1/tasks/"


def _user(user_id: str = "u1") -> dict[str, str]:
    return {"id": user_id, "display_name": user_id, "auth_method": "local"}


def _limits(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "rate_limit": True,
        "rate_limit_task_user_times": 100,
        "rate_limit_task_api_times": 100,
        "rate_limit_assistant_user_times": 100,
        "rate_limit_prompter_user_times": 100,
    }
    values.update(overrides)
    return values


@pytest.fixture
def limited_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Start the app with the given settings overrides and an API key of its own."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> TestClient:
            api_key = f"ratelimit-test-{uuid.uuid4().hex}"
            settings = make_settings(bootstrap_api_key=api_key, **_limits(**overrides))
            client = TestClient(create_app(settings), headers={"X-API-Key": api_key})
            return stack.enter_context(client)

        yield start


def _assert_too_many(response: Any, window: int) -> None:
    """A 429 whose Retry-After (header and message agree) is what is left of a `window`-second window.

    The window started with the first request of the test, a moment ago: on a busy machine a few seconds of
    it may already have passed.
    """
    assert response.status_code == 429
    seconds = int(response.headers["retry-after"])
    assert window - 15 <= seconds <= window
    assert list(response.json().items()) == [
        ("error_code", 429),
        ("message", f"Too Many Requests. Retry After {seconds} seconds."),
    ]


def test_user_window(limited_client: Callable[..., TestClient]) -> None:
    client = limited_client(rate_limit_task_user_times=2, rate_limit_task_user_minutes=4)
    for _ in range(2):
        assert client.post(TASKS_PATH, json={"type": "random", "user": _user()}).status_code != 429
    _assert_too_many(client.post(TASKS_PATH, json={"type": "random", "user": _user()}), 240)
    # Another user of the same client has a window of their own.
    assert client.post(TASKS_PATH, json={"type": "random", "user": _user("u2")}).status_code != 429


def test_user_is_the_oasst_user_header_when_given(limited_client: Callable[..., TestClient]) -> None:
    client = limited_client(rate_limit_task_user_times=1)
    headers = {"x-oasst-user": "local:same"}
    assert client.post(TASKS_PATH, json={"user": _user("a")}, headers=headers).status_code != 429
    _assert_too_many(client.post(TASKS_PATH, json={"user": _user("b")}, headers=headers), 240)


def test_api_client_window_counts_requests_without_a_user(limited_client: Callable[..., TestClient]) -> None:
    client = limited_client(rate_limit_task_api_times=2, rate_limit_task_api_minutes=1)
    for _ in range(2):
        assert client.post(TASKS_PATH, json={"type": "random"}).status_code != 429
    _assert_too_many(client.post(TASKS_PATH, json={"type": "random"}), 60)
    # Requests for a user are limited per user, not per client.
    assert client.post(TASKS_PATH, json={"type": "random", "user": _user()}).status_code != 429


@pytest.mark.parametrize(
    ("task_type", "setting"), [("assistant_reply", "assistant"), ("prompter_reply", "prompter")]
)
def test_explicit_reply_windows(
    limited_client: Callable[..., TestClient], task_type: str, setting: str
) -> None:
    client = limited_client(
        **{f"rate_limit_{setting}_user_times": 1, f"rate_limit_{setting}_user_minutes": 2}
    )
    assert client.post(TASKS_PATH, json={"type": task_type, "user": _user()}).status_code != 429
    _assert_too_many(client.post(TASKS_PATH, json={"type": task_type, "user": _user()}), 120)
    # Other task types, and other users, are not held back by this window.
    assert client.post(TASKS_PATH, json={"type": "random", "user": _user()}).status_code != 429
    assert client.post(TASKS_PATH, json={"type": task_type, "user": _user("u2")}).status_code != 429
    # Without a user the reply windows do not apply.
    assert client.post(TASKS_PATH, json={"type": task_type}).status_code != 429
    assert client.post(TASKS_PATH, json={"type": task_type}).status_code != 429


def test_rate_limit_false_switches_every_window_off(limited_client: Callable[..., TestClient]) -> None:
    client = limited_client(rate_limit=False, rate_limit_task_user_times=1, rate_limit_task_api_times=1)
    assert client.app.state.rate_limiter is None
    for _ in range(3):
        assert client.post(TASKS_PATH, json={"user": _user()}).status_code != 429
        assert client.post(TASKS_PATH, json={}).status_code != 429


def test_windows_live_in_memory_without_redis(limited_client: Callable[..., TestClient]) -> None:
    client = limited_client()
    assert isinstance(client.app.state.rate_limiter, MemoryRateLimiter)


def test_windows_live_in_redis_when_configured(limited_client: Callable[..., TestClient]) -> None:
    probe = Redis.from_url(REDIS_URL, socket_connect_timeout=2)

    async def ping() -> None:
        try:
            await probe.ping()
        finally:
            await probe.aclose()

    try:
        asyncio.run(ping())
    except (RedisError, OSError) as error:
        missing_service("Redis", error)
    user_id = f"redis-user-{uuid.uuid4().hex}"
    client = limited_client(redis_url=REDIS_URL, rate_limit_task_user_times=1)
    limiter: RateLimiter = client.app.state.rate_limiter
    assert isinstance(limiter, RedisRateLimiter)
    try:
        assert client.post(TASKS_PATH, json={"user": _user(user_id)}).status_code != 429
        _assert_too_many(client.post(TASKS_PATH, json={"user": _user(user_id)}), 240)
        keys = client.portal.call(_keys, client.app.state.redis, f"oasst:ratelimit:*{user_id}")
        assert len(keys) == 1
        # The key of the API client is stored hashed, never as the usable key.
        assert client.headers["x-api-key"].encode() not in keys[0]
    finally:
        redis: Redis = client.app.state.redis
        client.portal.call(_delete_keys, redis, f"oasst:ratelimit:*{user_id}")
