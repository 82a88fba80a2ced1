"""Bad input to the task protocol: each gets the spec's 4xx and error code and leaves nothing behind."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, update

from oasst.app import create_app
from oasst.config import Settings, TreeManagerConfig
from oasst.db.base import utcnow
from oasst.db.models import Message, Task
from oasst.db.session import sync_url
from tests.collection.frontend import Frontend, user
from tests.conftest import ADMIN_KEY


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        tree_manager=TreeManagerConfig(num_reviews_initial_prompt=1, goal_tree_size=3, max_children_count=2),
        message_size_limit=50,
    )


def count_messages(settings: Settings) -> int:
    engine = create_engine(sync_url(settings.effective_database_url))
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(Message)).scalar_one()
    engine.dispose()
    return int(count)


def expect(response: object, status: int, code: int) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]


def test_missing_or_wrong_key_is_refused(frontend: Frontend) -> None:
    body = {"type": "random", "user": user("alice")}
    for headers in ({"X-API-Key": ""}, {"X-API-Key": "not-a-key"}):
        response = frontend.client.post("/api/v1/tasks/", json=body, headers=headers)
        assert response.status_code == 403
        assert response.json() == {"error_code": 2, "message": "Could not validate credentials"}


def test_task_request_needs_a_user(frontend: Frontend) -> None:
    expect(frontend.client.post("/api/v1/tasks/", json={"type": "random"}), 400, 4000)


def test_unknown_auth_method_is_a_validation_error(frontend: Frontend) -> None:
    bad_user = {"id": "x", "display_name": "X", "auth_method": "web"}
    response = frontend.client.post("/api/v1/tasks/", json={"type": "random", "user": bad_user})
    assert response.status_code == 422


def test_unavailable_type_is_503(frontend: Frontend) -> None:
    expect(frontend.request("alice", "rank_assistant_replies"), 503, 1006)
    expect(frontend.request("alice", "summarize_story"), 503, 1006)


def test_disabled_user_is_refused(frontend: Frontend) -> None:
    frontend.task("mallory", "initial_prompt")
    created = frontend.client.post(
        "/api/v1/frontend_users/", json={**user("mallory"), "enabled": False}
    )  # the trusted key may disable
    assert created.status_code == 200 and created.json()["enabled"] is False
    expect(frontend.request("mallory"), 503, 4001)


def test_tos_is_enforced_when_configured(make_settings: Callable[..., Settings]) -> None:
    with TestClient(
        create_app(make_settings(debug_ignore_tos_acceptance=False)), headers={"X-API-Key": ADMIN_KEY}
    ) as client:
        front = Frontend(client)
        expect(front.request("newbie"), 451, 4003)
        accepted = client.post("/api/v1/frontend_users/", json={**user("newbie"), "tos_acceptance": True})
        assert accepted.json()["tos_acceptance_date"] is not None
        assert front.request("newbie", "initial_prompt").status_code == 200


def test_reply_errors_leave_no_message(frontend: Frontend, settings: Settings) -> None:
    task = frontend.task("alice", "initial_prompt")
    expect(frontend.reply("alice", task, "x" * 51), 400, 1008)
    assert frontend.reply("alice", task, "   ").status_code == 422
    assert count_messages(settings) == 0
    # Someone else's task.
    expect(frontend.reply("bob", task, "Hello there"), 400, 2106)
    assert count_messages(settings) == 0


def test_unknown_task_and_invalid_ids(frontend: Frontend) -> None:
    response = frontend.client.post(f"/api/v1/tasks/{uuid.uuid4()}/ack", json={"message_id": "x"})
    expect(response, 404, 2100)
    assert frontend.client.post("/api/v1/tasks/not-a-uuid/ack", json={"message_id": "x"}).status_code == 422
    interaction = {
        "type": "text_reply_to_message",
        "user": user("alice"),
        "message_id": "never-acked",
        "user_message_id": "m1",
        "text": "hi",
    }
    expect(frontend.client.post("/api/v1/tasks/interaction", json=interaction), 400, 2100)


def test_replayed_interaction_is_answered_once(frontend: Frontend, settings: Settings) -> None:
    task = frontend.task("alice", "initial_prompt")
    frontend_id = frontend.ack(task)
    body = {
        "type": "text_reply_to_message",
        "user": user("alice"),
        "message_id": frontend_id,
        "user_message_id": "prompt-1",
        "text": "Tell me a joke.",
    }
    first = frontend.client.post("/api/v1/tasks/interaction", json=body)
    replay = frontend.client.post("/api/v1/tasks/interaction", json=body)
    assert first.status_code == replay.status_code == 200
    assert count_messages(settings) == 1
    # A different answer to the same finished task is refused.
    expect(frontend.client.post("/api/v1/tasks/interaction", json={**body, "text": "Other"}), 400, 2105)
    # Acking again with the same id is a no-op; with another id it is refused.
    assert (
        frontend.client.post(f"/api/v1/tasks/{task['id']}/ack", json={"message_id": frontend_id}).status_code
        == 204
    )
    expect(frontend.client.post(f"/api/v1/tasks/{task['id']}/ack", json={"message_id": "other"}), 400, 2103)


def test_expired_task(frontend: Frontend, settings: Settings) -> None:
    task = frontend.task("alice", "initial_prompt")
    engine = create_engine(sync_url(settings.effective_database_url))
    with engine.begin() as conn:
        conn.execute(update(Task).values(expiry_date=utcnow() - timedelta(minutes=1)))
    engine.dispose()
    expect(frontend.client.post(f"/api/v1/tasks/{task['id']}/ack", json={"message_id": "f"}), 400, 2101)


def _prompt_under_review(frontend: Frontend) -> dict[str, object]:
    frontend.reply("alice", frontend.task("alice", "initial_prompt"), "Why is the sky blue?")
    return frontend.task("bob", "label_initial_prompt")


def test_label_errors(frontend: Frontend) -> None:
    review = _prompt_under_review(frontend)
    frontend.ack(review)  # type: ignore[arg-type]

    def send(labels: dict[str, float], message_id: object = None) -> object:
        return frontend.client.post(
            "/api/v1/tasks/interaction",
            json={
                "type": "text_labels",
                "user": user("bob"),
                "message_id": message_id or review["message_id"],
                "task_id": review["id"],
                "text": "",
                "labels": labels,
            },
        )

    expect(send({"spam": 0, "fails_task": 1}), 400, 2051)  # fails_task is not a prompt label
    expect(send({"quality": 1}), 400, 2052)  # spam is mandatory
    expect(send({"spam": 0}, message_id=str(uuid.uuid4())), 400, 2050)
    assert send({"spam": 2}).status_code == 422  # outside [0, 1]
    assert send({"spam": 0, "quality": 1}).status_code == 200


def test_self_labeling_is_refused(frontend: Frontend) -> None:
    frontend.reply("alice", frontend.task("alice", "initial_prompt"), "Name three rivers.")
    # The author never gets a review task for her own prompt...
    expect(frontend.request("alice", "label_initial_prompt"), 503, 1006)


def test_ranking_must_be_a_permutation(make_settings: Callable[..., Settings]) -> None:
    config = TreeManagerConfig(
        num_reviews_initial_prompt=1, num_reviews_reply=1, goal_tree_size=3, max_children_count=2
    )
    with TestClient(
        create_app(make_settings(tree_manager=config)), headers={"X-API-Key": ADMIN_KEY}
    ) as client:
        front = Frontend(client)
        front.reply("alice", front.task("alice", "initial_prompt"), "Say hi.")
        front.label("bob", front.task("bob", "label_initial_prompt"))
        for who in ("carol", "dave"):
            front.reply(who, front.task(who, "assistant_reply"), f"Hi from {who}")
        for who in ("erin", "frank"):
            front.label(who, front.task(who, "label_assistant_reply"))
        ranking = front.task("bob", "rank_assistant_replies")
        frontend_id = front.ack(ranking)
        for bad in ([0, 0], [0, 2], [1]):
            body = {"type": "message_ranking", "user": user("bob"), "message_id": frontend_id, "ranking": bad}
            expect(client.post("/api/v1/tasks/interaction", json=body), 400, 2003)
        good = {"type": "message_ranking", "user": user("bob"), "message_id": frontend_id, "ranking": [1, 0]}
        assert client.post("/api/v1/tasks/interaction", json=good).status_code == 200


def test_nack_needs_the_user_header_and_adds_a_skip(frontend: Frontend) -> None:
    review = _prompt_under_review(frontend)
    url = f"/api/v1/tasks/{review['id']}/nack"
    expect(frontend.client.post(url, json={"reason": "boring"}), 400, 4000)
    expect(
        frontend.client.post(url, json={"reason": "x"}, headers={"x-oasst-user": "local:ghost"}), 404, 4002
    )
    assert (
        frontend.client.post(
            url, json={"reason": "boring"}, headers={"x-oasst-user": "local:bob"}
        ).status_code
        == 204
    )
    message = frontend.client.get(f"/api/v1/messages/{review['message_id']}").json()
    assert message["emojis"] == {"_skip_labeling": 1}
    # A skipped message is not offered to the same user again.
    expect(frontend.request("bob", "label_initial_prompt"), 503, 1006)


def test_too_many_pending_tasks(make_settings: Callable[..., Settings]) -> None:
    config = TreeManagerConfig(max_pending_tasks_per_user=2)
    with TestClient(
        create_app(make_settings(tree_manager=config)), headers={"X-API-Key": ADMIN_KEY}
    ) as client:
        front = Frontend(client)
        front.task("alice", "initial_prompt")
        front.task("alice", "initial_prompt")
        expect(front.request("alice", "initial_prompt"), 400, 1012)


def test_availability_counts(frontend: Frontend) -> None:
    response = frontend.client.post("/api/v1/tasks/availability", json=user("zoe"))
    counts = response.json()
    assert response.status_code == 200
    assert len(counts) == 12
    assert counts["initial_prompt"] == 110  # 10 growing slots + 100 review slots on an empty database
    assert counts["random"] == sum(v for k, v in counts.items() if k != "random")
