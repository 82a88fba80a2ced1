"""The health route answers without a key, and says which service is down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi.testclient import TestClient
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import create_async_engine

from oasst.app import create_app
from oasst.config import Settings
from tests.conftest import REDIS_URL, missing_service


def test_health_answers_ok(app_client: TestClient) -> None:
    response = app_client.get("/health", headers={"X-API-Key": ""})
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"] == {"database": "ok"}


def test_health_checks_redis_when_configured(make_settings: Callable[..., Settings]) -> None:
    async def ping() -> None:
        client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        asyncio.run(ping())
    except (RedisError, OSError) as error:
        missing_service("Redis", error)
    with TestClient(create_app(make_settings(redis_url=REDIS_URL))) as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_health_is_503_when_redis_is_down(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(redis_url="redis://127.0.0.1:1/0"))) as client:
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("down")


def test_health_is_503_when_the_database_is_down(app_client: TestClient) -> None:
    app = app_client.app
    engine = app.state.engine
    app.state.engine = create_async_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        response = app_client.get("/health")
    finally:
        app.state.engine = engine
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("down")
