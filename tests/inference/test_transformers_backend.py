"""The transformers backend on a tiny random GPT-2: streaming, counts, limits, seeds, stop and end tokens,
cancellation, both prompt formats; and the worker's generated_text carrying exact counts."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import openai
import pytest
from typer.testing import CliRunner

from oasst.cli.main import app
from oasst.config import Settings
from oasst.protocol.inference import (
    MessageRead,
    MessageState,
    ModelConfig,
    SamplingParameters,
    WorkParameters,
)
from oasst.protocol.worker import GeneratedTextResponse, Thread, TokenResponse, WorkRequest
from oasst.worker.backends import hf
from oasst.worker.backends.base import BackendError, Finish, Generation, Started, Token
from oasst.worker.backends.hf import TransformersBackend
from oasst.worker.main import ModelWorker
from oasst.worker.prompts import STOP_SEQUENCES
from tests.conftest import ADMIN_KEY
from tests.inference.helpers import WorkerProcess, mint_worker_key
from tests.live import serve
from tests.tiny_model import build_tiny_model

MODEL = ModelConfig(model_id="tiny", max_input_length=128, max_total_length=256)
Item = Started | Token | Finish


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def backend(tiny_dir: Path) -> Iterator[TransformersBackend]:
    backend = TransformersBackend(MODEL, path=tiny_dir)
    asyncio.run(backend.start())
    yield backend
    asyncio.run(backend.close())


def _thread(*contents: str) -> list[MessageRead]:
    return [
        MessageRead(
            id=uuid4(),
            chat_id=uuid4(),
            created_at=datetime.now(UTC),
            role="prompter" if index % 2 == 0 else "assistant",
            state=MessageState.manual,
            content=content,
        )
        for index, content in enumerate(contents)
    ]


def _generation(
    *contents: str,
    stop: list[str] | None = None,
    do_sample: bool = False,
    seed: int = 0,
    model: ModelConfig = MODEL,
    **sampling: Any,
) -> Generation:
    parameters = WorkParameters(
        model=model,
        sampling_parameters=SamplingParameters(**{"max_new_tokens": 12, **sampling}),
        do_sample=do_sample,
        seed=seed,
    )
    return Generation.build(_thread(*(contents or ("Hello there",))), parameters, stop or [])


def _run(backend: TransformersBackend, generation: Generation) -> list[Item]:
    async def collect() -> list[Item]:
        return [item async for item in backend.generate(generation)]

    return asyncio.run(collect())


def _text(items: list[Item]) -> str:
    return "".join(item.text for item in items if isinstance(item, Token))


class _Scripted:
    """The real model, counting its forward passes and forcing chosen tokens at chosen steps."""

    def __init__(self, model: Any, forced: dict[int, int] | None = None) -> None:
        self.model = model
        self.forced = forced or {}
        self.calls = 0

    def __call__(self, **inputs: Any) -> Any:
        output = self.model(**inputs)
        if self.calls in self.forced:
            output.logits[:, -1, self.forced[self.calls]] = 1e4
        self.calls += 1
        return output

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def _script(backend: TransformersBackend, forced: dict[int, int] | None = None) -> _Scripted:
    assert backend._loaded is not None
    scripted = _Scripted(backend._loaded.model, forced)
    backend._loaded.model = scripted  # type: ignore[assignment]
    return scripted


def _token_id(backend: TransformersBackend, token: str) -> int:
    assert backend._loaded is not None
    token_id: int = backend._loaded.tokenizer.convert_tokens_to_ids(token)
    return token_id


def test_it_streams_one_token_per_model_token_and_counts_the_prompt(backend: TransformersBackend) -> None:
    generation = _generation("Hello there", "Hi!", "What is two plus two?")
    items = _run(backend, generation)
    assert isinstance(items[0], Started)
    assert items[0].prompt_tokens == len(backend.encode(generation))
    tokens = [item for item in items if isinstance(item, Token)]
    assert len(tokens) == 12 and items[-1] == Finish("length")
    assert backend._loaded is not None
    decoded = backend._loaded.tokenizer.decode([token.token_id for token in tokens], skip_special_tokens=True)
    assert _text(items) == decoded.rstrip("\ufffd")
    assert all(token.log_prob is not None and token.log_prob <= 0 for token in tokens)


def test_the_chat_template_is_used_unless_the_oasst_format_is_asked_for(
    tiny_dir: Path, tmp_path: Path
) -> None:
    generation = _generation("Hello there", "Hi!", "2+2?")
    chat = TransformersBackend(MODEL, path=tiny_dir)
    oasst = TransformersBackend(MODEL, path=tiny_dir, prompt_format="oasst")
    asyncio.run(chat.start())
    asyncio.run(oasst.start())
    assert chat._loaded is not None
    decode = chat._loaded.tokenizer.decode
    assert decode(chat.encode(generation)) == (
        "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n"
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert decode(oasst.encode(generation)) == (
        "<|prompter|>Hello there<|endoftext|><|assistant|>Hi!<|endoftext|><|prompter|>2+2?<|endoftext|>"
        "<|assistant|>"
    )
    # A tokenizer without a template falls back to the Open-Assistant format, or refuses when one is required.
    bare = tmp_path / "bare"
    shutil.copytree(tiny_dir, bare)
    (bare / "chat_template.jinja").unlink()
    fallback = TransformersBackend(MODEL, path=bare)
    asyncio.run(fallback.start())
    assert decode(fallback.encode(generation)) == decode(oasst.encode(generation))
    with pytest.raises(BackendError, match="no chat template"):
        asyncio.run(TransformersBackend(MODEL, path=bare, prompt_format="chat_template").start())
    with pytest.raises(BackendError, match="not a Hugging Face model folder"):
        asyncio.run(TransformersBackend(MODEL, path=tmp_path).start())


def test_sampling_is_seeded_and_greedy_ignores_the_seed(backend: TransformersBackend) -> None:
    def sample(seed: int, **sampling: Any) -> str:
        return _text(_run(backend, _generation(do_sample=True, seed=seed, max_new_tokens=20, **sampling)))

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    k50 = {"top_k": 50, "top_p": 0.95, "temperature": 0.75, "repetition_penalty": 1.2}
    assert sample(5, **k50) == sample(5, **k50) != sample(5)
    assert sample(3, typical_p=0.3) == sample(3, typical_p=0.3)
    greedy = [_text(_run(backend, _generation(seed=seed, max_new_tokens=20))) for seed in (1, 2)]
    assert greedy[0] == greedy[1]
    # temperature 0 is greedy too, even when sampling is asked for.
    assert (
        _text(_run(backend, _generation(do_sample=True, seed=9, temperature=0, max_new_tokens=20)))
        == greedy[0]
    )


def test_lengths_are_kept_within_the_model_config(tiny_dir: Path) -> None:
    small = ModelConfig(model_id="tiny", max_input_length=5, max_total_length=9)
    backend = TransformersBackend(small, path=tiny_dir)
    asyncio.run(backend.start())
    items = _run(backend, _generation("a long question " * 10, model=small, max_new_tokens=50))
    # The prompt keeps its last 5 tokens (the end, where the question is), the reply gets the 4 left.
    assert items[0] == Started(5)
    assert len([item for item in items if isinstance(item, Token)]) == 4
    assert items[-1] == Finish("length")


def test_end_tokens_and_special_stop_tokens_end_the_reply(backend: TransformersBackend) -> None:
    # The tokenizer's eos and the generation config's eos list (<|im_end|>) both end a reply.
    for eos in ("<|endoftext|>", "<|im_end|>"):
        _script(backend, {2: _token_id(backend, eos)})
        items = _run(backend, _generation())
        assert len([item for item in items if isinstance(item, Token)]) == 2
        assert items[-1] == Finish("eos_token")
        assert backend._loaded is not None
        backend._loaded.model = backend._loaded.model.model  # type: ignore[attr-defined]
    # A stop sequence that is one special token stops on its id (decoding drops special tokens' text).
    _script(backend, {3: _token_id(backend, "<|prompter|>")})
    items = _run(backend, _generation(stop=STOP_SEQUENCES))
    assert len([item for item in items if isinstance(item, Token)]) == 3
    assert items[-1] == Finish("stop_sequence")


def test_closing_the_stream_stops_the_decoding_thread(backend: TransformersBackend) -> None:
    scripted = _script(backend)
    allowed = 240  # the tiny model's 256 positions less the prompt
    generation = _generation(max_new_tokens=allowed)

    async def read_three() -> list[Item]:
        stream = backend.generate(generation)
        items = [await anext(stream), await anext(stream), await anext(stream)]
        await stream.aclose()  # returns once the thread has stopped
        return items

    items = asyncio.run(read_three())
    assert isinstance(items[0], Started) and isinstance(items[2], Token)
    # The thread may run ahead of a reader starved by a busy machine, but it stops well short of the budget.
    calls = scripted.calls
    assert 2 <= calls < allowed // 2

    async def cancel_reader() -> None:
        """Cancelling the task that reads (the server dropped the connection) stops it the same way."""
        reading = asyncio.Event()

        async def read() -> None:
            async for _ in backend.generate(generation):
                reading.set()

        task = asyncio.create_task(read())
        await reading.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_reader())
    assert scripted.calls - calls < allowed // 2


class _Socket:
    """The worker's side of a websocket, recording what it sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


def _work(backend: TransformersBackend, stop: list[str], **sampling: Any) -> list[dict[str, Any]]:
    worker = ModelWorker(backend, server="http://127.0.0.1:1", api_key="k", stop_sequences=stop)
    parameters = WorkParameters(
        model=MODEL, sampling_parameters=SamplingParameters(**sampling), do_sample=False
    )
    request = WorkRequest(
        thread=Thread(messages=_thread("Hello there")), created_at=datetime.now(UTC), parameters=parameters
    )
    socket = _Socket()
    asyncio.run(worker._work(socket, request))  # type: ignore[arg-type]
    return socket.sent


def test_the_worker_cuts_at_stop_text_and_reports_exact_counts(backend: TransformersBackend) -> None:
    sent = _work(backend, [], max_new_tokens=16)
    done = GeneratedTextResponse.model_validate(sent[-1])
    tokens = [TokenResponse.model_validate(packet) for packet in sent[:-1]]
    assert done.finish_reason == "length"
    assert done.text == "".join(token.text for token in tokens)
    prompt_tokens = len(backend.encode(_generation("Hello there")))
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (prompt_tokens, 16)

    # Stop text (three characters past the start, seen there first): held back, never sent, the reply ends.
    start = next(
        index
        for index in range(2, len(done.text) - 3)
        if done.text[index : index + 3].strip() and done.text.find(done.text[index : index + 3]) == index
    )
    stop = done.text[start : start + 3]
    cut = _work(backend, [stop], max_new_tokens=16)
    finished = GeneratedTextResponse.model_validate(cut[-1])
    assert finished.finish_reason == "stop_sequence"
    assert finished.text == done.text[:start]
    assert stop not in "".join(packet["text"] for packet in cut[:-1])
    assert finished.usage is not None and finished.usage.completion_tokens < 16


def test_a_worker_process_reports_exact_usage_through_v1(
    make_settings: Callable[..., Settings], tiny_dir: Path, backend: TransformersBackend
) -> None:
    """`oasst worker --backend transformers --model DIR` behind a real server: /v1 reports its counts."""
    messages = [{"role": "user", "content": "Hello there"}]
    prompt_tokens = len(backend.encode(_generation("Hello there")))
    with serve(make_settings()) as base_url:
        key = mint_worker_key(base_url)
        arguments = ("--backend", "transformers", "--model", str(tiny_dir), "--model-name", "tiny")
        with WorkerProcess(base_url, key, backend=arguments) as worker:
            worker.wait_for("registered", timeout=120)
            with openai.OpenAI(base_url=f"{base_url}/v1", api_key=ADMIN_KEY, max_retries=0) as sdk:
                reply = sdk.chat.completions.create(
                    model="tiny",
                    messages=messages,
                    max_tokens=9,
                    temperature=0,  # type: ignore[list-item]
                )
                stream = sdk.chat.completions.create(
                    model="tiny",
                    messages=messages,  # type: ignore[arg-type]
                    max_tokens=9,
                    temperature=0,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                chunks = list(stream)
    assert reply.usage is not None
    # Exact: the chat template's tokens, not the estimate of one per four characters (3 for "Hello there").
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (prompt_tokens, 9)
    assert reply.choices[0].finish_reason == "length"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (prompt_tokens, 9)
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert streamed == reply.choices[0].message.content


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "/no/such/folder"], "no Hugging Face model folder at /no/such/folder"),
        (["--backend", "fake"], "the fake backend needs the model's name"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_bad_worker_options_are_clear_usage_errors(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["worker", "--api-key", "k", *arguments])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())  # rich wraps the message in a box


def test_the_bundled_model_is_converted_once_and_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers starting at once convert once; a failed conversion leaves nothing behind."""
    conversions: list[Path] = []
    fail = threading.Event()

    def convert(_gguf: Path, folder: Path) -> None:
        conversions.append(folder)
        (folder / "config.json").write_text("{}")
        time.sleep(0.2)  # long enough for the other thread to reach the lock
        if fail.is_set():
            raise RuntimeError("disk full")

    monkeypatch.setattr(hf, "bundled_gguf", lambda: tmp_path / "model.gguf")
    monkeypatch.setattr(hf, "_convert_gguf", convert)
    fail.set()
    with pytest.raises(RuntimeError, match="disk full"):
        hf.bundled_model_dir(tmp_path / "broken")
    assert [path.name for path in (tmp_path / "broken").iterdir()] == [f".{hf.BUNDLED_MODEL}.lock"]
    fail.clear()
    conversions.clear()
    cache = tmp_path / "models"
    with ThreadPoolExecutor(2) as pool:
        folders = list(pool.map(hf.bundled_model_dir, [cache, cache]))
    assert folders == [cache / hf.BUNDLED_MODEL] * 2
    assert len(conversions) == 1 and (cache / hf.BUNDLED_MODEL / "config.json").is_file()
    assert sorted(path.name for path in cache.iterdir()) == [f".{hf.BUNDLED_MODEL}.lock", hf.BUNDLED_MODEL]
