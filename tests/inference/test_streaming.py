"""End to end: a real server, real `oasst worker` processes over a real websocket, a client reading SSE."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from oasst.config import Settings
from tests.inference.helpers import MODEL, ChatClient, WorkerProcess, mint_worker_key
from tests.live import serve


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve(make_settings(allow_debug_auth=True, pending_event_interval=0.05)) as base_url:
        yield base_url


def test_chat_streams_tokens_and_stores_the_message(server: str) -> None:
    key = mint_worker_key(server)
    client = ChatClient(server)
    with WorkerProcess(server, key, "--fake-token-delay", "0.01") as worker:
        worker.wait_for("registered")
        configs = client.http.get("/configs/model_configs").json()
        assert [config["name"] for config in configs] == [MODEL]
        assert [preset["name"] for preset in configs[0]["parameter_configs"]][:2] == ["k50", "k50-Creative"]

        chat_id = client.new_chat()
        message_id = client.ask(chat_id, "hello there, worker", sampling_parameters={"temperature": 0.5})
        events = list(client.events(chat_id, message_id))

    kinds = [event["event_type"] for event in events]
    assert kinds[-1] == "message"
    assert set(kinds[:-1]) <= {"pending", "token"}
    tokens = [event["text"] for event in events if event["event_type"] == "token"]
    assert tokens == ["You ", "said: ", "hello ", "there, ", "worker"]
    final = events[-1]["message"]
    assert final["content"] == "You said: hello there, worker"
    assert final["state"] == "complete"

    stored = client.message(chat_id, message_id)
    assert stored["content"] == "You said: hello there, worker"
    assert stored["state"] == "complete"
    assert stored["work_parameters"]["model_config"]["model_id"] == MODEL
    assert stored["work_parameters"]["sampling_parameters"]["temperature"] == 0.5
    chat = client.http.get(f"/chats/{chat_id}").json()
    assert chat["title"] == "hello there, worker"
    assert sorted(message["role"] for message in chat["messages"]) == ["assistant", "prompter"]
    # A late reader gets the same stream while it is kept (message_queue_expire), then a 204 as upstream.
    assert list(client.events(chat_id, message_id)) == [
        event for event in events if event["event_type"] != "pending"
    ]
    client.close()


def test_worker_lost_before_its_first_token_hands_the_work_to_another(server: str) -> None:
    key = mint_worker_key(server)
    client = ChatClient(server)
    chat_id = client.new_chat()
    with WorkerProcess(server, key, "--fake-stall-after", "0") as first:
        first.wait_for("registered")
        message_id = client.ask(chat_id, "are you there")
        first.wait_for("work request")
        first.kill()
    with WorkerProcess(server, key) as second:
        second.wait_for("registered")
        events = list(client.events(chat_id, message_id))
        second.wait_for("work request")
    assert events[-1]["event_type"] == "message"
    assert (
        "".join(event["text"] for event in events if event["event_type"] == "token")
        == "You said: are you there"
    )
    assert client.message(chat_id, message_id)["content"] == "You said: are you there"
    client.close()


def test_worker_lost_mid_stream_aborts_the_message(server: str) -> None:
    key = mint_worker_key(server)
    client = ChatClient(server)
    chat_id = client.new_chat()
    with WorkerProcess(server, key, "--fake-stall-after", "2") as worker:
        worker.wait_for("registered")
        message_id = client.ask(chat_id, "tell me a long story")
        events = []
        for event in client.events(chat_id, message_id):
            events.append(event)
            if (
                sum(1 for seen in events if seen["event_type"] == "token") == 2
                and worker.process.poll() is None
            ):
                worker.kill()
    assert [event["text"] for event in events if event["event_type"] == "token"] == ["You ", "said: "]
    assert events[-1]["event_type"] == "error"
    assert events[-1]["error"] == "Aborted due to worker error."
    assert events[-1]["message"]["state"] == "aborted_by_worker"
    assert client.message(chat_id, message_id)["state"] == "aborted_by_worker"
    client.close()
