"""Fixtures of the web UI tests: settings with the development sign-in on, browsers over HTTP, a live site
with a fake worker for the chat, stand-ins of the OAuth providers, and Debian's Chromium under Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Playwright, sync_playwright

from oasst.app import create_app
from oasst.config import Settings
from tests.conftest import missing_service
from tests.inference.helpers import WorkerProcess, mint_worker_key
from tests.live import serve, serve_app
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.flow import FULL_LOOP_TREES, WebUser
from tests.web.providers import SCOPES, FakeProviders

TOKEN_DELAY = 0.1


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


@pytest.fixture
def site(make_settings: Callable[..., Settings]) -> Iterator[str]:
    """A real server with a fake worker connected, writing a word every 0.1 s (a page opens before the
    end); yields its base URL."""
    with serve(make_settings(debug=True, pending_event_interval=0.05)) as base_url:
        delay = ("--fake-token-delay", str(TOKEN_DELAY))
        with WorkerProcess(base_url, mint_worker_key(base_url), *delay) as worker:
            worker.wait_for("registered")
            yield base_url


@pytest.fixture
def browsers() -> Iterator[Callable[[str], WebUser]]:
    """Browsers on a live site, not signed in, each with a cookie jar of its own."""
    clients: list[httpx.Client] = []

    def open_on(site: str) -> WebUser:
        client = httpx.Client(base_url=site, follow_redirects=True, timeout=30.0)
        clients.append(client)
        return WebUser(client)  # type: ignore[arg-type]  # the same calls as a TestClient

    yield open_on
    for client in clients:
        client.close()


@pytest.fixture
def browser_of(browsers: Callable[[str], WebUser]) -> Callable[[str, str], WebUser]:
    """People signed in on a live site (the development sign-in), each in a browser of their own."""

    def open_as(site: str, name: str) -> WebUser:
        user = browsers(site)
        user.dev_sign_in(name)
        return user

    return open_as


@pytest.fixture(scope="module")
def providers() -> Iterator[FakeProviders]:
    fake = FakeProviders()
    with serve_app(fake.app) as url:
        fake.url = url
        yield fake


@pytest.fixture
def fake(providers: FakeProviders) -> FakeProviders:
    """The stand-in providers, with nobody signing in next and nothing refused."""
    providers.reset()
    return providers


@pytest.fixture
def oauth_settings(make_settings: Callable[..., Settings], fake: FakeProviders) -> Callable[..., Settings]:
    """Settings with `configured` registered at the fake providers (and the others explicitly not)."""

    def build(configured: tuple[str, ...] = ("discord", "github", "google"), **overrides: Any) -> Settings:
        values: dict[str, Any] = {"oauth_endpoints": {name: fake.endpoints(name) for name in configured}}
        for name in SCOPES:
            values[f"auth_{name}_client_id"] = f"{name}-client" if name in configured else ""
            values[f"auth_{name}_client_secret"] = f"{name}-secret" if name in configured else ""
        values.update(overrides)
        return make_settings(**values)

    return build


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
