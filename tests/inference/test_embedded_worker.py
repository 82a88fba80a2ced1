"""`oasst serve` with its embedded model worker: a key minted at each start, a child process that serves and
stops with the server; and the bundled SmolLM2 answering through /inference and /v1 (converted once)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from oasst.config import Settings
from oasst.db.session import create_engine, sessionmaker, transaction
from oasst.inference import repository, service
from oasst.inference.embedded import EmbeddedWorker, local_url, rotate_key
from oasst.worker.backends.base import BackendError
from oasst.worker.backends.hf import BUNDLED_MODEL, bundled_model_dir
from tests.conftest import ADMIN_KEY
from tests.inference.helpers import MODEL, ChatClient, serve_process

SMOLLM2_TIMEOUT = 180.0  # loading torch and the model on a busy machine


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache holding the bundled SmolLM2, converted from its GGUF once per test session."""
    cache = tmp_path_factory.mktemp("models")
    try:
        bundled_model_dir(cache)
    except BackendError as error:
        pytest.skip(str(error))
    return cache


def _reply(
    client: ChatClient, model: str, question: str, **sampling: int
) -> tuple[list[str], dict[str, object]]:
    chat_id = client.new_chat()
    message_id = client.ask(chat_id, question, model_config_name=model, sampling_parameters=sampling)
    events = list(client.events(chat_id, message_id))
    assert events[-1]["event_type"] == "message", events[-1]
    tokens = [str(event["text"]) for event in events if event["event_type"] == "token"]
    return tokens, events[-1]["message"]


def test_serve_runs_a_worker_and_stops_it_with_itself(database_url: str, tmp_path: Path) -> None:
    with serve_process(
        database_url, tmp_path, "--worker-backend", "fake", OASST_EMBEDDED_WORKER_MODEL=MODEL
    ) as (
        base_url,
        server,
    ):
        pid = int(server.wait_for("model worker (fake) started as process").split()[-1])
        server.wait_for("registered")
        client = ChatClient(base_url)
        tokens, message = _reply(client, MODEL, "hello from the embedded worker")
        client.close()
        assert message["content"] == "You said: hello from the embedded worker" == "".join(tokens)
        assert server.terminate() == 0
    with pytest.raises(ProcessLookupError):  # the server stopped (and reaped) its worker
        os.kill(pid, 0)


def test_no_worker_when_turned_off(database_url: str, tmp_path: Path) -> None:
    with serve_process(database_url, tmp_path, OASST_EMBEDDED_WORKER="false") as (base_url, server):
        server.wait_for("Application startup complete")
        client = ChatClient(base_url)
        assert client.http.get("/configs/model_configs").json() == []
        client.close()
        server.terminate()
    assert not any("model worker" in line for line in server.log)


def test_each_start_gives_the_worker_row_a_new_key(database_url: str) -> None:
    name = "embedded worker (host:8080)"

    async def run() -> None:
        engine = create_engine(database_url, 1)
        sessions = sessionmaker(engine)
        try:
            async with transaction(sessions) as session:
                first = await rotate_key(session, name)
            async with transaction(sessions) as session:
                second = await rotate_key(session, name)
            async with transaction(sessions) as session:
                assert await service.authenticate_worker(session, first) is None
                worker = await service.authenticate_worker(session, second)
                assert worker is not None and worker.trusted
                assert [row.name for row in await repository.workers(session)] == [name]
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_the_worker_command_follows_the_settings(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(
        embedded_worker_threads=3, embedded_worker_model="/srv/sft", model_cache_dir=tmp_path
    )
    command = EmbeddedWorker(settings, "127.0.0.1", 8080).command()
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options == {
        "--server": "http://127.0.0.1:8080",
        "--backend": "transformers",
        "--log-level": "info",
        "--threads": "3",
        "--cache-dir": str(tmp_path),
        "--model": "/srv/sft",
    }
    assert not EmbeddedWorker.wanted(make_settings(serve_only="collection"))
    assert not EmbeddedWorker.wanted(make_settings(embedded_worker=False))
    assert EmbeddedWorker.wanted(make_settings())


def test_a_wildcard_address_is_reached_on_the_loopback() -> None:
    assert local_url("0.0.0.0", 8080) == "http://127.0.0.1:8080"
    assert local_url("::", 8080) == "http://[::1]:8080"
    assert local_url("10.0.0.5", 80) == "http://10.0.0.5:80"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the engines are covered above
def test_the_bundled_smollm2_answers_through_serve(
    database_url: str, tmp_path: Path, smollm2_cache: Path
) -> None:
    from transformers import AutoTokenizer

    question = [{"role": "user", "content": "What is the capital of France?"}]
    tokenizer = AutoTokenizer.from_pretrained(smollm2_cache / BUNDLED_MODEL, local_files_only=True)
    text = tokenizer.apply_chat_template(question, add_generation_prompt=True, tokenize=False)
    prompt_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    with serve_process(database_url, tmp_path, OASST_MODEL_CACHE_DIR=str(smollm2_cache)) as (
        base_url,
        server,
    ):
        server.wait_for("registered", timeout=SMOLLM2_TIMEOUT)
        with openai.OpenAI(base_url=f"{base_url}/v1", api_key=ADMIN_KEY, max_retries=0, timeout=120) as sdk:
            assert [model.id for model in sdk.models.list()] == [BUNDLED_MODEL]
            reply = sdk.chat.completions.create(
                model=BUNDLED_MODEL,
                messages=question,  # type: ignore[arg-type]
                temperature=0,
                max_tokens=24,
            )
        client = ChatClient(base_url)
        tokens, message = _reply(client, BUNDLED_MODEL, "Say hello.", max_new_tokens=16)
        client.close()
        assert server.terminate() == 0
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.usage is not None and reply.usage.prompt_tokens == prompt_tokens
    assert message["state"] == "complete" and message["content"] == "".join(tokens)
    assert str(message["content"]).strip()
