"""Text labels outside the task flow: the catalogue, valid labels per message, free labels and reports."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from oasst.app import create_app
from oasst.config import Settings, TreeManagerConfig
from oasst.db.models import ApiClient, FlaggedMessage, Message, TextLabels
from tests.conftest import ADMIN_KEY
from tests.factories import Factory

ALL_BUT_FAILS_TASK = [
    "spam", "lang_mismatch", "pii", "not_appropriate", "hate_speech", "sexual_content", "moral_judgement",
    "political_content", "quality", "toxicity", "humor", "helpfulness", "creativity", "violence",
]  # fmt: skip
PROMPT_LABELS = [
    "spam", "lang_mismatch", "quality", "creativity", "humor", "toxicity", "violence", "not_appropriate",
    "pii", "hate_speech", "sexual_content",
]  # fmt: skip


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [label["name"] for label in response.json()["valid_labels"]]


def label(
    app_client: TestClient, message_id: uuid.UUID, labels: dict[str, float], who: str = "alice", **extra: Any
) -> Any:
    body = {
        "type": "text_labels",
        "user": {"id": who, "display_name": who.title(), "auth_method": "local"},
        "message_id": str(message_id),
        "labels": labels,
        "text": extra.pop("text", ""),
        **extra,
    }
    return app_client.post("/api/v1/text_labels/", json=body)


# --- catalogue -----------------------------------------------------------------------------------------


def test_report_labels_need_no_key(app_client: TestClient) -> None:
    response = app_client.get("/api/v1/text_labels/report_labels", headers={"X-API-Key": ""})
    assert names(response) == [
        "spam", "not_appropriate", "pii", "hate_speech", "sexual_content", "moral_judgement",
        "political_content", "toxicity", "violence", "quality",
    ]  # fmt: skip


def test_valid_labels_without_a_message_is_the_catalogue(app_client: TestClient) -> None:
    response = app_client.get("/api/v1/text_labels/valid_labels")
    assert names(response) == ALL_BUT_FAILS_TASK
    by_name = {entry["name"]: entry for entry in response.json()["valid_labels"]}
    assert by_name["spam"] == {
        "name": "spam",
        "widget": "yes_no",
        "display_text": "Seems to be intentionally low-quality or irrelevant",
        "help_text": None,
    }
    assert by_name["lang_mismatch"]["widget"] == "flag"
    assert by_name["lang_mismatch"]["help_text"].startswith("The message is written in a language")
    assert by_name["humor"]["widget"] == "likert"
    no_key = app_client.get("/api/v1/text_labels/valid_labels", headers={"X-API-Key": ""})
    assert no_key.status_code == 403


def test_valid_labels_depend_on_the_message_role(
    app_client: TestClient, factory: Factory, admin: ApiClient, message: Message
) -> None:
    assistant = factory.message(admin, None, message)
    prompter = factory.message(admin, None, assistant)
    url = "/api/v1/text_labels/valid_labels"
    assert names(app_client.get(url, params={"message_id": str(message.id)})) == PROMPT_LABELS
    assistant_labels = names(app_client.get(url, params={"message_id": str(assistant.id)}))
    assert assistant_labels[:3] == ["spam", "lang_mismatch", "fails_task"]
    assert "helpfulness" in assistant_labels
    assert names(app_client.get(url, params={"message_id": str(prompter.id)})) == PROMPT_LABELS
    missing = app_client.get(url, params={"message_id": str(uuid.uuid4())})
    assert (missing.status_code, missing.json()["error_code"]) == (404, 2001)
    assert app_client.get(url, params={"message_id": "nope"}).status_code == 422


def test_valid_labels_follow_the_configuration(
    make_settings: Callable[..., Settings], app_client: TestClient, factory: Factory, message: Message
) -> None:
    settings = make_settings(tree_manager=TreeManagerConfig(labels_initial_prompt=["quality", "spam"]))
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as other:
        response = other.get("/api/v1/text_labels/valid_labels", params={"message_id": str(message.id)})
    assert names(response) == ["quality", "spam"]


# --- free labels and reports ---------------------------------------------------------------------------


def test_free_labels_keep_one_row_per_user_and_message(
    app_client: TestClient, factory: Factory, message: Message
) -> None:
    response = label(app_client, message.id, {"spam": 0.0, "quality": 0.75}, text="fine")
    assert (response.status_code, response.content) == (204, b"")
    label(app_client, message.id, {"spam": 1.0}, text="spam after all")
    label(app_client, message.id, {"humor": 0.5}, who="bob")
    rows = {row.user_id: row for row in factory.rows(TextLabels, message_id=message.id)}
    assert len(rows) == 2
    alice = next(row for row in rows.values() if row.labels == {"spam": 1.0})
    assert (alice.text, alice.task_id) == ("spam after all", None)
    # A free label is no review: the message's review count stays where it was.
    assert app_client.get(f"/api/v1/messages/{message.id}").json()["review_count"] == 0


def test_a_report_red_flags_the_message(app_client: TestClient, factory: Factory, message: Message) -> None:
    assert (
        label(app_client, message.id, {"pii": 1.0}, text="my phone number", is_report=True).status_code == 204
    )
    assert label(app_client, message.id, {"pii": 1.0}, text="again", is_report=True).status_code == 204
    seen = app_client.get(f"/api/v1/messages/{message.id}", headers={"x-oasst-user": "local:alice"}).json()
    assert (seen["emojis"], seen["user_emojis"]) == ({"red_flag": 1}, ["red_flag"])
    [flagged] = factory.rows(FlaggedMessage, message_id=message.id)
    assert flagged.processed is False
    assert len(factory.rows(TextLabels, message_id=message.id)) == 1


def test_free_label_errors(
    app_client: TestClient, factory: Factory, admin: ApiClient, message: Message
) -> None:
    missing = label(app_client, uuid.uuid4(), {"spam": 1.0})
    assert (missing.status_code, missing.json()["error_code"]) == (404, 2001)
    assert label(app_client, message.id, {"funny": 1.0}).status_code == 422
    assert label(app_client, message.id, {"spam": 1.5}).status_code == 422
    factory.user(admin, "banned", enabled=False)
    banned = label(app_client, message.id, {"spam": 1.0}, who="banned")
    assert (banned.status_code, banned.json()["error_code"]) == (503, 4001)
    assert factory.rows(TextLabels, message_id=message.id) == []
