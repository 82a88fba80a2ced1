"""Fixtures of the web UI tests: settings with the development sign-in on, browsers over HTTP, and
Debian's Chromium under Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Playwright, sync_playwright

from oasst.app import create_app
from oasst.config import Settings
from tests.conftest import missing_service
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.flow import FULL_LOOP_TREES, WebUser


@pytest.fixture
def sqlite_database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh migrated SQLite database, for the modules that run on one engine (browser tests)."""
    path = tmp_path / "oasst.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def web_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(debug=True, allow_registration=True, tree_manager=FULL_LOOP_TREES)


@pytest.fixture
def web_app(web_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings)) as client:
        yield client


@pytest.fixture
def visitor(web_app: TestClient) -> WebUser:
    return WebUser(web_app)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing_service("Chromium", FileNotFoundError(f"{CHROMIUM} (apt-get install -y chromium)"))
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()
