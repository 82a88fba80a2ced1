"""A tree goes from an initial prompt to ready_for_export through the v1 task protocol alone."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from oasst.app import create_app
from oasst.config import Settings
from tests.collection.frontend import SMALL_TREES, Frontend, user
from tests.conftest import ADMIN_KEY


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(tree_manager=SMALL_TREES)


def test_prompt_to_ready_for_export(frontend: Frontend) -> None:
    prompt_task = frontend.task("alice", "initial_prompt")
    assert prompt_task["type"] == "initial_prompt" and prompt_task["hint"] is None
    assert (
        frontend.reply("alice", prompt_task, "What is the capital of France?").json()["type"] == "task_done"
    )

    review = frontend.task("bob", "label_initial_prompt")
    root_id = review["message_id"]
    assert review["conversation"]["messages"][0]["text"] == "What is the capital of France?"
    assert frontend.tree_state(root_id) == "initial_prompt_review"
    assert frontend.label("bob", review, quality=1.0).status_code == 200
    assert frontend.tree_state(root_id) == "prompt_lottery_waiting"

    answers = {"carol": "Paris.", "dave": "It is Paris, on the Seine."}
    for who, text in answers.items():
        task = frontend.task(who, "assistant_reply")  # the lottery moves the tree to growing first
        assert [m["text"] for m in task["conversation"]["messages"]] == ["What is the capital of France?"]
        assert frontend.reply(who, task, text).status_code == 200
    assert frontend.tree_state(root_id) == "growing"
    # Both reply slots are taken: nobody gets a third assistant reply on this tree.
    assert frontend.request("erin", "assistant_reply").status_code == 503

    for reviewer in ("erin", "frank"):
        task = frontend.task(reviewer, "label_assistant_reply")
        assert task["reply"] in answers.values()
        assert frontend.label(reviewer, task, quality=0.8).status_code == 200
    assert frontend.tree_state(root_id) == "ranking"

    ranking = frontend.task("bob", "rank_assistant_replies")
    texts = [m["text"] for m in ranking["reply_messages"]]
    best_first = [texts.index("It is Paris, on the Seine."), texts.index("Paris.")]
    assert frontend.rank("bob", ranking, best_first).status_code == 200
    assert frontend.tree_state(root_id) == "ready_for_export"

    children = frontend.client.get(f"/api/v1/messages/{root_id}/children").json()
    assert all(m["created_date"].endswith("+00:00") for m in children)  # upstream's offset form, not "Z"
    ranks = {m["text"]: m["rank"] for m in children}
    assert ranks == {"It is Paris, on the Seine.": 0, "Paris.": 1}

    metrics = frontend.client.get("/metrics").text
    assert 'oasst_tasks_handed_out_total{type="assistant_reply"} 2.0' in metrics
    assert 'oasst_tasks_answered_total{type="label_assistant_reply"} 2.0' in metrics
    assert 'oasst_trees{state="ready_for_export"} 1.0' in metrics


def test_the_lottery_grows_no_more_trees_than_allowed(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(tree_manager=SMALL_TREES.model_copy(update={"max_active_trees": 1}))
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as client:
        front = Frontend(client)
        prompts = [front.accepted_prompt("alice", text) for text in ("First question?", "Second question?")]
        for _ in range(3):  # every task request runs the lottery; one growing tree is the cap
            front.request("zoe")
            assert sorted(front.tree_state(p) for p in prompts) == ["growing", "prompt_lottery_waiting"]
        # With the growing slot taken, new prompts are still welcome: the review queue has room.
        assert client.post("/api/v1/tasks/availability", json=user("zoe")).json()["initial_prompt"] > 0
