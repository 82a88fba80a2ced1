"""`oasst serve --only`: the inference API alone at upstream's root paths, or the collection API alone."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient

from oasst.app import create_app
from oasst.config import Settings
from oasst.inference.embedded import EmbeddedWorker
from tests.conftest import ADMIN_KEY
from tests.inference.helpers import MODEL, WorkerProcess
from tests.live import serve


def test_the_inference_api_alone_serves_a_chat_at_the_root(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(serve_only="inference", allow_debug_auth=True, pending_event_interval=0.05)
    with serve(settings) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        assert http.get("/api/v1/stats/", headers={"X-API-Key": ADMIN_KEY}).status_code == 404
        assert http.get("/inference/auth/providers").status_code == 404
        assert http.get("/v1/models").status_code == 404
        assert http.get("/auth/providers").json() == ["local", "debug"]

        # The text-client's steps, at upstream's paths.
        login = http.get("/auth/login/debug", params={"username": "tess"}, follow_redirects=True)
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']['access_token']}"
        minted = http.put(
            "/admin/workers", json={"name": "w"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        with WorkerProcess(f"{base_url}/workers/work", minted.json()["api_key"]) as worker:
            worker.wait_for("registered")
            assert [config["name"] for config in http.get("/configs/model_configs").json()] == [MODEL]
            chat_id = http.post("/chats", json={}).json()["id"]
            prompt = http.post(
                f"/chats/{chat_id}/prompter_message", json={"parent_id": None, "content": "hi"}
            )
            body = {"parent_id": prompt.json()["id"], "model_config_name": MODEL}
            reply = http.post(f"/chats/{chat_id}/assistant_message", json=body).json()
            with http.stream("GET", f"/chats/{chat_id}/messages/{reply['id']}/events") as events:
                last = [line for line in events.iter_lines() if line.startswith("data:")][-1]
        assert '"event_type":"message"' in last
        assert http.get(f"/chats/{chat_id}/messages/{reply['id']}").json()["content"] == "You said: hi"


def test_the_collection_api_alone(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(serve_only="collection"))) as client:
        assert client.get("/api/v1/stats/", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
        assert client.get("/inference/auth/providers").status_code == 404
        assert client.get("/auth/providers").status_code == 404


def test_the_embedded_worker_finds_the_root_mounted_socket(make_settings: Callable[..., Settings]) -> None:
    full = EmbeddedWorker(make_settings(), "0.0.0.0", 8080).command()
    alone = EmbeddedWorker(make_settings(serve_only="inference"), "0.0.0.0", 8080).command()
    assert full[full.index("--server") + 1] == "http://127.0.0.1:8080"
    assert alone[alone.index("--server") + 1] == "http://127.0.0.1:8080/workers/work"
