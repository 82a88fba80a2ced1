"""The worker's pieces: prompt formats, the stop buffer, and the openai_http backend against a fake server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from oasst.protocol.inference import (
    MessageRead,
    MessageState,
    ModelConfig,
    SamplingParameters,
    WorkParameters,
)
from oasst.worker.backends.base import Finish, Generation, Token
from oasst.worker.backends.openai_http import OpenAIHttpBackend
from oasst.worker.prompts import STOP_SEQUENCES, StopBuffer, oasst_prompt
from tests.live import serve_app

MODEL = ModelConfig(model_id="tiny")


def _message(role: str, content: str) -> MessageRead:
    return MessageRead(
        id=uuid4(),
        chat_id=uuid4(),
        created_at=datetime.now(UTC),
        role=role,  # type: ignore[arg-type]
        state=MessageState.manual,
        content=content,
    )


def _generation(**parameters: Any) -> Generation:
    thread = [_message("prompter", "Hi"), _message("assistant", "Hello!"), _message("prompter", "2+2?")]
    return Generation.build(thread, WorkParameters(model=MODEL, seed=7, **parameters), STOP_SEQUENCES)


def test_the_open_assistant_prompt_format() -> None:
    generation = _generation(system_prompt="Be brief.")
    assert generation.prompt == (
        "<|system|>Be brief.<|endoftext|><|prompter|>Hi<|endoftext|><|assistant|>Hello!<|endoftext|>"
        "<|prompter|>2+2?<|endoftext|><|assistant|>"
    )
    assert [turn.role for turn in generation.turns] == ["system", "user", "assistant", "user"]
    assert oasst_prompt([], WorkParameters(model=MODEL)) == "<|assistant|>"


def test_the_stop_buffer_never_lets_a_stop_sequence_through() -> None:
    buffer = StopBuffer(STOP_SEQUENCES)
    released = [buffer.push(piece) for piece in ["Four", ".", "<|", "endof", "text|>", "more"]]
    assert "".join(released) + buffer.flush() == "Four."
    assert buffer.stopped and buffer.text == "Four."
    partial = StopBuffer(STOP_SEQUENCES)
    assert partial.push("a <|") == "a "
    assert partial.push("b") == "<|b"


def _fake_openai() -> tuple[FastAPI, list[dict[str, Any]]]:
    """A few lines of an OpenAI-compatible server: it streams "4", " is", " the answer" as SSE chunks."""
    app = FastAPI()
    bodies: list[dict[str, Any]] = []

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async def chunks(chat: bool) -> AsyncIterator[str]:
        for index, text in enumerate(["4", " is", " the answer"]):
            choice = {"delta": {"content": text}} if chat else {"text": text}
            choice["finish_reason"] = "length" if index == 2 else None
            yield f"data: {json.dumps({'choices': [choice]})}\n\n"
        yield "data: [DONE]\n\n"

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> StreamingResponse:
        bodies.append(await request.json())
        return StreamingResponse(chunks(True), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request) -> StreamingResponse:
        bodies.append(await request.json())
        return StreamingResponse(chunks(False), media_type="text/event-stream")

    return app, bodies


async def _collect(backend: OpenAIHttpBackend, generation: Generation) -> list[Token | Finish]:
    await backend.start()
    try:
        return [item async for item in backend.generate(generation)]
    finally:
        await backend.close()


def test_openai_http_streams_chat_and_completions() -> None:
    app, bodies = _fake_openai()
    sampling = SamplingParameters(temperature=0.3, top_k=40, max_new_tokens=20)
    with serve_app(app) as base_url:
        chat = OpenAIHttpBackend(MODEL, base_url=f"{base_url}/v1", served_model="served", api_key="k")
        items = asyncio.run(_collect(chat, _generation(sampling_parameters=sampling)))
        completions = OpenAIHttpBackend(MODEL, base_url=f"{base_url}/v1", mode="completions")
        plain = asyncio.run(_collect(completions, _generation()))
    assert [item.text for item in items if isinstance(item, Token)] == ["4", " is", " the answer"]
    assert items[-1] == Finish("length")
    assert plain[-1] == Finish("length")
    chat_body, completions_body = bodies
    assert chat_body["model"] == "served" and chat_body["stream"] is True
    assert chat_body["messages"][-1] == {"role": "user", "content": "2+2?"}
    assert (chat_body["temperature"], chat_body["top_k"], chat_body["max_tokens"]) == (0.3, 40, 20)
    assert completions_body["model"] == "tiny"
    assert completions_body["prompt"].endswith("<|prompter|>2+2?<|endoftext|><|assistant|>")
