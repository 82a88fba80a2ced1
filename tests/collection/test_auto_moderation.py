"""Auto-moderation: the crowd's red flags and skips abort, delete or halt, on the next task request."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from oasst.app import create_app
from oasst.config import Settings
from tests.collection.frontend import SMALL_TREES, Frontend, user
from tests.conftest import ADMIN_KEY


@pytest.fixture
def strict(make_settings: Callable[..., Settings]) -> Iterator[Frontend]:
    config = SMALL_TREES.model_copy(
        update={"auto_mod_red_flags": 2, "auto_mod_max_skip_reply": 2, "max_children_count": 3}
    )
    with TestClient(
        create_app(make_settings(tree_manager=config)), headers={"X-API-Key": ADMIN_KEY}
    ) as client:
        yield Frontend(client)


def flag(front: Frontend, message_id: str, *flaggers: str, emoji: str = "red_flag") -> None:
    for who in flaggers:
        body = {"user": user(who), "op": "add", "emoji": emoji}
        assert front.client.post(f"/api/v1/messages/{message_id}/emoji", json=body).status_code == 202


def test_a_red_flagged_prompt_is_aborted(strict: Frontend) -> None:
    assert strict.reply("alice", strict.task("alice", "initial_prompt"), "Something rude").status_code == 200
    prompt_id = strict.client.get("/api/v1/messages/", params={"only_roots": True}).json()[0]["id"]
    flag(strict, prompt_id, "bob")
    strict.request("zoe")  # one flag is not enough
    assert strict.tree_state(prompt_id) == "initial_prompt_review"
    flag(strict, prompt_id, "carol")
    strict.request("zoe")
    assert strict.tree_state(prompt_id) == "aborted_low_grade"


def test_a_red_flagged_reply_is_deleted_with_its_replies(strict: Frontend) -> None:
    root_id = strict.accepted_prompt("alice", "Tell me about owls.")
    assert strict.reply("carol", strict.task("carol", "assistant_reply"), "Owls are rude.").status_code == 200
    reply_id = strict.client.get(f"/api/v1/messages/{root_id}/children").json()[0]["id"]
    flag(strict, reply_id, "bob", "dave")
    strict.request("zoe")
    assert strict.client.get(f"/api/v1/messages/{reply_id}").json()["deleted"] is True
    assert strict.client.get(f"/api/v1/messages/{root_id}/children").json() == []
    assert strict.tree_state(root_id) == "growing"  # the tree itself goes on


def test_a_tree_skipped_too_often_is_halted(strict: Frontend) -> None:
    root_id = strict.accepted_prompt("alice", "Write a limerick.")
    for who in ("bob", "carol"):
        task = strict.task(who, "assistant_reply")
        nack = strict.client.post(
            f"/api/v1/tasks/{task['id']}/nack",
            json={"reason": "no idea"},
            headers={"x-oasst-user": f"local:{who}"},
        )
        assert nack.status_code == 204
    assert strict.client.get(f"/api/v1/messages/{root_id}").json()["emojis"] == {"_skip_reply": 2}
    strict.request("zoe")
    assert strict.tree_state(root_id) == "halted_by_moderator"
