"""Moderating messages: halting and resuming trees, delete and undelete, edits with their history."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from oasst.app import create_app
from oasst.config import Settings
from oasst.db.models import ApiClient, Message, MessageTreeState, User
from tests.collection.frontend import SMALL_TREES, Frontend, error, user
from tests.conftest import ADMIN_KEY
from tests.factories import Factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(tree_manager=SMALL_TREES, message_size_limit=60)


@pytest.fixture
def untrusted(factory: Factory) -> dict[str, str]:
    _, key = factory.api_client()
    return {"X-API-Key": key}


def state(client: TestClient, message_id: Any) -> tuple[str, bool]:
    body = client.get(f"/api/v1/messages/{message_id}/tree/state").json()
    return body["state"], body["active"]


def halt(client: TestClient, message_id: Any, value: bool) -> dict[str, Any]:
    response = client.put(f"/api/v1/messages/{message_id}/tree/state", params={"halt": value})
    assert response.status_code == 200, response.text
    return dict(response.json())


def prompt(fe: Frontend, who: str, text: str, *, review: bool) -> str:
    """A new prompt of `who`; with `review`, bob accepts it (it then waits for the lottery)."""
    if review:
        return fe.accepted_prompt(who, text)
    assert fe.reply(who, fe.task(who, "initial_prompt"), text).status_code == 200
    listed = fe.client.get("/api/v1/messages/", params={"only_roots": True, "max_count": 1}).json()
    assert listed[0]["text"] == text
    return str(listed[0]["id"])


# --- halting and resuming trees --------------------------------------------------------------------------


def test_halt_and_resume_a_growing_tree(frontend: Frontend) -> None:
    client = frontend.client
    root = prompt(frontend, "alice", "Name a blue fruit.", review=True)
    assert frontend.reply("carol", frontend.task("carol", "assistant_reply"), "Blueberry.").status_code == 200
    assert state(client, root) == ("growing", True)

    body = halt(client, root, True)
    assert list(body) == [
        "message_tree_id", "state", "goal_tree_size", "max_depth", "max_children_count", "active", "origin",
    ]  # fmt: skip
    assert (body["message_tree_id"], body["state"], body["active"]) == (root, "halted_by_moderator", False)
    assert body["goal_tree_size"] == 3 and body["origin"] is None
    assert state(client, root) == ("halted_by_moderator", False)
    # A halted tree hands out no work.
    assert frontend.request("dave", "assistant_reply").status_code == 503
    assert frontend.request("erin", "label_assistant_reply").status_code == 503

    # It won the lottery once, so it grows again.
    assert halt(client, root, False)["state"] == "growing"
    assert frontend.task("erin", "label_assistant_reply")["reply"] == "Blueberry."


def test_resume_sends_a_tree_that_never_won_back_to_review(frontend: Frontend) -> None:
    client = frontend.client
    unreviewed = prompt(frontend, "alice", "Why is the sky blue?", review=False)
    halt(client, unreviewed, True)
    assert frontend.request("bob", "label_initial_prompt").status_code == 503
    assert halt(client, unreviewed, False)["state"] == "initial_prompt_review"
    assert state(client, unreviewed) == ("initial_prompt_review", True)

    # An accepted prompt that was halted before the lottery goes back to waiting for it.
    task = frontend.task("bob", "label_initial_prompt")
    assert frontend.label("bob", task, quality=1.0).status_code == 200
    assert state(client, unreviewed) == ("prompt_lottery_waiting", False)
    halt(client, unreviewed, True)
    assert halt(client, unreviewed, False)["state"] == "prompt_lottery_waiting"
    # Resuming a waiting prompt leaves it waiting.
    assert halt(client, unreviewed, False)["state"] == "prompt_lottery_waiting"


def test_resume_of_a_finished_tree_scores_it_again(frontend: Frontend) -> None:
    root = frontend.grow_tree()
    halt(frontend.client, root, True)
    assert halt(frontend.client, root, False)["state"] == "ready_for_export"
    ranks = {m["text"]: m["rank"] for m in frontend.client.get(f"/api/v1/messages/{root}/children").json()}
    assert sorted(ranks.values()) == [0, 1]


def test_tree_state_needs_a_trusted_client_and_a_message(
    app_client: TestClient, untrusted: dict[str, str], factory: Factory, admin: ApiClient
) -> None:
    root = factory.message(admin)
    path = f"/api/v1/messages/{root.id}/tree/state"
    assert error(app_client.put(path, params={"halt": True}, headers=untrusted)) == (403, 2)
    assert error(app_client.put(f"/api/v1/messages/{uuid.uuid4()}/tree/state", params={"halt": True})) == (
        404,
        2001,
    )
    assert app_client.put(path).status_code == 422  # halt is required


# --- delete and undelete ----------------------------------------------------------------------------------


def test_delete_takes_descendants_and_undelete_takes_ancestors(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root, reply, answer, last = factory.chain(admin, author, 4)
    sibling = factory.message(admin, author, root)

    response = app_client.delete(f"/api/v1/messages/{reply.id}")
    assert response.status_code == 204 and response.content == b""
    deleted = {m.id: m.deleted for m in factory.rows(Message, message_tree_id=root.id)}
    assert deleted == {root.id: False, reply.id: True, answer.id: True, last.id: True, sibling.id: False}
    assert [m["id"] for m in app_client.get(f"/api/v1/messages/{root.id}/children").json()] == [
        str(sibling.id)
    ]

    response = app_client.put(f"/api/v1/messages/{answer.id}/undelete")
    assert response.status_code == 202 and response.json() is None
    deleted = {m.id: m.deleted for m in factory.rows(Message, message_tree_id=root.id)}
    assert deleted == {root.id: False, reply.id: False, answer.id: False, last.id: True, sibling.id: False}
    # children_count is left alone, as upstream.
    assert factory.fetch(Message, root.id).children_count == 2


def test_deleting_a_root_stops_its_tree(app_client: TestClient, factory: Factory, admin: ApiClient) -> None:
    root = factory.message(admin)
    assert state(app_client, root.id) == ("growing", True)
    assert app_client.delete(f"/api/v1/messages/{root.id}").status_code == 204
    assert state(app_client, root.id) == ("halted_by_moderator", False)


def test_deleting_a_reply_frees_its_place(frontend: Frontend) -> None:
    client = frontend.client
    root = prompt(frontend, "alice", "Give me a colour.", review=True)
    for who, text in {"carol": "Red.", "dave": "Green."}.items():
        assert frontend.reply(who, frontend.task(who, "assistant_reply"), text).status_code == 200
    # Both reply slots of the prompt are taken.
    assert frontend.request("frank", "assistant_reply").status_code == 503
    children = {m["text"]: m["id"] for m in client.get(f"/api/v1/messages/{root}/children").json()}
    assert client.delete(f"/api/v1/messages/{children['Green.']}").status_code == 204
    assert state(client, root) == ("growing", True)
    assert (
        frontend.task("frank", "assistant_reply")["conversation"]["messages"][0]["text"]
        == "Give me a colour."
    )


def test_deleting_the_last_reply_under_review_lets_a_full_tree_rank(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root = factory.message(admin, author)
    first = factory.message(admin, factory.user(admin), root)
    factory.message(admin, factory.user(admin), root)
    pending = factory.message(admin, factory.user(admin), first, review_result=None)
    with Session(factory.engine) as session:
        tree = session.get(MessageTreeState, root.id)
        assert tree is not None
        tree.goal_tree_size = 3
        session.commit()
    # The size goal is met, but a reply still waits for its review.
    assert app_client.delete(f"/api/v1/messages/{pending.id}").status_code == 204
    assert state(app_client, root.id) == ("ranking", True)


def test_delete_and_undelete_need_a_trusted_client_and_a_message(
    app_client: TestClient, untrusted: dict[str, str], factory: Factory, admin: ApiClient
) -> None:
    root = factory.message(admin)
    assert error(app_client.delete(f"/api/v1/messages/{root.id}", headers=untrusted)) == (403, 2)
    assert error(app_client.put(f"/api/v1/messages/{root.id}/undelete", headers=untrusted)) == (403, 2)
    assert error(app_client.delete(f"/api/v1/messages/{uuid.uuid4()}")) == (404, 2001)
    assert error(app_client.put(f"/api/v1/messages/{uuid.uuid4()}/undelete")) == (404, 2001)
    assert factory.fetch(Message, root.id).deleted is False


def test_delete_all_messages_of_a_user(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    other = factory.user(admin, "bob")
    root = factory.message(admin, author)
    answer = factory.message(admin, other, root)
    elsewhere = factory.message(admin, other)
    mine = factory.message(admin, author, elsewhere)
    below = factory.message(admin, other, mine)

    assert app_client.delete(f"/api/v1/users/{author.id}/messages").status_code == 204
    deleted = {m.id for m in factory.rows(Message, deleted=True)}
    assert deleted == {root.id, answer.id, mine.id, below.id}
    assert state(app_client, root.id) == ("halted_by_moderator", False)
    assert state(app_client, elsewhere.id) == ("growing", True)
    assert error(app_client.delete(f"/api/v1/users/{uuid.uuid4()}/messages")) == (404, 4002)


def test_delete_messages_of_a_frontend_user_within_the_calling_client(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    bot, bot_key = factory.api_client(trusted=True)
    twin = factory.user(bot, "alice")
    web_message = factory.message(admin, author)
    bot_message = factory.message(bot, twin)

    response = app_client.delete(
        "/api/v1/frontend_users/local/alice/messages", headers={"X-API-Key": bot_key}
    )
    assert response.status_code == 204
    assert factory.fetch(Message, bot_message.id).deleted is True
    assert factory.fetch(Message, web_message.id).deleted is False
    missing = app_client.delete("/api/v1/frontend_users/local/nobody/messages")
    assert error(missing) == (404, 4002)


# --- edits and history ------------------------------------------------------------------------------------


def edit(client: TestClient, message_id: Any, text: str, who: str = "mod") -> Any:
    return client.post(f"/api/v1/messages/{message_id}/edit", json={"user": user(who), "new_content": text})


def test_edits_keep_every_revision(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    message = factory.message(admin, author, text="Teh original.")
    first = edit(app_client, message.id, "The original.")
    assert first.status_code == 200 and first.json() is None
    assert edit(app_client, message.id, "The final text.").status_code == 200

    body = app_client.get(f"/api/v1/messages/{message.id}").json()
    assert (body["text"], body["edited"]) == ("The final text.", True)

    history = app_client.get(f"/api/v1/messages/{message.id}/history", headers={"x-oasst-user": "local:mod"})
    assert history.status_code == 200
    revisions = history.json()
    assert [r["text"] for r in revisions] == ["Teh original.", "The original.", "The final text."]
    assert list(revisions[0]) == ["id", "text", "message_id", "user_id", "created_date", "user_is_author"]
    moderator = app_client.get("/api/v1/frontend_users/local/mod").json()["user_id"]
    assert [r["user_id"] for r in revisions] == [str(author.id), moderator, moderator]
    assert [r["user_is_author"] for r in revisions] == [False, True, True]
    assert revisions[0]["created_date"] == body["created_date"]
    assert len({r["id"] for r in revisions}) == 3
    assert all(uuid.UUID(r["id"]).version == 7 for r in revisions)
    # Without a current user nobody is the author.
    anonymous = app_client.get(f"/api/v1/messages/{message.id}/history").json()
    assert [r["user_is_author"] for r in anonymous] == [None, None, None]


def test_edit_checks_text_and_message(
    app_client: TestClient, factory: Factory, admin: ApiClient, untrusted: dict[str, str]
) -> None:
    message = factory.message(admin, text="Short.")
    assert error(edit(app_client, message.id, "x" * 61)) == (400, 1008)  # the configured limit is 60
    assert error(edit(app_client, message.id, "   ")) == (400, 1010)
    assert error(edit(app_client, uuid.uuid4(), "Hello")) == (404, 2001)
    response = app_client.post(
        f"/api/v1/messages/{message.id}/edit",
        json={"user": user("mod"), "new_content": "Hi"},
        headers=untrusted,
    )
    assert error(response) == (403, 2)
    assert (
        app_client.post(f"/api/v1/messages/{message.id}/edit", json={"user": user("mod")}).status_code == 422
    )
    assert factory.fetch(Message, message.id).text == "Short."
    assert app_client.get(f"/api/v1/messages/{message.id}/history").json() == []
    assert error(app_client.get(f"/api/v1/messages/{message.id}/history", headers=untrusted)) == (403, 2)
    assert error(app_client.get(f"/api/v1/messages/{uuid.uuid4()}/history")) == (404, 2001)


def test_an_edited_message_is_what_the_tree_shows(make_settings: Callable[..., Settings]) -> None:
    with TestClient(
        create_app(make_settings(tree_manager=SMALL_TREES)), headers={"X-API-Key": ADMIN_KEY}
    ) as client:
        fe = Frontend(client)
        root = prompt(fe, "alice", "Waht is 2+2?", review=True)
        assert edit(client, root, "What is 2+2?").status_code == 200
        task = fe.task("carol", "assistant_reply")
        assert task["conversation"]["messages"][0]["text"] == "What is 2+2?"
