"""`oasst contribute` against a real server: simulated contributors, and a person typing at the terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from oasst.cli.main import app
from oasst.client import CollectionClient
from oasst.client.autoplay import VOCABULARY, frontend_message_id, label, reply
from oasst.config import Settings
from oasst.protocol.collection import (
    AssistantReplyTask,
    InitialPromptTask,
    LabelAssistantReplyTask,
    LabelInitialPromptTask,
    TaskRequestType,
    User,
)
from tests.conftest import ADMIN_KEY
from tests.live import serve

# Small trees (a root and two assistant replies, one review each, one ranking): a short run sees every stage.
SMALL_TREES: dict[str, Any] = {
    "goal_tree_size": 3,
    "max_tree_depth": 1,
    "max_children_count": 2,
    "num_reviews_initial_prompt": 1,
    "num_reviews_reply": 1,
    "num_required_rankings": 1,
}


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve(make_settings(tree_manager=SMALL_TREES)) as base_url:
        yield base_url


def contribute(server: str, *args: str, input: str | None = None) -> Any:
    result = CliRunner().invoke(
        app, ["contribute", "--server", server, "--api-key", ADMIN_KEY, *args], input=input
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def messages_of(server: str, username: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=server, headers={"X-API-Key": ADMIN_KEY}) as http:
        response = http.get(
            "/api/v1/messages/", params={"auth_method": "local", "username": username, "max_count": 1000}
        )
    response.raise_for_status()
    messages: list[dict[str, Any]] = response.json()
    return messages


def test_auto_mode_plays_the_requested_number_of_tasks(server: str) -> None:
    result = contribute(server, "--auto", "40", "--users", "2", "--seed", "7")

    assert result.exit_code == 0, result.output
    assert "Stopped: all 40 tasks done." in result.output
    assert "initial_prompt" in result.output
    written = messages_of(server, "autoplay-1") + messages_of(server, "autoplay-2")
    assert messages_of(server, "autoplay-1") and messages_of(server, "autoplay-2")
    assert any(message["parent_id"] is None for message in written)
    assert any(message["is_assistant"] for message in written)
    assert all(set(message["text"].split()) <= set(VOCABULARY) for message in written)
    # The trees the players grew now have work for a newcomer.
    with CollectionClient(server, ADMIN_KEY) as client:
        newcomer = User(id="newcomer", display_name="New", auth_method="local")
        waiting = client.availability(newcomer)
    assert waiting["random"] > waiting["initial_prompt"]


def test_auto_mode_stops_when_no_user_has_work(server: str) -> None:
    result = contribute(server, "--auto", "5", "--users", "2", "--type", "rank_initial_prompts")

    assert result.exit_code == 0, result.output
    assert "Stopped: no contributor has any task left." in result.output
    assert "total" in result.output


def test_interactive_mode_sends_a_prompt_and_quits(server: str) -> None:
    typed = "What makes a good cup of tea?\nq\n"
    result = contribute(
        server, "--user-id", "ada", "--display-name", "Ada", "--type", "initial_prompt", input=typed
    )

    assert result.exit_code == 0, result.output
    assert "Write a prompt" in result.output
    assert "Thank you" in result.output
    assert "Tasks done: 1" in result.output
    [prompt] = messages_of(server, "ada")
    assert prompt["text"] == "What makes a good cup of tea?"
    assert prompt["parent_id"] is None
    with CollectionClient(server, ADMIN_KEY) as client:
        assert client.get_user("local", "ada").tos_acceptance_date is not None


def test_interactive_mode_skips_labels_and_stops_when_no_task_is_left(server: str) -> None:
    with CollectionClient(server, ADMIN_KEY) as client:
        for number, author in enumerate(("grace", "linus"), 1):
            user = User(id=author, display_name=author, auth_method="local")
            task = client.fetch_task(TaskRequestType.initial_prompt, user)
            assert isinstance(task, InitialPromptTask)
            client.ack_task(task.id, frontend_message_id(task))
            client.post_interaction(reply(task, user, f"Prompt number {number}", f"prompt-{number}"))

    # First prompt: skipped. Second: not spam, and Enter leaves every optional label out. Then none is left.
    typed = "s\n" + "n\n" + "\n" * 20
    result = contribute(server, "--user-id", "ada", "--type", "label_initial_prompt", input=typed)

    assert result.exit_code == 0, result.output
    assert "Skipped." in result.output
    assert "No task available" in result.output
    assert "Tasks done: 1" in result.output
    with CollectionClient(server, ADMIN_KEY) as client:
        ada = User(id="ada", display_name="ada", auth_method="local")
        assert client.availability(ada)["label_initial_prompt"] == 0


def local(name: str) -> User:
    return User(id=name, display_name=name.capitalize(), auth_method="local")


def answer_with(client: CollectionClient, user: User, task_type: TaskRequestType, text: str = "") -> None:
    """One task by hand: replies get `text`, labels say "not spam" so the message is accepted."""
    task = client.fetch_task(task_type, user)
    client.ack_task(task.id, frontend_message_id(task))
    if isinstance(task, InitialPromptTask | AssistantReplyTask):
        client.post_interaction(reply(task, user, text, f"{user.id}-{task.id}"))
    else:
        assert isinstance(task, LabelInitialPromptTask | LabelAssistantReplyTask)
        client.post_interaction(label(task, user, {"spam": 0.0}))


def test_interactive_mode_ranks_replies_best_first(server: str) -> None:
    with CollectionClient(server, ADMIN_KEY) as client:
        answer_with(client, local("alice"), TaskRequestType.initial_prompt, "Name a calm colour.")
        answer_with(client, local("bob"), TaskRequestType.label_initial_prompt)
        answer_with(client, local("bob"), TaskRequestType.assistant_reply, "Bob says blue.")
        answer_with(client, local("carol"), TaskRequestType.assistant_reply, "Carol says green.")
        answer_with(client, local("dave"), TaskRequestType.label_assistant_reply)
        answer_with(client, local("dave"), TaskRequestType.label_assistant_reply)

    result = contribute(server, "--user-id", "erin", "--type", "rank_assistant_replies", input="2 1\n")

    assert result.exit_code == 0, result.output
    assert "Tasks done: 1" in result.output
    shown_first = "Bob" if result.output.index("Bob says") < result.output.index("Carol says") else "Carol"
    best = "carol" if shown_first == "Bob" else "bob"
    [root] = messages_of(server, "alice")
    with httpx.Client(base_url=server, headers={"X-API-Key": ADMIN_KEY}) as http:
        state = http.get(f"/api/v1/messages/{root['id']}/tree/state").json()
        tree = http.get(f"/api/v1/messages/{root['id']}/tree").json()
    assert state["state"] == "ready_for_export"
    ranks = {m["text"].split()[0].lower(): m["rank"] for m in tree["messages"] if m["parent_id"]}
    assert ranks[best] == 0
    assert sorted(ranks.values()) == [0, 1]


def test_bad_key_is_reported_without_a_traceback(server: str) -> None:
    result = CliRunner().invoke(app, ["contribute", "--server", server, "--api-key", "wrong", "--auto", "1"])

    assert result.exit_code == 1
    assert "Could not validate credentials" in result.output
    assert "code 2" in result.output


def test_unknown_task_type_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["contribute", "--api-key", "k", "--type", "poem"])

    assert result.exit_code == 2
    assert "unknown task type" in result.output
