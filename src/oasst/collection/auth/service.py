"""Minting, bootstrapping and checking API keys (stored as sha256, compared in constant time)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.auth import repository
from oasst.db.models import ApiClient
from oasst.errors import OasstError, not_authorized
from oasst.protocol.collection import ErrorCode

log = logging.getLogger(__name__)
T = TypeVar("T")


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class NewApiClient:
    client: ApiClient
    api_key: str


async def create_client(
    session: AsyncSession,
    description: str,
    *,
    trusted: bool = False,
    frontend_type: str = "",
    admin_email: str | None = None,
    api_key: str | None = None,
) -> NewApiClient:
    """Create a client; the key (random 32 bytes in hex unless given) is returned once and only hashed."""
    api_key = api_key or secrets.token_hex(32)
    client = ApiClient(
        api_key_hash=hash_key(api_key),
        description=description,
        trusted=trusted,
        frontend_type=frontend_type,
        admin_email=admin_email,
        enabled=True,
    )
    session.add(client)
    await session.flush()
    return NewApiClient(client, api_key)


async def list_clients(session: AsyncSession) -> Sequence[ApiClient]:
    """Every client, by description."""
    return await repository.all_clients(session)


async def set_enabled(session: AsyncSession, client_id: uuid.UUID, enabled: bool) -> ApiClient:
    """Switch a client on or off; processes that checked its key lately notice within their cache's ttl."""
    client = await repository.by_id(session, client_id)
    if client is None:
        raise OasstError("API client not found", ErrorCode.GENERIC_ERROR, 404)
    client.enabled = enabled
    await session.flush()
    return client


async def prepare_clients(session: AsyncSession, bootstrap_api_key: str | None) -> None:
    """At start-up: create the bootstrap client if configured, and say how to get a key if there is none."""
    if bootstrap_api_key:
        await ensure_bootstrap_client(session, bootstrap_api_key)
    elif not await repository.any_client(session):
        log.warning(
            "No API client exists yet: create a key with `oasst api-client create NAME --trusted` "
            "or set OASST_BOOTSTRAP_API_KEY."
        )


async def ensure_bootstrap_client(session: AsyncSession, api_key: str) -> ApiClient:
    """The trusted client behind OASST_BOOTSTRAP_API_KEY, created on first start."""
    existing = await repository.by_key_hash(session, hash_key(api_key))
    if existing is not None:
        return existing
    new = await create_client(
        session,
        "Bootstrap client (OASST_BOOTSTRAP_API_KEY)",
        trusted=True,
        frontend_type="web",
        api_key=api_key,
    )
    return new.client


class KeyCache(Generic[T]):
    """What recently seen keys stood for (by key hash), so a busy caller costs no lookup per request.

    An entry lives `ttl` seconds: for an API client, disabling it or changing its trust takes effect within
    that time.
    """

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, T]] = {}

    def get(self, key_hash: str) -> T | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, value: T) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic() + self.ttl, value)


async def authenticate(
    session: AsyncSession, api_key: str | None, cache: KeyCache[ApiClient] | None = None
) -> ApiClient:
    """The enabled client owning `api_key`, or the spec's 403/2."""
    if not api_key:
        raise not_authorized()
    key_hash = hash_key(api_key)
    cached = cache.get(key_hash) if cache is not None else None
    if cached is not None:
        return cached
    client = await repository.by_key_hash(session, key_hash)
    # The lookup is by hash, so timing reveals nothing of the key; the compare keeps it explicit.
    if client is None or not client.enabled or not hmac.compare_digest(client.api_key_hash, key_hash):
        raise not_authorized()
    if cache is not None:
        session.expunge(client)  # read-only from here on, shared by later requests
        cache.put(key_hash, client)
    return client
