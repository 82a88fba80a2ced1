"""Statistics: system and tree counts, cached stats, leaderboards with levels, the trollboard."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.stats import repository
from oasst.collection.stats.schemas import (
    AllCachedStatsResponse,
    BoardParams,
    CachedStatsName,
    CachedStatsResponse,
    LeaderboardStats,
    SystemStats,
    TreeManagerStats,
    TreeMessageCountStats,
    TrollboardParams,
    TrollboardStats,
    TrollScore,
    UserScore,
    UserStatsTimeFrame,
)
from oasst.db.base import utcnow
from oasst.db.models import TrollStats, User, UserStats
from oasst.errors import OasstError
from oasst.jobs import locks
from oasst.protocol.collection import ErrorCode

# Level thresholds: 0, then the rounded running sum of 1.1521·k + 3 for k = 1..99 (0, 4, 9, 16, ... 6000).
LEVEL_THRESHOLDS = (0, *(round(x) for x in itertools.accumulate(1.1521 * k + 3 for k in range(1, 100))))


def level(score: int) -> int:
    """How many thresholds the score reaches: 1..100 for a user with stats."""
    return sum(1 for threshold in LEVEL_THRESHOLDS if threshold <= score)


def base_date(time_frame: UserStatsTimeFrame, now: datetime) -> datetime | None:
    """Where a frame starts: 24 h ago, UTC midnight 7 or 30 days ago, or nowhere (total)."""
    if time_frame is UserStatsTimeFrame.day:
        return now - timedelta(days=1)
    if time_frame is UserStatsTimeFrame.total:
        return None
    days = 7 if time_frame is UserStatsTimeFrame.week else 30
    day = (now.astimezone(UTC) - timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- system and tree manager stats -----------------------------------------------------------------------


async def system_stats(session: AsyncSession) -> SystemStats:
    """Message counts split by the deleted flag, live messages by language, and the number of trees."""
    by_deleted = await repository.message_counts_by_deleted(session)
    return SystemStats(
        all=sum(by_deleted.values()),
        active=by_deleted.get(False, 0),
        active_by_lang=await repository.active_messages_by_lang(session),
        deleted=by_deleted.get(True, 0),
        message_trees=await repository.root_count(session),
    )


async def tree_state_counts(session: AsyncSession) -> dict[str, int]:
    return await repository.tree_state_counts(session)


async def tree_message_counts(session: AsyncSession, *, only_active: bool) -> list[TreeMessageCountStats]:
    rows = await repository.tree_message_counts(session, only_active=only_active)
    return [TreeMessageCountStats(**row) for row in rows]


async def tree_manager_stats(session: AsyncSession) -> TreeManagerStats:
    return TreeManagerStats(
        state_counts=await tree_state_counts(session),
        message_counts=await tree_message_counts(session, only_active=True),
    )


# --- cached stats ----------------------------------------------------------------------------------------


async def update_cached_stats(session: AsyncSession) -> None:
    """Recompute and store every cached statistic (one lock: concurrent updates queue up)."""
    await locks.lock(session, "cached_stats")
    now = utcnow()
    values: dict[CachedStatsName, Any] = {
        CachedStatsName.human_messages_by_lang: await repository.human_messages_by(session, "lang"),
        CachedStatsName.human_messages_by_role: await repository.human_messages_by(session, "role"),
        CachedStatsName.message_trees_by_state: await repository.tree_state_counts(session),
        CachedStatsName.message_trees_states_by_lang: await repository.tree_states_by_lang(session),
        CachedStatsName.users_accepted_tos: {"count": await repository.users_accepted_tos(session)},
    }
    for name, stats in values.items():
        await repository.save_cached(session, name.value, stats, now)
    await session.flush()


def _cached_view(row: Any) -> CachedStatsResponse:
    return CachedStatsResponse(name=row.name, last_updated=row.modified_date, stats=row.stats)


async def cached_stats(session: AsyncSession, name: CachedStatsName) -> CachedStatsResponse:
    """One cached statistic; 400/6000 until it has been computed."""
    rows = await repository.cached(session, name.value)
    if not rows:
        raise OasstError(f"Cached stats '{name.value}' not available", ErrorCode.CACHED_STATS_NOT_AVAILABLE)
    return _cached_view(rows[0])


async def all_cached_stats(session: AsyncSession) -> AllCachedStatsResponse:
    return AllCachedStatsResponse(
        stats_by_name={row.name: _cached_view(row) for row in await repository.cached(session)}
    )


# --- leaderboards ----------------------------------------------------------------------------------------


async def refresh_time_frame(session: AsyncSession, time_frame: UserStatsTimeFrame) -> None:
    """Rebuild the user and troll stats of one frame, waiting for a refresh of it in progress elsewhere."""
    await locks.lock(session, f"leaderboard_{time_frame.value}")
    now = utcnow()
    start = base_date(time_frame, now)
    await repository.refresh_user_stats(session, time_frame.value, start, now)
    await repository.refresh_troll_stats(session, time_frame.value, start, now)
    await session.flush()


async def refresh_all(session: AsyncSession) -> None:
    for time_frame in UserStatsTimeFrame:
        await refresh_time_frame(session, time_frame)


def _score(stats: UserStats | None, user: User, viewer_id: uuid.UUID | None = None) -> UserScore:
    counts = {name: getattr(stats, name) for name in repository.USER_STATS_COUNTS} if stats else {}
    return UserScore(
        rank=stats.rank if stats else None,
        user_id=user.id,
        highlighted=viewer_id is not None and viewer_id == user.id,
        username=user.username,
        auth_method=user.auth_method,
        display_name=user.display_name,
        leader_score=stats.leader_score if stats else 0,
        level=level(stats.leader_score) if stats else 0,
        base_date=stats.base_date if stats else None,
        # A zeroed score is as of now, as upstream.
        modified_date=stats.modified_date if stats else utcnow(),
        **counts,
        streak_last_day_date=user.streak_last_day_date,
        streak_days=user.streak_days,
        last_activity_date=user.last_activity_date,
    )


def _last_updated(rows: Sequence[tuple[UserStats | TrollStats, User]]) -> datetime:
    """When the newest row of a board was computed (now for an empty board)."""
    return max((stats.modified_date for stats, _ in rows), default=utcnow())


def _board(
    time_frame: UserStatsTimeFrame, rows: list[tuple[UserStats, User]], viewer_id: uuid.UUID | None
) -> LeaderboardStats:
    return LeaderboardStats(
        time_frame=time_frame.value,
        last_updated=_last_updated(rows),
        leaderboard=[_score(stats, user, viewer_id) for stats, user in rows],
    )


async def leaderboard(session: AsyncSession, params: BoardParams, viewer: User | None) -> LeaderboardStats:
    """The shown and enabled users of a frame by rank, the viewer highlighted."""
    rows = await repository.leaderboard(session, params.time_frame.value, params.max_count)
    return _board(params.time_frame, rows, viewer.id if viewer else None)


async def user_scores(session: AsyncSession, user: User) -> dict[str, UserScore]:
    """The user's score in every frame; a frame without a stats row is zeroed (level 0)."""
    stats = await repository.user_stats(session, user.id)
    return {tf.value: _score(stats.get(tf.value), user) for tf in UserStatsTimeFrame}


async def user_score(session: AsyncSession, user: User, time_frame: UserStatsTimeFrame) -> UserScore:
    return (await user_scores(session, user))[time_frame.value]


async def user_window(
    session: AsyncSession, user: User, time_frame: UserStatsTimeFrame, window_size: int
) -> LeaderboardStats | None:
    """Exactly `window_size` leaderboard rows around the user (fewer only if the board is smaller).

    None when the user is hidden, disabled or not ranked in the frame.
    """
    if not (user.enabled and user.show_on_leaderboard and not user.deleted):
        return None
    stats = (await repository.user_stats(session, user.id)).get(time_frame.value)
    if stats is None or stats.rank is None:
        return None
    rows = await repository.window(session, time_frame.value, stats.rank, window_size)
    return _board(time_frame, rows, user.id)


def _troll(stats: TrollStats, user: User) -> TrollScore:
    values = {name: getattr(stats, name) for name in (*repository.TROLL_COUNTS, *repository.TROLL_AVERAGES)}
    return TrollScore(
        rank=stats.rank,
        user_id=user.id,
        username=user.username,
        auth_method=user.auth_method,
        display_name=user.display_name,
        last_activity_date=user.last_activity_date,
        enabled=user.enabled,
        deleted=user.deleted,
        show_on_leaderboard=user.show_on_leaderboard,
        troll_score=stats.troll_score,
        base_date=stats.base_date,
        modified_date=stats.modified_date,
        **values,
    )


async def trollboard(session: AsyncSession, params: TrollboardParams) -> TrollboardStats:
    """Users of a frame by troll score, worst first, optionally only enabled or only disabled ones."""
    rows = await repository.trollboard(session, params.time_frame.value, params.max_count, params.enabled)
    return TrollboardStats(
        time_frame=params.time_frame.value,
        last_updated=_last_updated(rows),
        trollboard=[_troll(stats, user) for stats, user in rows],
    )
