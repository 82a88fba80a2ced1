"""Chats and messages without a worker: paging, updates, deletes, and the 4xx of bad input."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from oasst.app import create_app
from oasst.config import Settings


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = make_settings(allow_debug_auth=True, message_max_length=50, chat_max_messages=3)
    with TestClient(create_app(settings), base_url="http://testserver/inference") as test_client:
        for name in ("alice", "mallory"):
            tokens = test_client.get("/auth/callback/debug", params={"code": name}).json()
            test_client.headers[f"x-{name}"] = tokens["access_token"]["access_token"]
        test_client.headers["Authorization"] = f"Bearer {test_client.headers['x-alice']}"
        yield test_client


def test_chats_page_newest_first_with_cursors(client: TestClient) -> None:
    ids = [client.post("/chats", json={}).json()["id"] for _ in range(5)]
    first = client.get("/chats", params={"limit": 2}).json()
    assert [chat["id"] for chat in first["chats"]] == ids[:2:-1][:2]
    assert first["prev"] is None and first["next"]
    second = client.get("/chats", params={"limit": 2, "after": first["next"]}).json()
    assert [chat["id"] for chat in second["chats"]] == [ids[2], ids[1]]
    back = client.get("/chats", params={"limit": 2, "before": second["prev"]}).json()
    assert back["chats"] == first["chats"]
    assert client.get("/chats", params={"after": "not base64!"}).status_code == 400


def test_update_hide_and_delete_a_chat(client: TestClient) -> None:
    chat_id = client.post("/chats", json={}).json()["id"]
    assert client.put(f"/chats/{chat_id}", json={"title": "Plans", "hidden": True}).status_code == 200
    assert client.get("/chats").json()["chats"] == []
    hidden = client.get("/chats", params={"include_hidden": True}).json()["chats"]
    assert [(chat["title"], chat["hidden"]) for chat in hidden] == [("Plans", True)]
    assert client.put(f"/chats/{chat_id}", json={"title": "x" * 101}).status_code == 422
    assert client.delete(f"/chats/{chat_id}").status_code == 200
    assert client.get(f"/chats/{chat_id}").status_code == 404


def test_someone_elses_chat_is_not_found(client: TestClient) -> None:
    chat_id = client.post("/chats", json={}).json()["id"]
    other = {"Authorization": f"Bearer {client.headers['x-mallory']}"}
    assert client.get(f"/chats/{chat_id}", headers=other).status_code == 404
    assert client.delete(f"/chats/{chat_id}", headers=other).status_code == 404
    body = {"parent_id": None, "content": "hi"}
    assert client.post(f"/chats/{chat_id}/prompter_message", json=body, headers=other).status_code == 404


def test_bad_messages_are_refused(client: TestClient) -> None:
    chat_id = client.post("/chats", json={}).json()["id"]
    url = f"/chats/{chat_id}/prompter_message"
    assert client.post(url, json={"parent_id": None, "content": "x" * 51}).status_code == 413
    first = client.post(url, json={"parent_id": None, "content": "hello"}).json()
    assert client.post(url, json={"parent_id": None, "content": "again"}).status_code == 400
    assert client.post(url, json={"parent_id": first["id"], "content": "reply"}).status_code == 400
    assistant = {"parent_id": first["id"], "model_config_name": "nobody-serves-this"}
    response = client.post(f"/chats/{chat_id}/assistant_message", json=assistant)
    assert response.status_code == 422
    assert "nobody-serves-this" in response.json()["detail"]
    out_of_range = {**assistant, "sampling_parameters": {"temperature": 7}}
    assert client.post(f"/chats/{chat_id}/assistant_message", json=out_of_range).status_code == 422
    assert client.get(f"/chats/{chat_id}/messages/{first['id']}/events").status_code == 400
    assert client.get(f"/chats/{chat_id}/messages/not-an-id").status_code == 422


def test_hide_all_hides_only_the_callers_chats(client: TestClient) -> None:
    mine = [client.post("/chats", json={}).json()["id"] for _ in range(2)]
    other = {"Authorization": f"Bearer {client.headers['x-mallory']}"}
    theirs = client.post("/chats", json={}, headers=other).json()["id"]
    assert client.put("/chats/hide_all").status_code == 200
    assert client.get("/chats").json()["chats"] == []
    hidden = client.get("/chats", params={"include_hidden": True}).json()["chats"]
    assert sorted(chat["id"] for chat in hidden) == sorted(mine)
    assert [chat["id"] for chat in client.get("/chats", headers=other).json()["chats"]] == [theirs]
