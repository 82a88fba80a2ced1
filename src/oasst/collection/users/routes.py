"""Routes of /api/v1/users (by backend id) and /api/v1/frontend_users (by the frontend's own identity).

Untrusted clients see only their own client's users, and those users' stats and messages; anything else is
403/2.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from starlette.status import HTTP_204_NO_CONTENT

from oasst.collection.deps import ApiClientDep, SessionDep, TrustedClientDep, ViewerDep
from oasst.collection.messages import service as messages_service
from oasst.collection.messages.schemas import MessageListingDep, MessagePageDep
from oasst.collection.stats import service as stats_service
from oasst.collection.stats.schemas import LeaderboardStats, UserScore, UserStatsTimeFrame
from oasst.collection.users import service
from oasst.collection.users.schemas import (
    AuthMethod,
    DisplayNameListingDep,
    FrontEndUserPage,
    SearchText,
    UserCount,
    UserFilter,
    UserListingDep,
)
from oasst.db.models import User
from oasst.protocol import collection as wire

users_router = APIRouter(prefix="/users", tags=["users"])
router = APIRouter(prefix="/frontend_users", tags=["frontend_users"])

UserCursor = Annotated[str | None, Query(max_length=512)]
AuthMethodPath = Annotated[str, Path(max_length=128)]
UsernamePath = Annotated[str, Path(max_length=128)]


async def _user(session: SessionDep, client: ApiClientDep, user_id: uuid.UUID) -> User:
    return await service.get_visible(session, client, user_id)


async def _frontend_user(
    session: SessionDep,
    client: ApiClientDep,
    auth_method: AuthMethodPath,
    username: UsernamePath,
    api_client_id: uuid.UUID | None = None,
) -> User:
    return await service.by_frontend_identity(session, client, auth_method, username, api_client_id)


async def _own_frontend_user(
    session: SessionDep, client: ApiClientDep, auth_method: AuthMethodPath, username: UsernamePath
) -> User:
    return await service.by_frontend_identity(session, client, auth_method, username)


UserDep = Annotated[User, Depends(_user)]
# By frontend identity in the calling client, or (trusted clients) in the client named by api_client_id.
FrontendUserDep = Annotated[User, Depends(_frontend_user)]
OwnFrontendUserDep = Annotated[User, Depends(_own_frontend_user)]


# --- /users listings: declared before /users/{user_id}, which would otherwise match them -----------------


@users_router.get("/by_username", response_model=list[wire.FrontEndUser])
async def get_users_ordered_by_username(
    session: SessionDep, client: ApiClientDep, params: UserListingDep, desc: bool = False
) -> list[wire.FrontEndUser]:
    return await service.listing(session, client, "username", params, desc=desc)


@users_router.get("/by_display_name", response_model=list[wire.FrontEndUser])
async def get_users_ordered_by_display_name(
    session: SessionDep, client: ApiClientDep, params: DisplayNameListingDep, desc: bool = False
) -> list[wire.FrontEndUser]:
    return await service.listing(session, client, "display_name", params, desc=desc)


@users_router.get("/cursor", response_model=FrontEndUserPage)
async def get_users_cursor(
    session: SessionDep,
    client: ApiClientDep,
    before: UserCursor = None,
    after: UserCursor = None,
    sort_key: Annotated[str, Query(max_length=32)] = "username",
    max_count: UserCount = 100,
    api_client_id: uuid.UUID | None = None,
    search_text: SearchText = None,
    auth_method: AuthMethod = None,
) -> FrontEndUserPage:
    return await service.page(
        session,
        client,
        UserFilter(api_client_id, auth_method, search_text),
        sort_key=sort_key,
        before=before,
        after=after,
        max_count=max_count,
    )


# --- /users/{user_id} -------------------------------------------------------------------------------------


@users_router.get("/{user_id}", response_model=wire.FrontEndUser)
async def get_user(
    user_id: uuid.UUID, session: SessionDep, client: ApiClientDep, api_client_id: uuid.UUID | None = None
) -> wire.FrontEndUser:
    return service.to_wire(await service.get_visible(session, client, user_id, api_client_id))


@users_router.put("/{user_id}", status_code=HTTP_204_NO_CONTENT, response_class=Response)
async def update_user(
    user_id: uuid.UUID,
    session: SessionDep,
    _client: TrustedClientDep,
    display_name: Annotated[str | None, Query(max_length=256)] = None,
    enabled: bool | None = None,
    notes: Annotated[str | None, Query(max_length=1024)] = None,
    show_on_leaderboard: bool | None = None,
    tos_acceptance: bool | None = None,
) -> None:
    await service.update(
        session,
        user_id,
        display_name=display_name,
        enabled=enabled,
        notes=notes,
        show_on_leaderboard=show_on_leaderboard,
        tos_acceptance=tos_acceptance,
    )


@users_router.delete("/{user_id}", status_code=HTTP_204_NO_CONTENT, response_class=Response)
async def delete_user(user_id: uuid.UUID, session: SessionDep, _client: TrustedClientDep) -> None:
    await service.delete(session, user_id)


@users_router.get("/{user_id}/messages", response_model=list[wire.Message])
async def query_user_messages(
    session: SessionDep,
    client: ApiClientDep,
    user: UserDep,
    viewer: ViewerDep,
    params: MessageListingDep,
    api_client_id: uuid.UUID | None = None,
) -> list[wire.Message]:
    where = params.where(user_id=user.id, api_client_id=api_client_id)
    return await messages_service.listing(session, client, viewer, where, params)


@users_router.get("/{user_id}/messages/cursor", response_model=wire.MessagePage)
async def query_user_messages_cursor(
    session: SessionDep, client: ApiClientDep, user: UserDep, viewer: ViewerDep, params: MessagePageDep
) -> wire.MessagePage:
    return await messages_service.page(session, client, viewer, params.where(user_id=user.id), params)


@users_router.get("/{user_id}/stats", response_model=dict[str, UserScore])
async def query_user_stats(session: SessionDep, user: UserDep) -> dict[str, UserScore]:
    return await stats_service.user_scores(session, user)


@users_router.get("/{user_id}/stats/{time_frame}", response_model=UserScore)
async def query_user_stats_timeframe(
    time_frame: UserStatsTimeFrame, session: SessionDep, user: UserDep
) -> UserScore:
    return await stats_service.user_score(session, user, time_frame)


@users_router.get("/{user_id}/stats/{time_frame}/window", response_model=LeaderboardStats | None)
async def query_user_stats_timeframe_window(
    time_frame: UserStatsTimeFrame,
    session: SessionDep,
    user: UserDep,
    window_size: Annotated[int, Query(gt=0, le=100)] = 5,
) -> LeaderboardStats | None:
    return await stats_service.user_window(session, user, time_frame, window_size)


# --- /frontend_users ----------------------------------------------------------------------------------------


@router.get("/", response_model=list[wire.FrontEndUser], deprecated=True)
async def get_frontend_users_ordered_by_username(
    session: SessionDep, client: ApiClientDep, params: UserListingDep
) -> list[wire.FrontEndUser]:
    return await service.listing(session, client, "username", params, desc=False)


@router.post("/", response_model=wire.FrontEndUser)
async def create_frontend_user(
    body: wire.CreateFrontendUserRequest, session: SessionDep, client: ApiClientDep
) -> wire.FrontEndUser:
    return service.to_wire(await service.upsert(session, client, body))


@router.get("/{auth_method}/{username}", response_model=wire.FrontEndUser)
async def get_frontend_user(user: FrontendUserDep) -> wire.FrontEndUser:
    return service.to_wire(user)


@router.get("/{auth_method}/{username}/messages", response_model=list[wire.Message])
async def query_frontend_user_messages(
    session: SessionDep,
    client: ApiClientDep,
    params: MessageListingDep,  # before the user: its api_client_id comes last in the documented order
    user: FrontendUserDep,
    viewer: ViewerDep,
) -> list[wire.Message]:
    return await messages_service.listing(session, client, viewer, params.where(user_id=user.id), params)


@router.get("/{auth_method}/{username}/messages/cursor", response_model=wire.MessagePage)
async def query_frontend_user_messages_cursor(
    session: SessionDep,
    client: ApiClientDep,
    user: OwnFrontendUserDep,
    viewer: ViewerDep,
    params: MessagePageDep,
) -> wire.MessagePage:
    return await messages_service.page(session, client, viewer, params.where(user_id=user.id), params)
