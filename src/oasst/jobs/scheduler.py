"""An in-process scheduler: one asyncio task per job, started and stopped by the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from oasst.config import Settings
from oasst.jobs.jobs import JOBS, Job, run_job

log = logging.getLogger(__name__)


class Scheduler:
    """Runs every job at its interval (and once at start-up if the job says so) until stopped."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        jobs: Mapping[str, Job] = JOBS,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._jobs = dict(jobs)
        self._tasks: list[asyncio.Task[None]] = []
        self._first_runs = {name: asyncio.Event() for name, job in self._jobs.items() if job.at_start}

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        for job in self._jobs.values():
            self._tasks.append(asyncio.create_task(self._loop(job), name=f"oasst-job-{job.name}"))

    async def started(self) -> None:
        """Wait until every job that runs at start-up has run once (successfully or not)."""
        await asyncio.gather(*(event.wait() for event in self._first_runs.values()))

    async def stop(self) -> None:
        """Cancel every job loop and wait for them: a job in progress is rolled back."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _loop(self, job: Job) -> None:
        interval = job.interval(self._settings).total_seconds()
        delay = 0.0 if job.at_start else interval
        while True:
            await asyncio.sleep(delay)
            try:
                await run_job(self._sessions, self._settings, job)
            except Exception:
                # A failed run is retried at the next interval; the scheduler itself keeps going.
                log.exception("job %s failed", job.name)
            if job.name in self._first_runs:
                self._first_runs[job.name].set()
            delay = interval
