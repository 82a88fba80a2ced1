"""The Python inference client and `oasst chat` against a real server and a real fake-backend worker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from oasst.client.inference import InferenceApiError, InferenceClient
from oasst.config import Settings
from tests.inference.helpers import MODEL, WorkerProcess, mint_worker_key
from tests.live import serve


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve(make_settings(allow_debug_auth=True, pending_event_interval=0.05)) as base_url:
        key = mint_worker_key(base_url)
        with WorkerProcess(base_url, key) as worker:
            worker.wait_for("registered")
            yield base_url


def test_client_streams_a_reply_and_keeps_the_thread(server: str) -> None:
    with InferenceClient(server) as client:
        client.login_debug("alice")
        assert [config.name for config in client.model_configs()] == [MODEL]
        chat = client.create_chat()
        prompt = client.prompter_message(chat.id, "first words", None)
        reply = client.assistant_message(chat.id, prompt.id, MODEL)
        events = list(client.events(chat.id, reply.id))
        tokens = "".join(e.text for e in events if e.event_type == "token")
        final = events[-1]
        assert final.event_type == "message" and final.message.content == tokens == "You said: first words"
        follow_up = client.prompter_message(chat.id, "more", final.message.id)
        assert follow_up.parent_id == final.message.id
        with pytest.raises(InferenceApiError) as refused:
            client.assistant_message(chat.id, follow_up.id, "no-such-model")
        assert 400 <= refused.value.status < 500


def test_client_without_a_token_is_refused(server: str) -> None:
    with InferenceClient(server) as client, pytest.raises(InferenceApiError) as refused:
        client.create_chat()
    assert refused.value.status in (401, 403)


def test_oasst_chat_in_the_terminal(server: str) -> None:
    command = [sys.executable, "-m", "oasst.cli.main", "chat", "--server", server, "--username", "bob"]
    session = subprocess.run(
        command, input="hello terminal\n/new\nagain\n/quit\n", capture_output=True, text=True, timeout=60
    )
    assert session.returncode == 0, session.stderr
    assert "You said: hello terminal" in session.stdout
    assert "New chat." in session.stdout
    assert "You said: again" in session.stdout


def test_oasst_chat_names_the_served_models_when_asked_for_another(server: str) -> None:
    command = [sys.executable, "-m", "oasst.cli.main", "chat", "--server", server, "--username", "bob"]
    session = subprocess.run([*command, "--model", "gpt-9"], capture_output=True, text=True, timeout=60)
    assert session.returncode == 1
    assert "No worker serves gpt-9" in session.stdout and MODEL in session.stdout


def test_oasst_chat_signs_in_with_a_local_account(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(pending_event_interval=0.05)  # no debug sign-in: passwords only
    created = subprocess.run(
        [sys.executable, "-m", "oasst.cli.main", "accounts", "create", "carol", "--password-stdin"],
        input="a long enough secret\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OASST_DATABASE_URL": settings.effective_database_url},
    )
    assert created.returncode == 0, created.stderr
    with serve(settings) as base_url, WorkerProcess(base_url, mint_worker_key(base_url)) as worker:
        worker.wait_for("registered")
        command = [
            sys.executable,
            "-m",
            "oasst.cli.main",
            "chat",
            "--server",
            base_url,
            "--username",
            "carol",
        ]
        wrong = subprocess.run(command, input="not the secret\n", capture_output=True, text=True, timeout=60)
        assert wrong.returncode == 1 and "401" in wrong.stdout
        right = subprocess.run(
            command,
            input="a long enough secret\nhi there\n/quit\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert right.returncode == 0, right.stderr
        assert "You said: hi there" in right.stdout
