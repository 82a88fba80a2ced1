"""Routes of /api/v1/admin, and the moderators' bulk deletes under /users and /frontend_users."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.status import HTTP_204_NO_CONTENT

from oasst.collection.admin import service
from oasst.collection.admin.schemas import (
    CreateApiClientRequest,
    FlaggedMessagePage,
    FlaggedMessageResponse,
    MergeUsersRequest,
    PublicSettings,
    PurgeResultModel,
)
from oasst.collection.deps import ApiClientDep, RngDep, SessionDep, SettingsDep, TrustedClientDep
from oasst.collection.messages.schemas import Cursor, MaxCount

router = APIRouter(prefix="/admin", tags=["admin"])
# DELETE routes under paths whose other methods belong to the users domain.
moderation_router = APIRouter()

_bearer = HTTPBearer(auto_error=False)


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@router.post("/api_client", response_model=str)
async def create_api_client(
    body: CreateApiClientRequest, session: SessionDep, settings: SettingsDep, credentials: BearerDep
) -> str:
    token = credentials.credentials if credentials is not None else None
    return await service.create_api_client(session, settings, token, body)


@router.get("/backend_settings/full")
async def get_backend_settings_full(_client: TrustedClientDep, settings: SettingsDep) -> dict[str, Any]:
    return service.full_settings(settings)


@router.get("/backend_settings/public", response_model=PublicSettings)
async def get_backend_settings_public(_client: ApiClientDep, settings: SettingsDep) -> PublicSettings:
    return service.public_settings(settings)


@router.post("/purge_user/{user_id}", response_model=PurgeResultModel)
async def purge_user(
    user_id: uuid.UUID,
    session: SessionDep,
    _client: TrustedClientDep,
    settings: SettingsDep,
    rng: RngDep,
    preview: bool = True,
    ban: bool = True,
) -> PurgeResultModel:
    return await service.purge_user(session, settings, rng, user_id, preview=preview, ban=ban)


@router.post("/purge_user/{user_id}/messages", response_model=PurgeResultModel)
async def purge_user_messages(
    user_id: uuid.UUID,
    session: SessionDep,
    _client: TrustedClientDep,
    settings: SettingsDep,
    rng: RngDep,
    purge_initial_prompts: bool = False,
    min_date: datetime | None = None,
    max_date: datetime | None = None,
    preview: bool = True,
) -> PurgeResultModel:
    return await service.purge_user_messages(
        session,
        settings,
        rng,
        user_id,
        purge_initial_prompts=purge_initial_prompts,
        min_date=min_date,
        max_date=max_date,
        preview=preview,
    )


@router.get("/flagged_messages/cursor", response_model=FlaggedMessagePage)
async def get_flagged_messages_cursor(
    session: SessionDep,
    _client: TrustedClientDep,
    before: Cursor = None,
    after: Cursor = None,
    max_count: MaxCount = 10,
    desc: bool = False,
) -> FlaggedMessagePage:
    return await service.flagged_page(session, before=before, after=after, max_count=max_count, desc=desc)


# Upstream requires max_count; it defaults to 10 here, as on every other listing.
@router.get("/flagged_messages", response_model=list[FlaggedMessageResponse])
async def get_flagged_messages(
    session: SessionDep, _client: TrustedClientDep, max_count: MaxCount = 10
) -> list[FlaggedMessageResponse]:
    return await service.flagged_messages(session, max_count)


@router.post("/flagged_messages/{message_id}/processed", response_model=FlaggedMessageResponse)
async def process_flagged_message(
    message_id: uuid.UUID, session: SessionDep, _client: TrustedClientDep
) -> FlaggedMessageResponse:
    return await service.process_flagged(session, message_id)


@router.post("/merge_users", status_code=HTTP_204_NO_CONTENT)
async def merge_users(body: MergeUsersRequest, session: SessionDep, _client: TrustedClientDep) -> Response:
    await service.merge_users(session, body.destination_user_id, body.source_user_ids)
    return Response(status_code=HTTP_204_NO_CONTENT)


@moderation_router.delete("/users/{user_id}/messages", status_code=HTTP_204_NO_CONTENT, tags=["users"])
async def delete_user_messages(
    user_id: uuid.UUID, session: SessionDep, _client: TrustedClientDep, settings: SettingsDep, rng: RngDep
) -> Response:
    await service.delete_user_messages(session, settings, rng, user_id)
    return Response(status_code=HTTP_204_NO_CONTENT)


@moderation_router.delete(
    "/frontend_users/{auth_method}/{username}/messages",
    status_code=HTTP_204_NO_CONTENT,
    tags=["frontend_users"],
)
async def delete_frontend_user_messages(
    auth_method: Annotated[str, Path(max_length=128)],
    username: Annotated[str, Path(max_length=128)],
    session: SessionDep,
    client: TrustedClientDep,
    settings: SettingsDep,
    rng: RngDep,
) -> Response:
    await service.delete_frontend_user_messages(session, client, settings, rng, auth_method, username)
    return Response(status_code=HTTP_204_NO_CONTENT)
