"""Inference metrics on /metrics: workers and queue lengths by model, assistant messages by state, tokens
generated, time to first token and between tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from oasst.config import Settings
from tests.inference.helpers import MODEL, ChatClient, WorkerProcess, mint_worker_key, scrape_metrics
from tests.live import serve

COMPAT_HASH = f"{MODEL}-4096-2048-f"  # the worker command's default lengths, not quantized


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve(make_settings(allow_debug_auth=True, pending_event_interval=0.05)) as base_url:
        yield base_url


def test_a_streamed_reply_is_counted_and_timed(server: str) -> None:
    client = ChatClient(server)
    with WorkerProcess(server, mint_worker_key(server), "--fake-token-delay", "0.01") as worker:
        worker.wait_for("registered")
        chat_id = client.new_chat()
        message_id = client.ask(chat_id, "count these five words")
        assert list(client.events(chat_id, message_id))[-1]["event_type"] == "message"
        samples = scrape_metrics(server)
    client.close()
    assert samples[("oasst_inference_workers", (("model", COMPAT_HASH),))] == 1
    assert samples[("oasst_inference_tokens_generated_total", ())] == 6  # "You said: count these five words"
    assert samples[("oasst_inference_time_to_first_token_seconds_count", ())] == 1
    assert 0 < samples[("oasst_inference_time_to_first_token_seconds_sum", ())] < 30
    assert samples[("oasst_inference_inter_token_seconds_count", ())] == 5
    assert samples[("oasst_inference_assistant_messages", (("state", "complete"),))] == 1
    assert samples[("oasst_inference_assistant_messages", (("state", "pending"),))] == 0


def test_waiting_messages_show_as_queue_length(server: str) -> None:
    alice, bob = ChatClient(server, "alice"), ChatClient(server, "bob")
    key = mint_worker_key(server)
    # The worker sends one token, then holds its only slot: the next message has to wait.
    with WorkerProcess(server, key, "--fake-stall-after", "1") as worker:
        worker.wait_for("registered")
        busy_chat = alice.new_chat()
        busy = alice.ask(busy_chat, "first in line")
        assert next(event for event in alice.events(busy_chat, busy) if event["event_type"] == "token")
        bob.ask(bob.new_chat(), "second in line")
        samples = scrape_metrics(server)
    alice.close()
    bob.close()
    assert samples[("oasst_inference_queue_length", (("model", COMPAT_HASH),))] == 1
    assert samples[("oasst_inference_assistant_messages", (("state", "in_progress"),))] == 1
    assert samples[("oasst_inference_assistant_messages", (("state", "pending"),))] == 1
    assert samples[("oasst_inference_tokens_generated_total", ())] == 1
