"""Faults and bad input, end to end: a worker process killed mid-stream, a client that goes away, a user who
asks again, a server killed and restarted (in-memory queue, and Redis), refusals and their metric."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from oasst.config import Settings
from oasst.inference.service import ABORTED_BY_WORKER, CANCELLED, WORKER_SILENT
from tests.conftest import ADMIN_KEY, REDIS_URL, missing_service
from tests.inference.helpers import (
    MODEL,
    ChatClient,
    LoggedProcess,
    WorkerProcess,
    free_port,
    mint_worker_key,
    scrape_metrics,
    serve_process,
)
from tests.live import serve

STREAM_TIMEOUT = 90.0  # seconds a stream may take to end on a busy machine before the test calls it a hang
Event = dict[str, Any]


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve(make_settings(allow_debug_auth=True, pending_event_interval=0.05)) as base_url:
        yield base_url


def _stream(
    client: ChatClient,
    chat_id: str,
    message_id: str,
    stop: Callable[[list[Event]], bool] = lambda _events: False,
    timeout: float = STREAM_TIMEOUT,
) -> list[Event]:
    """The events of a message's SSE stream until it ends (or `stop` says enough, and the client hangs up);
    fails when it has not ended after `timeout` seconds: nothing may hang."""
    deadline = time.monotonic() + timeout
    events: list[Event] = []
    url = f"/chats/{chat_id}/messages/{message_id}/events"
    with client.http.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():  # keep-alive comments count as lines: the deadline is checked
            assert time.monotonic() < deadline, f"the stream of {message_id} hangs: {events}"
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if stop(events):
                    break
    return events


def _tokens(events: list[Event]) -> list[str]:
    return [event["text"] for event in events if event["event_type"] == "token"]


def _has_tokens(count: int) -> Callable[[list[Event]], bool]:
    return lambda events: len(_tokens(events)) >= count


def test_killed_worker_process_ends_the_stream_and_a_new_worker_serves_on(server: str) -> None:
    key = mint_worker_key(server)
    client = ChatClient(server)
    chat_id = client.new_chat()
    with WorkerProcess(server, key, "--fake-stall-after", "2") as first:
        first.wait_for("registered")
        message_id = client.ask(chat_id, "tell me a long story")

        def kill_after_two_tokens(events: list[Event]) -> bool:
            if len(_tokens(events)) == 2 and first.process.poll() is None:
                first.process.kill()  # SIGKILL: no goodbye on the websocket
            return False

        events = _stream(client, chat_id, message_id, kill_after_two_tokens)
    assert _tokens(events) == ["You ", "said: "]
    assert events[-1]["event_type"] == "error" and events[-1]["error"] == ABORTED_BY_WORKER
    assert client.message(chat_id, message_id)["state"] == "aborted_by_worker"

    with WorkerProcess(server, key) as second:
        second.wait_for("registered")
        next_chat = client.new_chat()
        next_id = client.ask(next_chat, "are you the new one")
        events = _stream(client, next_chat, next_id)
        second.wait_for("work request")
    assert events[-1]["event_type"] == "message"
    assert client.message(next_chat, next_id)["content"] == "You said: are you the new one"
    client.close()


def test_client_that_hangs_up_does_not_stop_the_reply(server: str) -> None:
    """The worker's generation goes on without a reader (as upstream): the reply is stored complete, and a
    new stream gets it from its first token on."""
    client = ChatClient(server)
    with WorkerProcess(server, mint_worker_key(server), "--fake-token-delay", "0.2") as worker:
        worker.wait_for("registered")
        chat_id = client.new_chat()
        message_id = client.ask(chat_id, "one two three four five six")
        first = _stream(client, chat_id, message_id, _has_tokens(1))
        assert first[-1]["event_type"] == "token"  # hung up mid-stream
        again = _stream(client, chat_id, message_id)
        worker.wait_for("done")
    reply = "You said: one two three four five six"
    assert "".join(_tokens(again)) == reply
    assert again[-1]["event_type"] == "message" and again[-1]["message"]["state"] == "complete"
    assert client.message(chat_id, message_id)["content"] == reply
    client.close()


def test_asking_again_cancels_the_pending_reply_under_another_prompt(server: str) -> None:
    """A new assistant request cancels the user's pending ones under other prompts (as upstream); a stream
    open on a cancelled one ends with an error; drafts of the same prompt and started replies stay."""
    client = ChatClient(server)
    with WorkerProcess(server, mint_worker_key(server), "--fake-stall-after", "1") as stalled:
        stalled.wait_for("registered")
        busy_chat = client.new_chat()
        busy = client.ask(busy_chat, "keep the worker busy")  # one token, then the worker's only slot hangs
        _stream(client, busy_chat, busy, _has_tokens(1))
        chat_id = client.new_chat()
        waiting = client.ask(chat_id, "first question")
        other_chat = client.new_chat()
        asked: list[str] = []

        def ask_again_once_open(events: list[Event]) -> bool:
            if not asked:
                asked.append(client.ask(other_chat, "second question"))
            return False

        rest = _stream(client, chat_id, waiting, ask_again_once_open)
        latest = asked[0]
        draft = client.http.post(
            f"/chats/{other_chat}/assistant_message",
            json={"parent_id": client.message(other_chat, latest)["parent_id"], "model_config_name": MODEL},
        )
        assert draft.status_code == 200, draft.text
        assert [event["event_type"] for event in rest if event["event_type"] != "pending"] == ["error"]
        assert rest[-1]["error"] == CANCELLED
        assert client.message(chat_id, waiting)["state"] == "cancelled"
        assert client.message(other_chat, latest)["state"] == "pending"
        assert client.message(busy_chat, busy)["state"] == "in_progress"
    with WorkerProcess(server, mint_worker_key(server)) as worker:
        worker.wait_for("registered")
        for message_id in (latest, draft.json()["id"]):
            assert _stream(client, other_chat, message_id)[-1]["event_type"] == "message"
    assert client.message(chat_id, waiting)["state"] == "cancelled"  # dequeued and skipped, never served
    client.close()


def test_refusals_are_clear_4xx_and_counted(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(allow_debug_auth=True, pending_event_interval=0.05, work_queue_max_size=1)
    with serve(settings) as base_url:
        rejected = "oasst_inference_rejected_requests_total"
        assert scrape_metrics(base_url)[(rejected, (("reason", "queue_full"),))] == 0
        alice, mallory = ChatClient(base_url, "alice"), ChatClient(base_url, "mallory")
        with WorkerProcess(base_url, mint_worker_key(base_url), "--fake-stall-after", "1") as worker:
            worker.wait_for("registered")
            busy_chat = alice.new_chat()
            busy = alice.ask(busy_chat, "take the only slot")
            _stream(alice, busy_chat, busy, _has_tokens(1))
            alice.ask(alice.new_chat(), "fill the queue")  # the queue holds one
            chat_id = alice.new_chat()
            prompt = alice.http.post(f"/chats/{chat_id}/prompter_message", json={"content": "one too many"})
            ask = {"parent_id": prompt.json()["id"], "model_config_name": MODEL}
            full = alice.http.post(f"/chats/{chat_id}/assistant_message", json=ask)
            assert full.status_code == 429 and full.headers["Retry-After"] == "10"
            assert full.json()["detail"] == "The server is currently busy. Please try again later."

            unserved = alice.http.post(
                f"/chats/{chat_id}/assistant_message", json={**ask, "model_config_name": "nobody-serves-it"}
            )
            assert (
                unserved.status_code == 422
                and unserved.json()["detail"] == "Model nobody-serves-it not found"
            )
            for sampling in ({"top_p": 1.5}, {"top_k": 0}, {"max_new_tokens": 0}, {"repetition_penalty": 0}):
                response = alice.http.post(
                    f"/chats/{chat_id}/assistant_message", json={**ask, "sampling_parameters": sampling}
                )
                assert response.status_code == 422, sampling
            too_long = alice.http.post(
                f"/chats/{chat_id}/assistant_message", json={**ask, "system_prompt": "x" * 5000}
            )
            assert too_long.status_code == 422

            # Someone else's chat and messages do not exist for mallory, even with a served model.
            message_url = f"/chats/{busy_chat}/messages/{busy}"
            assert mallory.http.get(message_url).status_code == 404
            assert mallory.http.get(f"{message_url}/events").status_code == 404
            assert mallory.http.post(f"/chats/{chat_id}/assistant_message", json=ask).status_code == 404
            completion = httpx.post(
                f"{base_url}/v1/chat/completions",
                json={"model": "nobody-serves-it", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                timeout=30,
            )
            assert completion.status_code == 404  # the OpenAI-compatible API counts its refusals too
            samples = scrape_metrics(base_url)
        alice.close()
        mallory.close()
    assert samples[(rejected, (("reason", "queue_full"),))] == 1
    assert samples[(rejected, (("reason", "no_worker"),))] == 2


def test_unknown_ids_are_not_found(server: str) -> None:
    client = ChatClient(server)
    chat_id = client.new_chat()
    nowhere = str(uuid.uuid4())
    assert client.http.get(f"/chats/{nowhere}").status_code == 404
    assert client.http.put(f"/chats/{nowhere}", json={"title": "x"}).status_code == 404
    response = client.http.post(f"/chats/{nowhere}/prompter_message", json={"content": "hello"})
    assert response.status_code == 404 and response.json()["detail"] == "Chat not found"
    for url in (f"/chats/{chat_id}/messages/{nowhere}", f"/chats/{chat_id}/messages/{nowhere}/events"):
        response = client.http.get(url)
        assert response.status_code == 404 and response.json()["detail"] == "Message not found"
    ask = {"parent_id": nowhere, "model_config_name": MODEL}
    assert client.http.post(f"/chats/{chat_id}/assistant_message", json=ask).status_code == 400
    assert (
        client.http.post(f"/chats/{chat_id}/messages/{nowhere}/votes", json={"score": 1}).status_code == 404
    )
    client.close()


# --- a server killed and started again ----------------------------------------------------------------------


@contextmanager
def _restartable(
    database_url: str, data_dir: Path, port: int, environment: dict[str, str]
) -> Iterator[tuple[str, LoggedProcess]]:
    """`oasst serve --no-worker` on a fixed port, once it has started."""
    with serve_process(database_url, data_dir, "--no-worker", port=port, **environment) as (url, process):
        process.wait_for("Application startup complete", timeout=STREAM_TIMEOUT)
        yield url, process


def test_server_killed_and_restarted_loses_nothing(database_url: str, tmp_path: Path) -> None:
    """SIGKILL the server mid-stream with work queued, start it again on the same database: SQLite with the
    in-memory queue (pending work is queued again at start), PostgreSQL with Redis (whose queue outlives the
    server). The worker reconnects; completed replies stay; the queued one is served; the one cut off
    mid-stream ends once its worker has been silent for the timeout (aborted), and new work is served."""
    environment = {
        "OASST_INFERENCE_AUTH_SECRET": "restart-test-secret",  # sign-ins survive the restart
        "OASST_PENDING_EVENT_INTERVAL": "0.1",
        "OASST_ASSISTANT_MESSAGE_TIMEOUT": "30",
    }
    if database_url.startswith("postgresql"):
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as error:
            missing_service("Redis", error)
        environment["OASST_REDIS_URL"] = REDIS_URL
    model = f"restart-{uuid.uuid4().hex[:12]}"  # a queue of this test's own in a shared Redis
    port = free_port()
    worker_options = ("--backend", "fake", "--model", model)
    with _restartable(database_url, tmp_path, port, environment) as (base_url, first):
        key = mint_worker_key(base_url)
        client = ChatClient(base_url)
        with WorkerProcess(base_url, key, "--fake-token-delay", "0.3", backend=worker_options) as worker:
            worker.wait_for("registered")
            done_chat = client.new_chat()
            done = client.ask(done_chat, "finish this one", model_config_name=model)
            assert _stream(client, done_chat, done)[-1]["event_type"] == "message"
            cut_chat = client.new_chat()
            cut = client.ask(cut_chat, " ".join(["word"] * 200), model_config_name=model)
            _stream(client, cut_chat, cut, _has_tokens(2))
            queued_chat = client.new_chat()
            queued = client.ask(queued_chat, "wait for me", model_config_name=model)
            first.kill()

            with _restartable(database_url, tmp_path, port, environment):
                worker.wait_for("registered", timeout=STREAM_TIMEOUT)  # the same process, reconnected
                served = _stream(client, queued_chat, queued)
                assert served[-1]["event_type"] == "message", served[-1]
                assert "".join(_tokens(served)) == "You said: wait for me"
                new_chat = client.new_chat()
                new = client.ask(new_chat, "and a new one", model_config_name=model)
                assert _stream(client, new_chat, new)[-1]["message"]["content"] == "You said: and a new one"

                ended = _stream(client, cut_chat, cut)
                assert ended[-1]["event_type"] == "error" and ended[-1]["error"] == WORKER_SILENT
                assert client.message(cut_chat, cut)["state"] == "aborted_by_worker"
                completed = client.message(done_chat, done)
                assert (completed["state"], completed["content"]) == ("complete", "You said: finish this one")
                chats = client.http.get("/chats", params={"limit": 10}).json()["chats"]
                assert {chat["id"] for chat in chats} == {done_chat, cut_chat, queued_chat, new_chat}
        client.close()
