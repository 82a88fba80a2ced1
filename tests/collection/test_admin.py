"""Admin routes: API clients by root token, settings, purging a user's work, flagged messages, user merges."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oasst.app import create_app
from oasst.collection.admin.service import full_settings
from oasst.config import Settings
from oasst.db.models import (
    ApiClient,
    Journal,
    Message,
    MessageEmoji,
    MessageTreeState,
    Task,
    TextLabels,
    User,
)
from tests.collection.frontend import SMALL_TREES, Frontend, error, user
from tests.conftest import ADMIN_KEY
from tests.factories import Factory

# Small trees: a prompt, two assistant replies and one prompter reply fill one.
TREES = SMALL_TREES.model_copy(update={"goal_tree_size": 4})
ROOT_TOKEN = "root-token-for-tests"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(tree_manager=TREES, root_tokens=[ROOT_TOKEN])


def user_id(client: TestClient, name: str) -> str:
    response = client.get(f"/api/v1/frontend_users/local/{name}")
    assert response.status_code == 200, response.text
    return str(response.json()["user_id"])


def tree_texts(client: TestClient, root_id: str) -> dict[str, dict[str, Any]]:
    response = client.get(f"/api/v1/messages/{root_id}/tree", params={"include_deleted": True})
    assert response.status_code == 200, response.text
    return {m["text"]: m for m in response.json()["messages"]}


def emoji(client: TestClient, message_id: str, who: str, code: str) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/messages/{message_id}/emoji", json={"user": user(who), "emoji": code, "op": "add"}
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


# --- every admin route is for trusted clients --------------------------------------------------------------

# Fixed ids: parameters must be the same in every xdist worker.
SOME_ID = "0b7e8a52-1f4e-4f0c-9a57-3c1d2e5f6a70"
TRUSTED_ROUTES = [
    ("get", "/api/v1/admin/backend_settings/full", None),
    ("post", f"/api/v1/admin/purge_user/{SOME_ID}", None),
    ("post", f"/api/v1/admin/purge_user/{SOME_ID}/messages", None),
    ("get", "/api/v1/admin/flagged_messages", None),
    ("get", "/api/v1/admin/flagged_messages/cursor", None),
    ("post", f"/api/v1/admin/flagged_messages/{SOME_ID}/processed", None),
    ("post", "/api/v1/admin/merge_users", {"destination_user_id": SOME_ID, "source_user_ids": []}),
    ("delete", f"/api/v1/users/{SOME_ID}/messages", None),
    ("delete", "/api/v1/frontend_users/local/alice/messages", None),
]


@pytest.mark.parametrize(("method", "path", "body"), TRUSTED_ROUTES)
def test_admin_routes_refuse_untrusted_clients(
    app_client: TestClient, factory: Factory, method: str, path: str, body: dict[str, Any] | None
) -> None:
    _, key = factory.api_client()
    kwargs: dict[str, Any] = {"headers": {"X-API-Key": key}}
    if body is not None:
        kwargs["json"] = body
    response = app_client.request(method.upper(), path, **kwargs)
    assert error(response) == (403, 2)
    assert response.json()["message"] == "Forbidden"
    # Without a key at all the answer is the spec's "Could not validate credentials".
    kwargs["headers"] = {"X-API-Key": ""}
    assert error(app_client.request(method.upper(), path, **kwargs)) == (403, 2)


# --- API clients ------------------------------------------------------------------------------------------


def test_root_token_creates_an_api_client_whose_key_works(app_client: TestClient) -> None:
    body = {"description": "discord bot", "frontend_type": "discord", "admin_email": "ops@example.org"}
    response = app_client.post(
        "/api/v1/admin/api_client", json=body, headers={"Authorization": f"Bearer {ROOT_TOKEN}"}
    )
    assert response.status_code == 200, response.text
    key = response.json()
    assert isinstance(key, str) and len(key) == 64 and int(key, 16) >= 0

    # The new client is untrusted: public settings yes, admin routes no.
    public = app_client.get("/api/v1/admin/backend_settings/public", headers={"X-API-Key": key})
    assert public.status_code == 200
    assert error(app_client.get("/api/v1/admin/flagged_messages", headers={"X-API-Key": key})) == (403, 2)

    trusted = app_client.post(
        "/api/v1/admin/api_client",
        json={"description": "web", "frontend_type": "web", "trusted": True},
        headers={"Authorization": f"Bearer {ROOT_TOKEN}"},
    ).json()
    assert app_client.get("/api/v1/admin/flagged_messages", headers={"X-API-Key": trusted}).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {ROOT_TOKEN}", "Bearer "])
def test_api_client_needs_a_root_token(app_client: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = app_client.post(
        "/api/v1/admin/api_client", json={"description": "x", "frontend_type": "web"}, headers=headers
    )
    assert error(response) == (403, 3)


def test_no_root_token_is_configured_by_default(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings())) as client:
        for token in ("1234", ""):
            response = client.post(
                "/api/v1/admin/api_client",
                json={"description": "x", "frontend_type": "web"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert error(response) == (403, 3)


# --- settings ---------------------------------------------------------------------------------------------


def test_full_settings_hide_every_secret(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        root_tokens=["very-secret-root"],
        redis_url="redis://:hunter2@127.0.0.1:6399/0",
        message_size_limit=1234,
    )
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as client:
        response = client.get("/api/v1/admin/backend_settings/full")
    assert response.status_code == 200
    body = response.json()
    for secret in ("very-secret-root", "hunter2", ADMIN_KEY):
        assert secret not in response.text
    assert body["message_size_limit"] == 1234
    assert body["root_tokens"] == ["**********"]
    assert body["bootstrap_api_key"] == "**********"
    assert body["redis_url"] == "redis://:**********@127.0.0.1:6399/0"
    assert body["tree_manager"]["goal_tree_size"] == 12


def test_database_passwords_are_masked() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url="postgresql+psycopg://oasst:s3cr3t@db:5432/oasst"
    )
    assert full_settings(settings)["database_url"] == "postgresql+psycopg://oasst:**********@db:5432/oasst"


def test_public_settings_for_any_client(app_client: TestClient, factory: Factory) -> None:
    _, key = factory.api_client()
    response = app_client.get("/api/v1/admin/backend_settings/public", headers={"X-API-Key": key})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "PROJECT_NAME", "API_V1_STR", "MESSAGE_SIZE_LIMIT", "DEBUG_USE_SEED_DATA",
        "DEBUG_ALLOW_SELF_LABELING", "DEBUG_SKIP_EMBEDDING_COMPUTATION", "DEBUG_SKIP_TOXICITY_CALCULATION",
        "DEBUG_DATABASE_ECHO",
        "USER_STATS_INTERVAL_DAY", "USER_STATS_INTERVAL_WEEK", "USER_STATS_INTERVAL_MONTH",
        "USER_STATS_INTERVAL_TOTAL",
    ]  # fmt: skip
    assert body["API_V1_STR"] == "/api/v1"
    assert body["MESSAGE_SIZE_LIMIT"] == 2000
    assert body["USER_STATS_INTERVAL_DAY"] == 5
    assert error(app_client.get("/api/v1/admin/backend_settings/public", headers={"X-API-Key": "nope"})) == (
        403,
        2,
    )


# --- purge ------------------------------------------------------------------------------------------------


def build_world(fe: Frontend) -> dict[str, str]:
    """Alice's tree, where mallory wrote a reply (answered by dave) and a review; then mallory's own tree.

    Returns the message ids by name: A (alice's root), A1 (mallory's reply), D1 (dave's answer to it),
    A2 (carol's reply, reviewed by mallory), M (mallory's prompt) and M1 (carol's reply to it).
    """
    root = fe.accepted_prompt("alice", "Tell me about owls.")

    task = fe.task("mallory", "assistant_reply")  # the lottery wakes alice's tree
    assert fe.reply("mallory", task, "Owls are birds, trust me.").status_code == 200
    task = fe.task("erin", "label_assistant_reply")
    assert fe.label("erin", task, quality=0.8).status_code == 200
    task = fe.task("dave", "prompter_reply")
    assert task["conversation"]["messages"][-1]["text"] == "Owls are birds, trust me."
    assert fe.reply("dave", task, "Which owls hunt by day?").status_code == 200
    task = fe.task("carol", "assistant_reply")
    assert [m["text"] for m in task["conversation"]["messages"]] == ["Tell me about owls."]
    assert fe.reply("carol", task, "Owls are nocturnal raptors.").status_code == 200
    task = fe.task("frank", "label_prompter_reply")
    assert fe.label("frank", task, quality=0.9).status_code == 200
    task = fe.task("mallory", "label_assistant_reply")
    assert task["reply"] == "Owls are nocturnal raptors."
    assert fe.label("mallory", task, quality=0.2).status_code == 200
    assert fe.tree_state(root) == "ranking"
    ranking = fe.task("bob", "rank_assistant_replies")
    assert fe.rank("bob", ranking, [0, 1]).status_code == 200
    assert fe.tree_state(root) == "ready_for_export"

    mallory_root = fe.accepted_prompt("mallory", "Buy my stuff!")
    task = fe.task("carol", "assistant_reply")
    assert task["conversation"]["messages"][0]["text"] == "Buy my stuff!"
    assert fe.reply("carol", task, "No thanks.").status_code == 200

    texts = tree_texts(fe.client, root)
    ids = {
        "A": root,
        "A1": texts["Owls are birds, trust me."]["id"],
        "D1": texts["Which owls hunt by day?"]["id"],
        "A2": texts["Owls are nocturnal raptors."]["id"],
        "M": mallory_root,
        "M1": tree_texts(fe.client, mallory_root)["No thanks."]["id"],
    }
    emoji(fe.client, ids["A2"], "mallory", "red_flag")
    emoji(fe.client, ids["A2"], "bob", "+1")
    return ids


def test_purge_preview_changes_nothing(frontend: Frontend, factory: Factory) -> None:
    ids = build_world(frontend)
    client = frontend.client
    mallory = user_id(client, "mallory")
    response = client.post(f"/api/v1/admin/purge_user/{mallory}")  # preview and ban by default
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["before", "after", "preview", "duration"]
    assert body["preview"] is True and body["duration"] >= 0
    assert body["before"] == {
        "all": 6, "active": 6, "active_by_lang": {"en": 6}, "deleted": 0, "message_trees": 2,
    }  # fmt: skip
    assert body["after"] == {
        "all": 2,
        "active": 2,
        "active_by_lang": {"en": 2},
        "deleted": 0,
        "message_trees": 1,
    }

    # Rolled back: every message, state, emoji and the user are as they were.
    assert len(tree_texts(client, ids["A"])) == 4
    assert client.get(f"/api/v1/messages/{ids['M1']}").status_code == 200
    assert frontend.tree_state(ids["A"]) == "ready_for_export"
    assert frontend.tree_state(ids["M"]) == "growing"
    assert client.get(f"/api/v1/messages/{ids['A2']}").json()["emojis"] == {"red_flag": 1, "+1": 1}
    assert client.get("/api/v1/frontend_users/local/mallory").json()["enabled"] is True
    # The same connection goes on working after the savepoint was rolled back.
    again = client.post(
        f"/api/v1/admin/purge_user/{mallory}/messages", params={"purge_initial_prompts": True}
    )
    assert again.json()["before"] == body["before"]


def test_purge_removes_exactly_the_users_work(frontend: Frontend, factory: Factory) -> None:
    ids = build_world(frontend)
    client = frontend.client
    mallory = user_id(client, "mallory")
    response = client.post(f"/api/v1/admin/purge_user/{mallory}", params={"preview": False})
    assert response.status_code == 200, response.text
    assert response.json()["preview"] is False
    assert response.json()["after"]["all"] == 2

    # Mallory's tree is gone with carol's reply in it, and so is its state row.
    for name in ("M", "M1", "A1", "D1"):
        assert error(client.get(f"/api/v1/messages/{ids[name]}")) == (404, 2001)
    assert factory.fetch(MessageTreeState, uuid.UUID(ids["M"])) is None

    # Alice's tree keeps her prompt and carol's reply, consistently.
    left = tree_texts(client, ids["A"])
    assert set(left) == {"Tell me about owls.", "Owls are nocturnal raptors."}
    assert left["Tell me about owls."]["deleted"] is False
    root = factory.fetch(Message, uuid.UUID(ids["A"]))
    assert root.children_count == 1
    carol_reply = factory.fetch(Message, uuid.UUID(ids["A2"]))
    assert carol_reply.review_count == 0  # mallory's review of it went
    assert carol_reply.review_result is True
    assert carol_reply.ranking_count == 0 and carol_reply.rank is None  # the ranking included mallory's reply
    assert carol_reply.emojis == {"+1": 1}
    # The tree lost accepted messages: it grows again instead of staying exported with a hole.
    state = client.get(f"/api/v1/messages/{ids['A']}/tree/state").json()
    assert (state["state"], state["active"]) == ("growing", True)

    # Nothing of mallory is left, and she is banned.
    who = uuid.UUID(mallory)
    for model in (Message, TextLabels, MessageEmoji, Task, Journal):
        assert factory.rows(model, user_id=who) == []
    banned = factory.fetch(User, who)
    assert (banned.enabled, banned.deleted) == (False, True)
    # Other people's work in the surviving tree stays: bob's ranking task, erin's and frank's reviews.
    assert factory.rows(TextLabels, user_id=uuid.UUID(user_id(client, "erin"))) == []  # on A1, purged
    assert factory.rows(Task, user_id=uuid.UUID(user_id(client, "bob")))
    # The tree takes new replies where mallory's was.
    task = frontend.task("grace", "assistant_reply")
    assert [m["text"] for m in task["conversation"]["messages"]] == ["Tell me about owls."]


def test_purge_user_messages_keeps_prompts_unless_asked(frontend: Frontend, factory: Factory) -> None:
    ids = build_world(frontend)
    client = frontend.client
    mallory = user_id(client, "mallory")
    response = client.post(f"/api/v1/admin/purge_user/{mallory}/messages", params={"preview": False})
    assert response.status_code == 200, response.text
    assert response.json()["after"]["all"] == 4  # A1 and D1 went
    assert client.get(f"/api/v1/messages/{ids['M']}").status_code == 200
    assert error(client.get(f"/api/v1/messages/{ids['A1']}")) == (404, 2001)
    assert client.get("/api/v1/frontend_users/local/mallory").json()["enabled"] is True
    # Her review and emoji on carol's reply are not messages: they stay.
    assert client.get(f"/api/v1/messages/{ids['A2']}").json()["emojis"] == {"red_flag": 1, "+1": 1}

    # A date window that holds nothing of hers removes nothing.
    window = {"purge_initial_prompts": True, "preview": False, "max_date": "2000-01-01T00:00:00+00:00"}
    assert (
        client.post(f"/api/v1/admin/purge_user/{mallory}/messages", params=window).json()["after"]["all"] == 4
    )
    response = client.post(
        f"/api/v1/admin/purge_user/{mallory}/messages",
        params={"purge_initial_prompts": True, "preview": False},
    )
    assert response.json()["after"] == {
        "all": 2, "active": 2, "active_by_lang": {"en": 2}, "deleted": 0, "message_trees": 1,
    }  # fmt: skip


def test_purge_unknown_user(app_client: TestClient) -> None:
    assert error(app_client.post(f"/api/v1/admin/purge_user/{uuid.uuid4()}")) == (404, 4002)
    assert error(app_client.post(f"/api/v1/admin/purge_user/{uuid.uuid4()}/messages")) == (404, 4002)


# --- flagged messages -------------------------------------------------------------------------------------


def test_red_flags_fill_the_moderation_queue(
    app_client: TestClient, factory: Factory, admin: ApiClient
) -> None:
    author = factory.user(admin, "alice")
    messages = [str(m.id) for m in factory.chain(admin, author, 3)]
    for message_id in messages:
        emoji(app_client, message_id, "bob", "red_flag")

    listed = app_client.get("/api/v1/admin/flagged_messages")  # max_count is optional here
    assert listed.status_code == 200
    items = listed.json()
    assert [i["message_id"] for i in items] == messages[::-1]  # newest flag first
    assert all(i["processed"] is False and i["created_date"].endswith("+00:00") for i in items)
    assert len(app_client.get("/api/v1/admin/flagged_messages", params={"max_count": 2}).json()) == 2

    first = app_client.get("/api/v1/admin/flagged_messages/cursor", params={"max_count": 2}).json()
    assert (first["sort_key"], first["order"], first["prev"]) == ("created_date", "asc", None)
    assert [i["message_id"] for i in first["items"]] == messages[:2]
    second = app_client.get(
        "/api/v1/admin/flagged_messages/cursor", params={"max_count": 2, "after": first["next"]}
    ).json()
    assert [i["message_id"] for i in second["items"]] == messages[2:]
    assert second["next"] is None and second["prev"] is not None
    newest = app_client.get("/api/v1/admin/flagged_messages/cursor", params={"desc": True}).json()
    assert [i["message_id"] for i in newest["items"]] == messages[::-1]
    bad = app_client.get("/api/v1/admin/flagged_messages/cursor", params={"after": "not a cursor"})
    assert error(bad) == (400, 101)

    done = app_client.post(f"/api/v1/admin/flagged_messages/{messages[0]}/processed")
    assert done.status_code == 200
    assert done.json()["message_id"] == messages[0] and done.json()["processed"] is True
    assert error(app_client.post(f"/api/v1/admin/flagged_messages/{uuid.uuid4()}/processed")) == (404, 2001)


# --- merging users ----------------------------------------------------------------------------------------


def test_merge_users_moves_everything(app_client: TestClient, factory: Factory, admin: ApiClient) -> None:
    web, discord = factory.user(admin, "alice"), factory.user(admin, "alice-discord", auth_method="discord")
    other = factory.user(admin, "bob")
    root = factory.message(admin, other)
    mine = factory.message(admin, discord, root)
    emoji(app_client, str(root.id), "alice", "+1")
    emoji(app_client, str(root.id), "alice", "heart_eyes")
    # The discord identity reacted too: a duplicate heart and a contradicting -1.
    for code in ("heart_eyes", "-1", "clap"):
        response = app_client.post(
            f"/api/v1/messages/{root.id}/emoji",
            json={
                "user": {"id": "alice-discord", "display_name": "A", "auth_method": "discord"},
                "emoji": code,
            },
        )
        assert response.status_code == 202
    assert app_client.get(f"/api/v1/messages/{root.id}").json()["emojis"] == {
        "+1": 1, "heart_eyes": 2, "-1": 1, "clap": 1,
    }  # fmt: skip

    body = {"destination_user_id": str(web.id), "source_user_ids": [str(discord.id), str(web.id)]}
    assert app_client.post("/api/v1/admin/merge_users", json=body).status_code == 204

    assert factory.fetch(User, discord.id) is None
    assert factory.fetch(Message, mine.id).user_id == web.id
    assert {e.emoji for e in factory.rows(MessageEmoji, user_id=web.id)} == {"+1", "heart_eyes", "clap"}
    assert app_client.get(f"/api/v1/messages/{root.id}").json()["emojis"] == {
        "+1": 1,
        "heart_eyes": 1,
        "clap": 1,
    }
    listed = app_client.get(f"/api/v1/messages/{mine.id}", headers={"x-oasst-user": "local:alice"}).json()
    assert listed["user_is_author"] is True

    missing = {"destination_user_id": str(uuid.uuid4()), "source_user_ids": [str(other.id)]}
    assert error(app_client.post("/api/v1/admin/merge_users", json=missing)) == (404, 4002)
    assert factory.fetch(User, other.id) is not None
