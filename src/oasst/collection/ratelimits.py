"""The rate limits of POST /api/v1/tasks/: four fixed windows, per user and per API client."""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

from fastapi import Request

from oasst.config import Settings
from oasst.errors import OasstError
from oasst.protocol import collection as wire
from oasst.ratelimit import RateLimiter


@lru_cache(maxsize=1024)
def _client_key(api_key: str) -> str:
    """The API key as it appears in limiter keys: hashed, so Redis never holds a usable key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


def too_many_requests(retry_after: float) -> OasstError:
    seconds = max(1, math.ceil(retry_after))
    return OasstError(
        f"Too Many Requests. Retry After {seconds} seconds.",
        wire.ErrorCode.TOO_MANY_REQUESTS,
        429,
        headers={"Retry-After": str(seconds)},
    )


async def _hit(limiter: RateLimiter, settings: Settings, window: str, key: str) -> None:
    """Count a request in `key`, a window sized by the settings `rate_limit_<window>_times` and `_minutes`."""
    times: int = getattr(settings, f"rate_limit_{window}_times")
    minutes: int = getattr(settings, f"rate_limit_{window}_minutes")
    retry_after = await limiter.hit(key, times, minutes * 60)
    if retry_after is not None:
        raise too_many_requests(retry_after)


# The window an explicit reply request counts against besides the user's: its key prefix and its settings.
_REPLY_WINDOWS = {
    wire.TaskRequestType.assistant_reply: ("assistant_reply", "assistant_user"),
    wire.TaskRequestType.prompter_reply: ("prompter_reply", "prompter_user"),
}


async def check_task_request(request: Request, body: wire.TaskRequest) -> None:
    """Count a task request against its limits; raise 429 (error code 429) when one is used up.

    A request for a user counts against that user's window and, for an explicit `assistant_reply` or
    `prompter_reply`, against that type's window too; a request without a user counts against the API
    client's window. The first exhausted window answers.
    """
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is None:
        return
    settings: Settings = request.app.state.settings
    # The query value wins over the header, as in authentication.
    client = _client_key(request.query_params.get("api_key") or request.headers.get("x-api-key") or "")
    if body.user is None:
        await _hit(limiter, settings, "task_api", f"task_api:{client}")
        return
    user = request.headers.get("x-oasst-user") or f"{body.user.auth_method}:{body.user.id}"
    await _hit(limiter, settings, "task_user", f"task_user:{client}:{user}")
    if body.type in _REPLY_WINDOWS:
        prefix, window = _REPLY_WINDOWS[body.type]
        await _hit(limiter, settings, window, f"{prefix}:{client}:{user}")
