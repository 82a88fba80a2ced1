"""The gateway as a course uses it: an admin client, accounts with keys, and (for chats) a live server with a
fake-backend worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from oasst.app import create_app
from oasst.config import Settings
from oasst.db.models import GatewayAccount, GatewayCharge, GatewayMessage
from oasst.db.session import sync_url
from tests.inference.helpers import WorkerProcess, mint_worker_key
from tests.live import serve

ADMIN_TOKEN = "gateway-admin-token-0123456789"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Gateway:
    """An HTTP client of the Parrot API (TestClient or httpx) with the admin token at hand."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.as_account(ADMIN_TOKEN, method, path, **kwargs)

    def as_account(self, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**bearer(key), **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def new_account(self, name: str = "Team 1", budget: int = 10_000, **extra: Any) -> tuple[int, str]:
        """Create an account; returns its id and its key (shown this once)."""
        response = self.admin(
            "POST", "/api/accounts", json={"name": name, "course": "CS-552", "budget": budget, **extra}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return body["id"], body["api_key"]

    def new_chat(self, key: str, **body: Any) -> int:
        response = self.as_account(key, "POST", "/api/chats", json={"name": "chat", **body})
        assert response.status_code == 201, response.text
        chat_id: int = response.json()["id"]
        return chat_id


class Ledger:
    """Reads the gateway's rows straight from the database, to check what was (not) stored."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(sync_url(database_url))

    def account(self, account_id: int) -> GatewayAccount:
        with Session(self.engine) as session:
            account = session.get(GatewayAccount, account_id)
            assert account is not None
            session.expunge(account)
            return account

    def count(self, model: type[GatewayMessage] | type[GatewayCharge]) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def charges(self) -> list[GatewayCharge]:
        with Session(self.engine) as session:
            rows = list(session.scalars(select(GatewayCharge).order_by(GatewayCharge.id)))
            session.expunge_all()
            return rows


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = Ledger(database_url)
    yield ledger
    ledger.engine.dispose()


@pytest.fixture
def gateway_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(gateway_admin_token=ADMIN_TOKEN, pending_event_interval=0.05)


@pytest.fixture
def gateway(gateway_settings: Settings) -> Iterator[Gateway]:
    """The app in-process (no worker): enough for accounts, users and chats."""
    with TestClient(create_app(gateway_settings)) as client:
        yield Gateway(client)


@pytest.fixture
def live(gateway_settings: Settings) -> Iterator[tuple[Gateway, str]]:
    """A real server with a fake-backend worker registered; yields the client and the base URL."""
    with serve(gateway_settings) as base_url, WorkerProcess(base_url, mint_worker_key(base_url)) as worker:
        worker.wait_for("registered")
        with httpx.Client(base_url=base_url, timeout=30) as http:
            yield Gateway(http), base_url
