"""The periodic jobs, each idempotent and guarded by a lock so that only one process runs it at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from oasst.collection.stats import service as stats_service
from oasst.collection.stats.schemas import UserStatsTimeFrame
from oasst.collection.users import service as users_service
from oasst.config import Settings
from oasst.db.base import utcnow
from oasst.db.session import create_engine, sessionmaker, transaction
from oasst.jobs import locks, repository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A named unit of periodic work: what it does, how often, and whether it also runs at start-up."""

    name: str
    description: str
    interval: Callable[[Settings], timedelta]
    work: Callable[[AsyncSession, Settings], Awaitable[str]]
    at_start: bool = True


def _leaderboard(time_frame: UserStatsTimeFrame) -> Callable[[AsyncSession, Settings], Awaitable[str]]:
    async def work(session: AsyncSession, _settings: Settings) -> str:
        await stats_service.refresh_time_frame(session, time_frame)
        return f"{time_frame.value} leaderboard and trollboard rebuilt"

    return work


async def _streaks(session: AsyncSession, _settings: Settings) -> str:
    return f"{await users_service.reset_streaks(session, utcnow())} streaks reset"


async def _cached_stats(session: AsyncSession, _settings: Settings) -> str:
    await stats_service.update_cached_stats(session)
    return "cached stats updated"


async def _cleanup(session: AsyncSession, _settings: Settings) -> str:
    tasks = await repository.delete_expired_tasks(session, utcnow())
    halted = await repository.halt_prompts_of_inactive_users(session)
    return f"{tasks} expired tasks deleted, {halted} waiting prompts of disabled or deleted users halted"


def _minutes(setting: str) -> Callable[[Settings], timedelta]:
    return lambda settings: timedelta(minutes=getattr(settings, setting))


JOBS: dict[str, Job] = {
    **{
        f"leaderboard_{tf.value}": Job(
            f"leaderboard_{tf.value}",
            f"Rebuild the {tf.value} leaderboard and trollboard (USER_STATS_INTERVAL_{tf.value.upper()}).",
            _minutes(f"user_stats_interval_{tf.value}"),
            _leaderboard(tf),
        )
        for tf in UserStatsTimeFrame
    },
    "user_streak_reset": Job(
        "user_streak_reset",
        "End the streaks of users inactive for 36 hours (USER_STREAK_UPDATE_INTERVAL hours).",
        lambda settings: timedelta(hours=settings.user_streak_update_interval),
        _streaks,
    ),
    "cached_stats": Job(
        "cached_stats",
        "Recompute the cached stats of /stats/cached (CACHED_STATS_UPDATE_INTERVAL).",
        _minutes("cached_stats_update_interval"),
        _cached_stats,
    ),
    "cleanup": Job(
        "cleanup",
        "Delete expired tasks and halt waiting prompts of disabled or deleted users (hourly).",
        lambda _settings: timedelta(hours=1),
        _cleanup,
    ),
}


@dataclass(frozen=True)
class JobResult:
    name: str
    ran: bool
    summary: str


async def run_job(sessions: async_sessionmaker[AsyncSession], settings: Settings, job: Job) -> JobResult:
    """Run one job now in its own transaction; skipped if another process is running it."""
    async with transaction(sessions) as session:
        if not await locks.try_lock(session, job.name):
            return JobResult(job.name, False, "skipped: another process is running it")
        summary = await job.work(session, settings)
    log.info("job %s: %s", job.name, summary)
    return JobResult(job.name, True, summary)


def run_now(settings: Settings, name: str) -> JobResult:
    """Run the job `name` from blocking code (`oasst jobs run`), on a database engine of its own."""

    async def go() -> JobResult:
        engine = create_engine(settings.effective_database_url)
        try:
            return await run_job(sessionmaker(engine), settings, JOBS[name])
        finally:
            await engine.dispose()

    return asyncio.run(go())
