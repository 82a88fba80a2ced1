"""Settings read upstream's names, the migrations build exactly the schema the models describe, and pooled
connections survive a database that dropped them."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from oasst.config import Settings
from oasst.db import session as db_session
from oasst.db.base import Base
from oasst.db.session import sync_url


def test_tree_manager_knobs_use_upstream_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREE_MANAGER__GOAL_TREE_SIZE", "5")
    monkeypatch.setenv("TREE_MANAGER__MAX_TREE_DEPTH", "2")
    monkeypatch.setenv("RATE_LIMIT", "false")
    monkeypatch.setenv("DEBUG_ALLOW_SELF_LABELING", "true")
    monkeypatch.setenv("OASST_MESSAGE_SIZE_LIMIT", "100")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.tree_manager.goal_tree_size == 5
    assert settings.tree_manager.max_tree_depth == 2
    assert settings.tree_manager.num_reviews_reply == 3  # untouched knobs keep upstream's defaults
    assert settings.rate_limit is False
    assert settings.debug_allow_self_labeling is True
    assert settings.message_size_limit == 100


def test_defaults_match_upstream() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.task_validity_minutes == 2880
    assert settings.debug_ignore_tos_acceptance is True
    assert settings.bootstrap_api_key is None  # no default key outside of explicit configuration
    assert settings.tree_manager.p_full_labeling_review_reply_prompter == 0.25


def test_bad_database_url_is_refused() -> None:
    with pytest.raises(ValueError, match="OASST_DATABASE_URL"):
        Settings(_env_file=None, database_url="mysql://x")  # type: ignore[call-arg]


def test_migrations_match_models(database_url: str) -> None:
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_a_pooled_connection_dropped_while_idle_is_replaced(
    postgres_template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_session, "IDLE_PING_SECONDS", 0.05)
    engine = db_session.create_engine(postgres_template)

    async def backend_pid() -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    async def scenario() -> tuple[int, int]:
        first = await backend_pid()
        with psycopg.connect(sync_url(postgres_template).replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        await asyncio.sleep(0.1)
        try:
            return first, await backend_pid()  # would fail on the dropped connection without the ping
        finally:
            await engine.dispose()

    first, second = asyncio.run(scenario())
    assert second != first
