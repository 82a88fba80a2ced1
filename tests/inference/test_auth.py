"""Who may call what: bearer tokens (debug and local sign-in, refresh, revocation, deletion), trusted
clients, the bootstrap key for admin routes, worker keys."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from oasst.accounts import service as accounts
from oasst.app import create_app
from oasst.config import Settings
from oasst.db.models import Chat, InferenceUser
from oasst.db.session import create_engine, sessionmaker, sync_url, transaction
from oasst.inference import service
from oasst.protocol.inference import LocalLoginRequest
from oasst.protocol.worker import CLOSE_UPGRADE_PROTOCOL, CLOSE_WRONG_API_KEY
from tests.conftest import ADMIN_KEY
from tests.factories import Factory
from tests.live import serve


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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
        command += ["--api-key", "wrong", "--backend", "fake", "--model", "m"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert httpx.get(f"{base_url}/inference/configs/model_configs").json() == []
    assert result.returncode == 3
    assert "refused the API key" in result.stderr


# --- local accounts -----------------------------------------------------------------------------------------

PASSWORD = "a long enough password"


def _bearer(tokens: dict[str, dict[str, str]]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']['access_token']}"}


def _add_account(database_url: str, username: str, *, enabled: bool = True) -> None:
    """An account made as `oasst accounts create` makes it."""

    async def run() -> None:
        engine = create_engine(database_url)
        try:
            async with transaction(sessionmaker(engine)) as session:
                await accounts.register(session, username, PASSWORD)
                if not enabled:
                    await accounts.set_enabled(session, username, False)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _local_login(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/inference/auth/login/local", json={"username": username, "password": password})


def test_providers_list_the_sign_in_methods_in_use(make_settings: Callable[..., Settings]) -> None:
    for overrides, expected in [
        ({}, ["local"]),
        ({"allow_debug_auth": True}, ["local", "debug"]),
        ({"local_auth": False}, []),
    ]:
        with TestClient(create_app(make_settings(**overrides))) as test_client:
            assert test_client.get("/inference/auth/providers").json() == expected


def test_a_local_account_signs_in_and_keeps_one_user(client: TestClient, database_url: str) -> None:
    _add_account(database_url, "Carol")
    _add_account(database_url, "dan", enabled=False)
    first = _local_login(client, "carol")
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert (
        tokens["access_token"]["token_type"] == "bearer"
        and tokens["refresh_token"]["token_type"] == "refresh"
    )
    user_id = client.get("/inference/auth/check", headers=_bearer(tokens)).json()
    again = _local_login(client, "CAROL").json()
    assert client.get("/inference/auth/check", headers=_bearer(again)).json() == user_id
    assert client.post("/inference/chats", json={}, headers=_bearer(tokens)).status_code == 200

    for username, password in [("carol", "wrong password"), ("dan", PASSWORD), ("nobody", PASSWORD)]:
        refused = _local_login(client, username, password)
        assert refused.status_code == 401
        assert refused.json() == {"detail": "Invalid username or password"}
    assert client.post("/inference/auth/login/local", json={"username": "carol"}).status_code == 422


def test_registration_is_closed_unless_allowed(
    client: TestClient, make_settings: Callable[..., Settings]
) -> None:
    body = {"username": "erin", "password": PASSWORD}
    closed = client.post("/inference/auth/register/local", json=body)
    assert closed.status_code == 403 and closed.json() == {"detail": "Registration is not open"}
    with TestClient(create_app(make_settings(allow_registration=True))) as open_client:
        created = open_client.post("/inference/auth/register/local", json=body | {"display_name": "Erin"})
        assert created.status_code == 200, created.text
        assert open_client.get("/inference/auth/check", headers=_bearer(created.json())).status_code == 200
        assert _local_login(open_client, "erin").status_code == 200
        taken = open_client.post("/inference/auth/register/local", json=body | {"username": "ERIN"})
        assert taken.status_code == 409 and taken.json() == {"detail": "The username 'erin' is taken"}
        weak = open_client.post(
            "/inference/auth/register/local", json={"username": "fay", "password": "short"}
        )
        assert weak.status_code == 422 and "at least 8" in weak.json()["detail"]
        bad_name = open_client.post("/inference/auth/register/local", json=body | {"username": "a b"})
        assert bad_name.status_code == 422


# --- refresh tokens, deletion -------------------------------------------------------------------------------

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _refresh(client: TestClient, tokens: dict[str, dict[str, str]]) -> httpx.Response:
    return client.get("/inference/auth/refresh", headers={"Refresh": tokens["refresh_token"]["access_token"]})


def test_revoked_refresh_tokens_stop_working(client: TestClient) -> None:
    tokens, other = _login(client, "gina"), _login(client, "hank")
    assert _refresh(client, tokens).status_code == 200
    assert client.delete("/inference/admin/refresh_tokens/gina").status_code == 401
    assert client.delete("/inference/admin/refresh_tokens/gina", headers=ADMIN).status_code == 200
    refused = _refresh(client, tokens)
    assert refused.status_code == 401 and refused.json() == {"detail": "Invalid token"}
    assert _refresh(client, other).status_code == 200  # only gina's tokens
    assert _refresh(client, _login(client, "gina")).status_code == 200  # a new sign-in gets a new token
    missing = client.delete("/inference/admin/refresh_tokens/nobody", headers=ADMIN)
    assert missing.status_code == 404 and missing.json() == {"detail": "User not found"}


def test_deleting_an_account_signs_it_out_everywhere(client: TestClient, database_url: str) -> None:
    _add_account(database_url, "ivy")
    tokens = _local_login(client, "ivy").json()
    chat = client.post("/inference/chats", json={}, headers=_bearer(tokens)).json()
    assert client.delete("/inference/account/").status_code == 403
    assert client.delete("/inference/account/", headers=_bearer(tokens)).status_code == 200
    assert client.get("/inference/chats", headers=_bearer(tokens)).status_code == 401
    assert _refresh(client, tokens).status_code == 401
    assert _local_login(client, "ivy").status_code == 401  # the local account is disabled too

    engine = create_sync_engine(sync_url(database_url))
    with engine.connect() as conn:
        user = conn.execute(select(InferenceUser).where(InferenceUser.provider == "local")).one()
        kept = conn.scalar(select(Chat.id).where(Chat.user_id == user.id))
    engine.dispose()
    assert (user.deleted, user.display_name, user.provider_account_id) == (
        True,
        "Deleted User",
        f"deleted_{user.id}",
    )
    assert str(kept) == chat["id"]  # chats stay, as upstream


def test_an_admin_deletes_a_user(client: TestClient) -> None:
    tokens = _login(client, "jack")
    assert client.delete("/inference/admin/users/jack").status_code == 401
    assert client.delete("/inference/admin/users/jack", headers=ADMIN).status_code == 200
    assert client.get("/inference/chats", headers=_bearer(tokens)).status_code == 401
    assert _refresh(client, tokens).status_code == 401
    # The debug name of a deleted user cannot be taken again.
    assert client.get("/inference/auth/callback/debug", params={"code": "jack"}).status_code == 403
    missing = client.delete("/inference/admin/users/nobody", headers=ADMIN)
    assert missing.status_code == 404 and missing.json() == {"detail": "User not found"}


# --- trusted clients ----------------------------------------------------------------------------------------


def _trusted(api_key: str, user_id: str = "web-42", **extra: str) -> dict[str, str]:
    body = {
        "api_key": api_key,
        "client": "website",
        "user_id": user_id,
        "provider_account_id": f"acct-{user_id}",
        "username": "Kim",
    } | extra
    return {"TrustedClient": base64.b64encode(json.dumps(body).encode()).decode()}


def test_a_trusted_client_speaks_for_its_users(client: TestClient, database_url: str) -> None:
    header = _trusted(ADMIN_KEY)
    missing = client.post("/inference/chats", json={}, headers=header)
    assert missing.status_code == 404 and missing.json() == {"detail": "User not found"}
    created = client.post("/inference/auth/trusted", headers=header)
    assert created.status_code == 200, created.text
    expected = {
        "id": "web-42",
        "provider": "website",
        "provider_account_id": "acct-web-42",
        "display_name": "Kim",
        "deleted": False,
    }
    assert created.json() == expected
    assert client.post("/inference/auth/trusted", headers=header).json() == expected  # idempotent
    assert client.post("/inference/chats", json={}, headers=header).status_code == 200
    # The header wins over a Bearer token, even a broken one.
    both = header | {"Authorization": "Bearer forged.token"}
    assert client.get("/inference/auth/check", headers=both).json() == "web-42"

    factory = Factory(database_url)
    _, minted = factory.api_client(trusted=True)  # as `oasst api-client create NAME --trusted`
    _, untrusted = factory.api_client()
    factory.close()
    assert client.get("/inference/auth/check", headers=_trusted(minted)).json() == "web-42"
    for key in (untrusted, "not-a-key"):
        refused = client.get("/inference/auth/check", headers=_trusted(key))
        assert refused.status_code == 401 and refused.json() == {"detail": "Unauthorized client"}
        assert client.post("/inference/auth/trusted", headers=_trusted(key)).status_code == 401
    assert client.post("/inference/auth/trusted").status_code == 401
    malformed = client.get("/inference/auth/check", headers={"TrustedClient": "not base64!"})
    assert malformed.status_code == 400
    no_user = client.get("/inference/auth/check", headers=_trusted(ADMIN_KEY, user_id=""))
    assert no_user.status_code == 400
    clash = client.post(
        "/inference/auth/trusted", headers=_trusted(ADMIN_KEY, "web-43", provider_account_id="acct-web-42")
    )
    assert clash.status_code == 409


@pytest.mark.anyio
async def test_simultaneous_first_sign_ins_make_one_user(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    settings = make_settings()
    engine = create_engine(database_url)
    sessions = sessionmaker(engine)
    async with transaction(sessions) as session:
        await accounts.register(session, "lena", PASSWORD)

    async def sign_in() -> str:
        async with transaction(sessions) as session:
            body = LocalLoginRequest(username="lena", password=PASSWORD)
            pair = await service.local_login(session, settings, "a-test-secret-of-16+", body)
            return service.verify("a-test-secret-of-16+", pair.access_token.access_token, "access").user_id

    try:
        user_ids = await asyncio.gather(*(sign_in() for _ in range(3)))
        async with transaction(sessions) as session:
            stored = (await session.scalars(select(InferenceUser.id))).all()
    finally:
        await engine.dispose()
    assert len(set(user_ids)) == 1 and list(stored) == [user_ids[0]]
