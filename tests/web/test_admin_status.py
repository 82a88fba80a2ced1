"""Admins mint and switch off API clients of /api/v1, and see the tree manager and the chat's workers and
queues at a glance; nobody else may."""

from __future__ import annotations

import html
import json
import re

from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from oasst.db.models import ApiClient, User
from oasst.protocol.inference import ModelConfig
from oasst.protocol.worker import (
    API_KEY_HEADER,
    PROTOCOL_VERSION,
    PROTOCOL_VERSION_HEADER,
    WorkerConfig,
    WorkerInfo,
)
from oasst.web.service import PRESET_NAMES
from tests.conftest import ADMIN_KEY
from tests.factories import Factory
from tests.inference.helpers import MODEL
from tests.web.flow import WebUser

KEY = re.compile(r'<input id="api-key" value="([^"]+)" readonly')
CLIENT_ROW = re.compile(r'<tr data-api-client="([0-9a-f-]+)">\s*<td>([^<]*)</td>')


def _status(client: TestClient, key: str, path: str) -> int:
    return client.get(f"/api/v1{path}", headers={"X-API-Key": key}).status_code


def _create(visitor: WebUser, description: str, **fields: str) -> str:
    """Create a client on the page; its key, read off the answer."""
    created = visitor.post("/admin/api_clients", {"description": description, **fields})
    assert created.status_code == 200, created.text
    match = KEY.search(created.text)
    assert match, created.text
    return match.group(1)


def _client_ids(page: str) -> dict[str, str]:
    """Description -> id of the clients listed."""
    return {html.unescape(description): client_id for client_id, description in CLIENT_ROW.findall(page)}


def test_an_admin_creates_and_switches_off_api_clients(visitor: WebUser) -> None:
    visitor.dev_sign_in("root", role="admin")
    listing = visitor.get("/admin/api_clients").text
    assert "Web UI (built-in)" in listing and "this site" in listing

    bot_key = _create(visitor, "discord <bot>", frontend_type="discord", admin_email="ops@example.org")
    assert _status(visitor.client, bot_key, "/admin/backend_settings/public") == 200
    assert _status(visitor.client, bot_key, "/stats/") == 403  # not trusted: no moderation
    importer_key = _create(visitor, "importer", frontend_type="import", trusted="true")

    listing = visitor.get("/admin/api_clients").text
    assert "discord &lt;bot&gt;" in listing and "<bot>" not in listing and "ops@example.org" in listing
    assert bot_key not in listing and importer_key not in listing  # shown once, on the answer that made it
    ids = _client_ids(listing)
    assert {"discord <bot>", "importer", "Web UI (built-in)"} <= set(ids)

    # A key not used since is refused at once (a used one within the client cache's ten seconds).
    switched_off = visitor.post(f"/admin/api_clients/{ids['importer']}", {"enabled": "false"})
    assert 'data-client-state="disabled"' in switched_off.text
    assert _status(visitor.client, importer_key, "/stats/") == 403
    visitor.post(f"/admin/api_clients/{ids['importer']}", {"enabled": "true"})
    assert _status(visitor.client, importer_key, "/stats/") == 200  # trusted

    own = visitor.post(f"/admin/api_clients/{ids['Web UI (built-in)']}", {"enabled": "false"})
    assert own.status_code == 400 and "cannot be switched off" in own.text
    taken = visitor.post("/admin/api_clients", {"description": "fake web", "frontend_type": "oasst-web"})
    assert taken.status_code == 400
    assert visitor.post("/admin/api_clients", {"description": ""}).status_code == 400
    unknown = "00000000-0000-0000-0000-000000000000"
    assert visitor.post(f"/admin/api_clients/{unknown}", {"enabled": "false"}).status_code == 404
    forged = visitor.client.post("/admin/api_clients", data={"description": "forged"})
    assert forged.status_code == 403

    visitor.dev_sign_in("mia", role="moderator")
    assert visitor.get("/admin/api_clients").status_code == 403
    assert visitor.post("/admin/api_clients", {"description": "sneaky"}).status_code == 403
    assert visitor.post(f"/admin/api_clients/{ids['discord <bot>']}", {"enabled": "false"}).status_code == 403
    assert _status(visitor.client, bot_key, "/admin/backend_settings/public") == 200


def _cell(page: str, state: str, lang: str) -> int:
    match = re.search(rf'data-trees="{state}" data-lang="{lang}">(\d+)<', page)
    assert match, f"no cell for {state} in {lang}"
    return int(match.group(1))


def test_the_status_page_counts_trees_by_state_and_language(
    visitor: WebUser, factory: Factory, admin: ApiClient
) -> None:
    roots = [
        factory.message(admin, text=f"a growing tree in {lang}", lang=lang) for lang in ("en", "en", "de")
    ]
    factory.message(admin, parent=roots[0], deleted=True)
    factory.set_tree_state(factory.message(admin, lang="en").id, "halted_by_moderator")
    factory.set_tree_state(factory.message(admin, lang="de").id, "ready_for_export")

    visitor.dev_sign_in("root", role="admin")
    page = visitor.get("/admin/status?lang=de").text
    assert (_cell(page, "growing", "en"), _cell(page, "growing", "de"), _cell(page, "growing", "all")) == (
        2,
        1,
        3,
    )
    assert (_cell(page, "halted_by_moderator", "en"), _cell(page, "halted_by_moderator", "de")) == (1, 0)
    assert (
        _cell(page, "ready_for_export", "de"),
        _cell(page, "ranking", "all"),
        _cell(page, "all", "all"),
    ) == (
        1,
        0,
        5,
    )
    assert page.count("data-active-tree=") == 3  # the growing ones
    assert 'data-stat="messages">5<' in page and 'data-stat="deleted">1<' in page
    # The growing German tree waits for an assistant's reply; in French there is nothing to answer.
    assert 'data-available="assistant_reply">1<' in page
    assert 'data-available="assistant_reply">0<' in visitor.get("/admin/status?lang=fr").text
    assert "No worker is connected to this server." in page

    # An admin banned as a contributor is offered no tasks; the rest of the page is there all the same.
    (root,) = factory.rows(User, username="dev:root")
    visitor.post(f"/moderation/users/{root.id}", {"enabled": "false"})
    page = visitor.get("/admin/status").text
    assert "Your account is disabled." in page and "data-available=" not in page
    assert _cell(page, "growing", "all") == 3

    assert visitor.get("/admin/status?lang=xx").status_code == 400
    visitor.dev_sign_in("mod", role="moderator")
    assert visitor.get("/admin/status").status_code == 403


def _register(socket: WebSocketTestSession, max_parallel: int) -> None:
    """Say what the worker serves, as `oasst worker` does, and wait for the server's first ping."""
    config = WorkerConfig(model=ModelConfig(model_id=MODEL), max_parallel_requests=max_parallel)
    socket.send_text(WorkerInfo(config=config).model_dump_json())
    assert json.loads(socket.receive_text())["request_type"] == "ping"


def _next_work(socket: WebSocketTestSession) -> dict[str, object]:
    while True:
        packet: dict[str, object] = json.loads(socket.receive_text())
        if packet["request_type"] == "work":
            return packet


def _ask(visitor: WebUser, name: str) -> None:
    """`name` opens a chat and asks the model something: a reply is queued."""
    visitor.dev_sign_in(name)
    chat = visitor.post("/chat").url.path
    sent = visitor.post(chat, {"content": "Hello?", "model": MODEL, "preset": PRESET_NAMES[0]})
    assert sent.status_code == 200, sent.text


def _row(page: str, attribute: str) -> str:
    start = page.index(attribute)
    return page[start : page.index("</tr>", start)]


def test_the_status_page_shows_connected_workers_and_their_queues(visitor: WebUser) -> None:
    minted = visitor.client.put(
        "/inference/admin/workers", json={"name": "gpu-1"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    headers = {API_KEY_HEADER: minted.json()["api_key"], PROTOCOL_VERSION_HEADER: PROTOCOL_VERSION}
    compat_hash = ModelConfig(model_id=MODEL).compat_hash
    with visitor.client.websocket_connect("/inference/workers/work", headers=headers) as socket:
        _register(socket, max_parallel=1)
        visitor.dev_sign_in("root", role="admin")
        page = visitor.get("/admin/status").text
        worker = _row(page, 'data-worker="gpu-1"')
        assert f"<td>{MODEL}</td>" in worker
        assert "<td data-max-parallel>1</td>" in worker and "<td data-in-flight>0</td>" in worker
        model = _row(page, f'data-model="{compat_hash}"')
        assert "<td data-workers>1</td>" in model and "<td data-queued>0</td>" in model

        # Alice's reply goes to the worker; Bob's waits, as the worker takes one at a time.
        _ask(visitor, "alice")
        _next_work(socket)
        _ask(visitor, "bob")
        visitor.dev_sign_in("root", role="admin")
        page = visitor.get("/admin/status").text
        assert "<td data-in-flight>1</td>" in _row(page, 'data-worker="gpu-1"')
        model = _row(page, f'data-model="{compat_hash}"')
        assert "<td data-in-flight>1 / 1</td>" in model and "<td data-queued>1</td>" in model

    # The worker is gone; Bob's reply still waits for the model.
    page = visitor.get("/admin/status").text
    assert "No worker is connected to this server." in page
    model = _row(page, f'data-model="{compat_hash}"')
    assert "<td data-workers>0</td>" in model and "<td data-queued>1</td>" in model
