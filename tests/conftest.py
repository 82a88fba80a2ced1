"""Shared fixtures: both database engines, per-test settings, the app behind a test client, factories."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from oasst.app import create_app
from oasst.config import Settings
from oasst.db.base import Base
from oasst.db.migrations import upgrade
from oasst.db.models import ApiClient
from tests.factories import Factory, make_factory

PG_ADMIN_URL = os.environ.get("OASST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("OASST_TEST_REDIS", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("OASST_TEST_REQUIRE_SERVICES") == "1"
ADMIN_KEY = "trusted-test-key-0123456789"


def missing_service(what: str, error: Exception) -> None:
    """Skip, or fail when CI requires every service (OASST_TEST_REQUIRE_SERVICES=1)."""
    message = f"{what} is not available: {error}"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database of its own for this test process, migrated once and dropped at the end."""
    name = f"oasst_test_{_worker()}_{os.getpid()}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        missing_service("PostgreSQL", error)
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A clean, migrated database on each engine in turn."""
    if request.param == "sqlite":
        path = tmp_path / "oasst.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_template")
    engine = create_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: its own database, rate limits off, a trusted bootstrap key."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "data_dir": tmp_path,
            "rate_limit": False,
            "bootstrap_api_key": ADMIN_KEY,
            "jobs_enabled": False,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    """The app for `settings`, lifespan included, called with the trusted bootstrap key."""
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as client:
        yield client


@pytest.fixture
def factory(database_url: str, app_client: TestClient) -> Iterator[Factory]:
    """Rows written straight into the app's database (after its start, which makes the trusted client)."""
    yield from make_factory(database_url)


@pytest.fixture
def admin(factory: Factory) -> ApiClient:
    """The trusted client the app was started with (ADMIN_KEY)."""
    return factory.client_by_key(ADMIN_KEY)
