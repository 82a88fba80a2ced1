"""Feedback on assistant replies: thumbs votes, reports, and the choice between drafts of one prompt."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, func, select

from oasst.config import Settings
from oasst.db.models import ChatReport, MessageEvaluation
from oasst.db.session import sync_url
from tests.inference.helpers import MODEL, ChatClient, WorkerProcess, mint_worker_key
from tests.live import serve


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve(make_settings(allow_debug_auth=True, pending_event_interval=0.05)) as base_url:
        yield base_url


def _count(database_url: str, model: type[ChatReport] | type[MessageEvaluation]) -> int:
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        count = int(conn.scalar(select(func.count()).select_from(model)) or 0)
    engine.dispose()
    return count


@pytest.fixture
def drafts(server: str) -> Iterator[tuple[ChatClient, str, str, list[str]]]:
    """Alice's chat with one prompt and two finished drafts answering it: (client, chat, prompt, drafts)."""
    client = ChatClient(server)
    with WorkerProcess(server, mint_worker_key(server)) as worker:
        worker.wait_for("registered")
        chat_id = client.new_chat()
        first = client.ask(chat_id, "tell me something")
        prompt_id = client.message(chat_id, first)["parent_id"]
        second = client.http.post(
            f"/chats/{chat_id}/assistant_message", json={"parent_id": prompt_id, "model_config_name": MODEL}
        ).json()["id"]
        for draft in (first, second):
            assert list(client.events(chat_id, draft))[-1]["event_type"] == "message"
    yield client, chat_id, prompt_id, [first, second]
    client.close()


def test_votes_set_the_score_of_an_assistant_reply(
    server: str, drafts: tuple[ChatClient, str, str, list[str]]
) -> None:
    client, chat_id, prompt_id, (first, _second) = drafts
    url = f"/chats/{chat_id}/messages/{first}/votes"
    assert client.http.post(url, json={"score": 1}).status_code == 200
    assert client.message(chat_id, first)["score"] == 1
    assert client.http.post(url, json={"score": -1}).status_code == 200
    assert client.message(chat_id, first)["score"] == -1  # the last vote counts

    assert client.http.post(url, json={"score": 2}).status_code == 422
    assert client.http.post(url, json={}).status_code == 422
    on_prompt = client.http.post(f"/chats/{chat_id}/messages/{prompt_id}/votes", json={"score": 1})
    assert on_prompt.status_code == 400
    assert on_prompt.json() == {"detail": "Only assistant messages can be voted on"}
    unknown = client.http.post(f"/chats/{chat_id}/messages/{chat_id}/votes", json={"score": 1})
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Message not found"}
    mallory = ChatClient(server, "mallory")
    assert mallory.http.post(url, json={"score": 1}).status_code == 404
    mallory.close()
    assert client.message(chat_id, first)["score"] == -1


def test_reports_show_on_the_message_and_go_with_the_chat(
    server: str, database_url: str, drafts: tuple[ChatClient, str, str, list[str]]
) -> None:
    client, chat_id, prompt_id, (first, second) = drafts
    url = f"/chats/{chat_id}/messages/{first}/reports"
    assert client.http.post(url, json={"report_type": "offensive", "reason": "rude"}).status_code == 200
    assert client.http.post(url, json={"report_type": "feedback"}).status_code == 200
    reports = client.message(chat_id, first)["reports"]
    assert [(report["report_type"], report["reason"]) for report in reports] == [
        ("offensive", "rude"),
        ("feedback", ""),
    ]
    chat = client.http.get(f"/chats/{chat_id}").json()
    by_id = {message["id"]: message for message in chat["messages"]}
    assert by_id[first]["reports"] == reports and by_id[second]["reports"] == []

    assert client.http.post(url, json={"report_type": "boring", "reason": "x"}).status_code == 422
    assert client.http.post(url, json={"report_type": "spam", "reason": "x" * 4097}).status_code == 422
    on_prompt = client.http.post(
        f"/chats/{chat_id}/messages/{prompt_id}/reports", json={"report_type": "spam"}
    )
    assert on_prompt.status_code == 400

    evals = f"/chats/{chat_id}/messages/{first}/message_evals"
    assert client.http.post(evals, json={"inferior_message_ids": [second]}).status_code == 200
    assert _count(database_url, ChatReport) == 2 and _count(database_url, MessageEvaluation) == 1
    assert client.http.delete(f"/chats/{chat_id}").status_code == 200
    assert _count(database_url, ChatReport) == 0 and _count(database_url, MessageEvaluation) == 0


def test_a_draft_is_picked_only_over_drafts_of_the_same_prompt(
    server: str, database_url: str, drafts: tuple[ChatClient, str, str, list[str]]
) -> None:
    client, chat_id, prompt_id, (first, second) = drafts
    evals = f"/chats/{chat_id}/messages/{second}/message_evals"
    assert client.http.post(evals, json={"inferior_message_ids": [first, first]}).status_code == 200
    for wrong in ([prompt_id], [second], [chat_id]):
        refused = client.http.post(evals, json={"inferior_message_ids": wrong})
        assert refused.status_code == 400, wrong
    assert client.http.post(evals, json={"inferior_message_ids": ["not-an-id"]}).status_code == 422
    on_prompt = f"/chats/{chat_id}/messages/{prompt_id}/message_evals"
    assert client.http.post(on_prompt, json={"inferior_message_ids": [first]}).status_code == 400
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        stored = conn.execute(select(MessageEvaluation)).one()
    engine.dispose()
    assert (str(stored.selected_message_id), stored.inferior_message_ids) == (second, [first])
