"""The `openai` SDK against a real server and a real fake-backend worker: models, chat completions and
completions (streamed and not), sampling limits, stop sequences and errors in OpenAI's shape."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from oasst.config import Settings
from tests.conftest import ADMIN_KEY
from tests.inference.helpers import MODEL, WorkerProcess, mint_worker_key
from tests.live import serve

SYSTEM = "Be brief."
QUESTION = "hello there, worker"
REPLY = "You said: hello there, worker"  # the fake backend echoes the last user turn, one word a token
REPLY_TOKENS = 5
PROMPT_TOKENS = math.ceil(len(SYSTEM + QUESTION) / 4)  # the documented estimate: 4 characters a token


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve(make_settings(pending_event_interval=0.05)) as base_url:
        yield base_url


@pytest.fixture
def client(server: str) -> Iterator[openai.OpenAI]:
    """An SDK client for /v1, with a fake-backend worker connected and registered."""
    with WorkerProcess(server, mint_worker_key(server), "--fake-token-delay", "0.005") as worker:
        worker.wait_for("registered")
        with openai.OpenAI(base_url=f"{server}/v1", api_key=ADMIN_KEY, max_retries=0, timeout=30) as sdk:
            yield sdk


def _messages(question: str = QUESTION) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def test_models_and_chat_completions(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL

    reply = client.chat.completions.create(model=MODEL, messages=_messages(), temperature=0.5, seed=7)
    assert reply.object == "chat.completion"
    assert reply.model == MODEL
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == REPLY
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (PROMPT_TOKENS, REPLY_TOKENS)
    assert reply.usage.total_tokens == PROMPT_TOKENS + REPLY_TOKENS

    # Earlier turns travel with the request; the fake backend answers the last user turn.
    history = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "You said: first"},
        {"role": "user", "content": [{"type": "text", "text": "second one"}]},
    ]
    again = client.chat.completions.create(model=MODEL, messages=history)
    assert again.choices[0].message.content == "You said: second one"

    # max_tokens reaches the worker as max_new_tokens; stop sequences cut the text.
    short = client.chat.completions.create(model=MODEL, messages=_messages(), max_tokens=2)
    assert short.choices[0].message.content == "You said: "
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 2
    stopped = client.chat.completions.create(model=MODEL, messages=_messages(), stop=["there"])
    assert stopped.choices[0].message.content == "You said: hello "
    assert stopped.choices[0].finish_reason == "stop"


def test_chat_completion_streams(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=_messages(),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == REPLY
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    # As OpenAI: with include_usage, usage comes alone in the last chunk and is null before.
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == REPLY_TOKENS
    assert chunks[-1].usage.prompt_tokens == PROMPT_TOKENS
    assert all(chunk.usage is None for chunk in chunks[:-1])

    # Without it, usage still comes last, on the chunk with the finish reason.
    plain = list(client.chat.completions.create(model=MODEL, messages=_messages(), stream=True))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in plain) == REPLY
    assert plain[-1].choices[0].finish_reason == "stop"
    assert plain[-1].usage is not None and plain[-1].usage.total_tokens == PROMPT_TOKENS + REPLY_TOKENS


def test_completions(client: openai.OpenAI) -> None:
    reply = client.completions.create(model=MODEL, prompt="count to three")
    assert reply.object == "text_completion"
    assert reply.choices[0].text == "You said: count to three"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == math.ceil(len("count to three") / 4)
    assert reply.usage.completion_tokens == 5

    echoed = client.completions.create(model=MODEL, prompt="hi", echo=True, max_tokens=1)
    assert echoed.choices[0].text == "hiYou "
    assert echoed.choices[0].finish_reason == "length"

    chunks = list(
        client.completions.create(
            model=MODEL, prompt="count to three", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == "You said: count to three"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


def test_errors_in_openai_shape(client: openai.OpenAI, server: str) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="no-such-model", messages=_messages())
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="hi")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")

    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=_messages(), temperature=5)
    assert bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError):  # the reply would be to nothing
        client.chat.completions.create(model=MODEL, messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=_messages(), n=2)
    with pytest.raises(openai.BadRequestError):  # longer than the protocol's system prompt
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "system", "content": "x" * 5000}, *_messages()]
        )

    wrong = openai.OpenAI(base_url=f"{server}/v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        wrong.models.list()
    assert refused.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model=MODEL, messages=_messages())
    wrong.close()

    # The raw bodies, as any OpenAI client parses them.
    anonymous = httpx.post(f"{server}/v1/chat/completions", json={"model": MODEL, "messages": []})
    assert anonymous.status_code == 401
    assert set(anonymous.json()["error"]) >= {"message", "type", "code"}
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    malformed = httpx.post(f"{server}/v1/completions", content=b"{not json", headers=headers)
    assert malformed.status_code == 400
    assert malformed.json()["error"]["type"] == "invalid_request_error"
    unknown = httpx.post(f"{server}/v1/completions", json={"model": "nope", "prompt": "x"}, headers=headers)
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": {
            "message": "The model `nope` does not exist or no worker serves it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
