"""Who may call what: bearer tokens for users, the bootstrap key for admin routes, worker keys."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from oasst.app import create_app
from oasst.config import Settings
from oasst.protocol.worker import CLOSE_UPGRADE_PROTOCOL, CLOSE_WRONG_API_KEY
from tests.conftest import ADMIN_KEY
from tests.live import serve


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> TestClient:
    with TestClient(create_app(make_settings(allow_debug_auth=True))) as test_client:
        yield test_client  # type: ignore[misc]


def _login(client: TestClient, username: str = "bob") -> dict[str, dict[str, str]]:
    response = client.get("/inference/auth/callback/debug", params={"code": username})
    assert response.status_code == 200, response.text
    tokens: dict[str, dict[str, str]] = response.json()
    return tokens


def test_chat_routes_need_a_valid_access_token(client: TestClient) -> None:
    assert client.get("/inference/chats").status_code == 403
    assert client.get("/inference/chats", headers={"Authorization": "Bearer forged.token"}).status_code == 401
    tokens = _login(client)
    refresh = tokens["refresh_token"]["access_token"]
    # A refresh token is not an access token.
    assert client.get("/inference/chats", headers={"Authorization": f"Bearer {refresh}"}).status_code == 400
    access = tokens["access_token"]["access_token"]
    assert client.get("/inference/auth/check", headers={"Authorization": f"Bearer {access}"}).json() == "bob"


def test_refresh_gives_a_working_access_token(client: TestClient) -> None:
    tokens = _login(client)
    response = client.get(
        "/inference/auth/refresh", headers={"Refresh": tokens["refresh_token"]["access_token"]}
    )
    assert response.status_code == 200
    access = response.json()["access_token"]
    assert client.get("/inference/chats", headers={"Authorization": f"Bearer {access}"}).status_code == 200
    forged = tokens["access_token"]["access_token"]
    assert client.get("/inference/auth/refresh", headers={"Refresh": forged}).status_code == 400


def test_debug_login_is_off_by_default(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings())) as plain:
        assert plain.get("/inference/auth/callback/debug", params={"code": "eve"}).status_code == 403
        assert plain.get("/inference/auth/providers").json() == []


def test_worker_keys_are_minted_with_the_bootstrap_key(client: TestClient) -> None:
    assert client.put("/inference/admin/workers", json={"name": "gpu"}).status_code == 401
    wrong = {"Authorization": "Bearer not-the-admin-key"}
    assert client.put("/inference/admin/workers", json={"name": "gpu"}, headers=wrong).status_code == 401
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    minted = client.put("/inference/admin/workers", json={"name": "gpu"}, headers=admin).json()
    assert minted["api_key"]
    listed = client.get("/inference/admin/workers", headers=admin).json()
    assert listed == [{"id": minted["id"], "name": "gpu", "api_key": None, "trusted": False}]
    assert client.delete(f"/inference/admin/workers/{minted['id']}", headers=admin).status_code == 200
    assert client.get("/inference/admin/workers", headers=admin).json() == []


def test_the_socket_refuses_a_bad_worker_key_and_another_protocol(client: TestClient) -> None:
    headers = {"X-API-Key": "wrong", "X-Protocol-Version": "1"}
    with client.websocket_connect("/inference/workers/work", headers=headers) as socket:
        assert json.loads(socket.receive_text())["request_type"] == "wrong_api_key"
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
        assert closed.value.code == CLOSE_WRONG_API_KEY
    headers = {"X-API-Key": "wrong", "X-Protocol-Version": "0"}
    with client.websocket_connect("/inference/workers/work", headers=headers) as socket:
        assert json.loads(socket.receive_text())["request_type"] == "upgrade_protocol"
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
        assert closed.value.code == CLOSE_UPGRADE_PROTOCOL


def test_the_worker_command_stops_on_a_bad_key(make_settings: Callable[..., Settings]) -> None:
    with serve(make_settings()) as base_url:
        command = [sys.executable, "-m", "oasst.cli.main", "worker", "--server", base_url]
        command += ["--api-key", "wrong", "--model", "m"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert httpx.get(f"{base_url}/inference/configs/model_configs").json() == []
    assert result.returncode == 3
    assert "refused the API key" in result.stderr
