"""Settings read upstream's names, and the migrations build exactly the schema the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from oasst.config import Settings
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
