"""Periodic jobs: each one's effect, their locks, the in-process scheduler and `oasst jobs`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oasst.app import create_app
from oasst.cli.main import app as cli
from oasst.config import Settings
from oasst.db.base import utcnow
from oasst.db.models import ApiClient, CachedStats, MessageTreeState, Task, TrollStats, User, UserStats
from oasst.db.session import create_engine, sessionmaker
from oasst.jobs import locks
from oasst.jobs.jobs import JOBS, Job, JobResult, run_now
from oasst.jobs.scheduler import Scheduler
from tests.conftest import ADMIN_KEY
from tests.factories import Factory


def add_task(
    factory: Factory, client: ApiClient, user: User, *, expires_in: timedelta, done: bool
) -> uuid.UUID:
    task = Task(
        id=uuid.uuid4(),
        created_date=utcnow() - timedelta(days=3),
        expiry_date=utcnow() + expires_in,
        user_id=user.id,
        payload_type="InitialPromptPayload",
        payload={"type": "initial_prompt"},
        api_client_id=client.id,
        done=done,
    )
    with Session(factory.engine, expire_on_commit=False) as session:
        session.add(task)
        session.commit()
    return task.id


def test_every_job_is_registered() -> None:
    assert sorted(JOBS) == [
        "cached_stats",
        "cleanup",
        "leaderboard_day",
        "leaderboard_month",
        "leaderboard_total",
        "leaderboard_week",
        "user_streak_reset",
    ]
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    intervals = {name: job.interval(settings) for name, job in JOBS.items()}
    assert intervals["leaderboard_day"] == timedelta(minutes=5)
    assert intervals["leaderboard_week"] == timedelta(minutes=15)
    assert intervals["leaderboard_month"] == timedelta(minutes=60)
    assert intervals["leaderboard_total"] == timedelta(minutes=240)
    assert intervals["user_streak_reset"] == timedelta(hours=4)
    assert intervals["cached_stats"] == timedelta(minutes=60)
    assert intervals["cleanup"] == timedelta(hours=1)


def test_intervals_read_upstream_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER_STATS_INTERVAL_DAY", "2")
    monkeypatch.setenv("OASST_CACHED_STATS_UPDATE_INTERVAL", "7")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.user_stats_interval_day, settings.cached_stats_update_interval) == (2, 7)
    monkeypatch.setenv("USER_STATS_INTERVAL_WEEK", "0")
    with pytest.raises(ValueError, match="user_stats_interval_week"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_streak_reset_ends_streaks_of_idle_users(
    settings: Settings, factory: Factory, admin: ApiClient
) -> None:
    now = utcnow()
    idle = factory.user(
        admin, last_activity_date=now - timedelta(hours=40), streak_days=5, streak_last_day_date=now
    )
    busy = factory.user(
        admin, last_activity_date=now - timedelta(hours=30), streak_days=2, streak_last_day_date=now
    )
    fresh = factory.user(admin, last_activity_date=None, streak_last_day_date=now)
    result = run_now(settings, "user_streak_reset")
    assert result == JobResult("user_streak_reset", True, "1 streaks reset")
    assert (factory.fetch(User, idle.id).streak_days, factory.fetch(User, idle.id).streak_last_day_date) == (
        0,
        None,
    )
    assert factory.fetch(User, busy.id).streak_days == 2
    assert factory.fetch(User, fresh.id).streak_last_day_date is not None
    assert run_now(settings, "user_streak_reset").summary == "0 streaks reset"  # idempotent


def test_cleanup_deletes_expired_tasks_and_halts_prompts_of_banned_users(
    settings: Settings, factory: Factory, admin: ApiClient
) -> None:
    alice = factory.user(admin, "alice")
    banned = factory.user(admin, "banned", enabled=False)
    deleted = factory.user(admin, "deleted", deleted=True)
    expired = add_task(factory, admin, alice, expires_in=-timedelta(minutes=1), done=False)
    answered = add_task(factory, admin, alice, expires_in=-timedelta(minutes=1), done=True)
    open_task = add_task(factory, admin, alice, expires_in=timedelta(hours=1), done=False)
    waiting = {}
    for author in (alice, banned, deleted):
        root = factory.message(admin, author)
        factory.set_tree_state(root.id, "prompt_lottery_waiting")
        waiting[author.username] = root.id
    growing_of_banned = factory.message(admin, banned)

    result = run_now(settings, "cleanup")
    assert result.summary == "1 expired tasks deleted, 2 waiting prompts of disabled or deleted users halted"
    assert {row.id for row in factory.rows(Task)} == {answered, open_task}
    assert expired not in {row.id for row in factory.rows(Task)}
    states = {name: factory.fetch(MessageTreeState, tree_id).state for name, tree_id in waiting.items()}
    assert states == {
        "alice": "prompt_lottery_waiting",
        "banned": "halted_by_moderator",
        "deleted": "halted_by_moderator",
    }
    assert factory.fetch(MessageTreeState, growing_of_banned.id).state == "growing"
    assert run_now(settings, "cleanup").summary.startswith("0 expired tasks deleted, 0 waiting")


def test_stats_jobs_fill_the_tables(settings: Settings, factory: Factory, admin: ApiClient) -> None:
    alice = factory.user(admin, "alice")
    factory.chain(admin, alice, 2, created_date=utcnow())
    assert run_now(settings, "cached_stats").ran
    assert {row.name for row in factory.rows(CachedStats)} == {
        "human_messages_by_lang",
        "human_messages_by_role",
        "message_trees_by_state",
        "message_trees_states_by_lang",
        "users_accepted_tos",
    }
    for frame in ("day", "week", "month", "total"):
        assert run_now(settings, f"leaderboard_{frame}").ran
    stats = {row.time_frame: row for row in factory.rows(UserStats, user_id=alice.id)}
    assert sorted(stats) == ["day", "month", "total", "week"]
    # 1 prompt (floor 0.1) and 1 assistant reply, both accepted: 4 + 4.
    assert {row.leader_score for row in stats.values()} == {8}
    assert {row.rank for row in stats.values()} == {1}
    assert len(factory.rows(TrollStats, user_id=alice.id)) == 4


# SQLite serialises writers itself, so only PostgreSQL has a job lock another process could hold.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_job_held_elsewhere_is_skipped(settings: Settings, database_url: str, factory: Factory) -> None:
    key = locks._key("cached_stats")
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (locks._JOBS_KEYSPACE, key))
        assert run_now(settings, "cached_stats") == JobResult(
            "cached_stats", False, "skipped: another process is running it"
        )
        assert factory.rows(CachedStats) == []
    assert run_now(settings, "cached_stats").ran  # released with the other transaction


def test_scheduler_retries_a_failed_job_and_stops(settings: Settings, app_client: TestClient) -> None:
    calls: list[int] = []

    async def flaky(_session: object, _settings: Settings) -> str:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("first run fails")
        if len(calls) == 3:
            done.set()
        return "ok"

    async def scenario() -> None:
        engine = create_engine(settings.effective_database_url)
        scheduler = Scheduler(
            sessionmaker(engine),
            settings,
            {"flaky": Job("flaky", "fails once", lambda _s: timedelta(milliseconds=1), flaky)},
        )
        scheduler.start()
        assert scheduler.running
        await scheduler.started()
        await asyncio.wait_for(done.wait(), timeout=10)
        await scheduler.stop()
        assert not scheduler.running
        await engine.dispose()

    done = asyncio.Event()
    asyncio.run(scenario())
    assert len(calls) >= 3


def test_server_runs_the_jobs_at_start(make_settings: Callable[..., Settings], factory: Factory) -> None:
    settings = make_settings(jobs_enabled=True)
    app = create_app(settings)
    with TestClient(app, headers={"X-API-Key": ADMIN_KEY}) as client:
        client.portal.call(app.state.scheduler.started)  # type: ignore[union-attr]
        # No hour-long wait for the first cached stats, unlike upstream.
        assert client.get("/api/v1/stats/cached/users_accepted_tos").status_code == 200
        scheduler = app.state.scheduler
        assert scheduler.running
    assert not scheduler.running


def test_cli_lists_and_runs_jobs(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, factory: Factory, admin: ApiClient
) -> None:
    monkeypatch.setenv("OASST_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("OASST_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    listed = runner.invoke(cli, ["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    assert "leaderboard_day" in listed.output and "every    5 min" in listed.output

    factory.user(admin, "alice", tos_acceptance_date=utcnow())
    ran = runner.invoke(cli, ["jobs", "run", "cached_stats"])
    assert ran.exit_code == 0, ran.output
    assert ran.output.strip() == "cached_stats: cached stats updated"
    tos = factory.fetch(CachedStats, "users_accepted_tos")
    assert tos.stats == {"count": 1}

    unknown = runner.invoke(cli, ["jobs", "run", "nope"])
    assert unknown.exit_code == 2
    assert "unknown job 'nope'" in unknown.output
