"""Routes of /api/v1/stats, /api/v1/leaderboards and /api/v1/trollboards."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.status import HTTP_204_NO_CONTENT

from oasst.collection.deps import ApiClientDep, SessionDep, TrustedClientDep, ViewerDep
from oasst.collection.stats import schemas, service

stats_router = APIRouter(prefix="/stats", tags=["stats"])
leaderboards_router = APIRouter(prefix="/leaderboards", tags=["leaderboards"])
trollboards_router = APIRouter(prefix="/trollboards", tags=["trollboards"])


@stats_router.get("/", response_model=schemas.SystemStats)
async def get_message_stats(session: SessionDep, _client: TrustedClientDep) -> schemas.SystemStats:
    return await service.system_stats(session)


@stats_router.get("/tree_manager/state_counts", response_model=dict[str, int])
async def get_tree_manager__state_counts(session: SessionDep, _client: TrustedClientDep) -> dict[str, int]:
    return await service.tree_state_counts(session)


@stats_router.get("/tree_manager/message_counts", response_model=list[schemas.TreeMessageCountStats])
async def get_tree_manager__message_counts(
    session: SessionDep, _client: TrustedClientDep, only_active: bool = True
) -> list[schemas.TreeMessageCountStats]:
    return await service.tree_message_counts(session, only_active=only_active)


@stats_router.get("/tree_manager", response_model=schemas.TreeManagerStats)
async def get_tree_manager__stats(session: SessionDep, _client: TrustedClientDep) -> schemas.TreeManagerStats:
    return await service.tree_manager_stats(session)


@stats_router.get("/cached/{name}", response_model=schemas.CachedStatsResponse)
async def get_cached_stats(
    name: schemas.CachedStatsName, session: SessionDep, _client: ApiClientDep
) -> schemas.CachedStatsResponse:
    return await service.cached_stats(session, name)


@stats_router.get("/cached", response_model=schemas.AllCachedStatsResponse)
async def get_cached_stats_all(session: SessionDep, _client: ApiClientDep) -> schemas.AllCachedStatsResponse:
    return await service.all_cached_stats(session)


@stats_router.post("/cached/update", status_code=HTTP_204_NO_CONTENT, response_class=Response)
async def update_cached_stats(session: SessionDep, _client: TrustedClientDep) -> None:
    await service.update_cached_stats(session)


@leaderboards_router.get("/{time_frame}", response_model=schemas.LeaderboardStats)
async def get_leaderboard(
    session: SessionDep, viewer: ViewerDep, params: schemas.BoardDep
) -> schemas.LeaderboardStats:
    return await service.leaderboard(session, params, viewer)


@leaderboards_router.post("/update/{time_frame}", status_code=HTTP_204_NO_CONTENT, response_class=Response)
async def update_leaderboard_time_frame(
    time_frame: schemas.UserStatsTimeFrame, session: SessionDep, _client: TrustedClientDep
) -> None:
    await service.refresh_time_frame(session, time_frame)


@leaderboards_router.post("/update", status_code=HTTP_204_NO_CONTENT, response_class=Response)
async def update_leaderboards_all(session: SessionDep, _client: TrustedClientDep) -> None:
    await service.refresh_all(session)


@trollboards_router.get("/{time_frame}", response_model=schemas.TrollboardStats)
async def get_trollboard(
    session: SessionDep, _client: TrustedClientDep, params: schemas.TrollboardDep
) -> schemas.TrollboardStats:
    return await service.trollboard(session, params)
