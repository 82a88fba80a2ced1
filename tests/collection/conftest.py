"""Fixtures of the collection tests: a test frontend on the app, and a user and a message to work on."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from oasst.db.models import ApiClient, Message, User
from tests.collection.frontend import Frontend
from tests.factories import Factory


@pytest.fixture
def frontend(app_client: TestClient) -> Frontend:
    return Frontend(app_client)


@pytest.fixture
def author(factory: Factory, admin: ApiClient) -> User:
    return factory.user(admin, "alice")


@pytest.fixture
def message(factory: Factory, admin: ApiClient) -> Message:
    """A root message of a user named "author" (someone else than `author`, who is alice)."""
    return factory.message(admin, factory.user(admin, "author"))
