"""Fixed-window rate limiters: one in memory for a single process, one in Redis shared by all processes."""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from oasst.config import Settings

log = logging.getLogger(__name__)

# One round trip, atomic: count the hit, start the window on the first hit, and answer the time left in
# milliseconds when the hit is over the limit (-1 when it is allowed). A denied hit still counts; in a fixed
# window that changes nothing, the window ends at the same time.
_HIT_SCRIPT = """
local current = redis.call('INCR', KEYS[1])
if current == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if current <= tonumber(ARGV[1]) then
    return -1
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
end
return ttl
"""


class RateLimiter(abc.ABC):
    """Counts hits per key in fixed windows."""

    @abc.abstractmethod
    async def hit(self, key: str, times: int, seconds: float) -> float | None:
        """Count one hit on `key`: None if it is within `times` per `seconds`, else seconds until retry."""

    async def aclose(self) -> None:  # noqa: B027 - most limiters hold nothing to close
        """Release what the limiter holds."""


class MemoryRateLimiter(RateLimiter):
    """Windows in a dict: right for one server process (the embedded default)."""

    _SWEEP_EVERY = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key -> [hits, end of window]
        self._windows: dict[str, list[float]] = {}
        self._next_sweep = clock() + self._SWEEP_EVERY

    async def hit(self, key: str, times: int, seconds: float) -> float | None:
        # No await in here: on one event loop the read-modify-write is atomic.
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            window = self._windows[key] = [0, now + seconds]
        window[0] += 1
        if window[0] <= times:
            return None
        return window[1] - now

    def _sweep(self, now: float) -> None:
        """Forget ended windows, so keys of users long gone do not pile up."""
        self._windows = {key: window for key, window in self._windows.items() if window[1] > now}
        self._next_sweep = now + self._SWEEP_EVERY


class RedisRateLimiter(RateLimiter):
    """Windows in Redis, one atomic script call per hit. Fails open (and says so) when Redis is down."""

    _WARN_EVERY = 60.0

    def __init__(self, client: Redis, prefix: str = "oasst:ratelimit:", owns_client: bool = False) -> None:
        self._client = client
        self._prefix = prefix
        self._owns_client = owns_client
        self._script = client.register_script(_HIT_SCRIPT)
        self._next_warning = 0.0

    async def hit(self, key: str, times: int, seconds: float) -> float | None:
        milliseconds = max(1, round(seconds * 1000))
        try:
            ttl = int(await self._script(keys=[self._prefix + key], args=[times, milliseconds]))
        except RedisError as error:
            # Limits are a guard, not a gate: an outage of Redis must not take task requests down with it.
            # /health reports the outage.
            now = time.monotonic()
            if now >= self._next_warning:
                self._next_warning = now + self._WARN_EVERY
                log.warning("rate limiter: Redis unavailable, requests are not limited: %s", error)
            return None
        if ttl < 0:
            return None
        return ttl / 1000

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def build_rate_limiter(settings: Settings, redis: Redis | None) -> RateLimiter | None:
    """The limiter the settings ask for: None when limits are off, Redis when there is one, else memory."""
    if not settings.rate_limit:
        return None
    if redis is not None:
        return RedisRateLimiter(redis)
    return MemoryRateLimiter()
