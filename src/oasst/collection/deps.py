"""Request dependencies of /api/v1: the transaction, the calling API client and the current user."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.auth import service as auth_service
from oasst.collection.users import service as users_service
from oasst.config import Settings
from oasst.db.models import ApiClient, User
from oasst.db.session import transaction
from oasst.errors import forbidden


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with transaction(request.app.state.sessions) as session:
        yield session


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _rng(request: Request) -> random.Random:
    rng: random.Random = request.app.state.rng
    return rng


# scope="function": the transaction commits before the response leaves, so a client never reads its own
# write as missing.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(_settings)]
RngDep = Annotated[random.Random, Depends(_rng)]


async def _api_client(
    request: Request,
    session: SessionDep,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
    api_key: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> ApiClient:
    # The query value wins when both are given, as upstream.
    return await auth_service.authenticate(session, api_key or x_api_key, request.app.state.api_clients)


async def _trusted_client(client: Annotated[ApiClient, Depends(_api_client)]) -> ApiClient:
    if not client.trusted:
        raise forbidden()
    return client


ApiClientDep = Annotated[ApiClient, Depends(_api_client)]
TrustedClientDep = Annotated[ApiClient, Depends(_trusted_client)]


@dataclass(frozen=True)
class FrontendIdentity:
    """The `x-oasst-user` header: who the frontend says is looking (`auth_method:username`)."""

    auth_method: str
    username: str


async def _frontend_identity(
    x_oasst_user: Annotated[str | None, Header(include_in_schema=False)] = None,
    oasst_user: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> FrontendIdentity | None:
    raw = oasst_user or x_oasst_user
    if not raw or ":" not in raw:
        return None
    auth_method, username = raw.split(":", 1)
    return FrontendIdentity(auth_method, username)


FrontendIdentityDep = Annotated[FrontendIdentity | None, Depends(_frontend_identity)]


async def _viewer(session: SessionDep, client: ApiClientDep, identity: FrontendIdentityDep) -> User | None:
    return await users_service.by_header(session, client, identity)


# The user the `x-oasst-user` header names: None without the header, 404/4002 if the client knows nobody so.
ViewerDep = Annotated[User | None, Depends(_viewer)]
