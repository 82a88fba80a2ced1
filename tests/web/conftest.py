"""Fixtures of the web UI tests: settings with the development sign-in on, and browsers over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from oasst.app import create_app
from oasst.config import Settings
from tests.web.flow import FULL_LOOP_TREES, WebUser


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
