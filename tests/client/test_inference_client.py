"""`InferenceClient` and `AsyncInferenceClient` against a real server and a fake-backend worker: sign-in
(local, refresh, trusted client), chats, the token stream, feedback, typed errors; and a root-mounted API."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from oasst.client import AsyncInferenceClient, InferenceApiError, InferenceClient
from oasst.config import Settings
from oasst.protocol.inference import ChatUpdateRequest, TrustedClientToken
from tests.conftest import ADMIN_KEY
from tests.inference.helpers import MODEL, WorkerProcess, mint_worker_key
from tests.live import serve

PASSWORD = "a long enough password"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    settings = make_settings(allow_registration=True, pending_event_interval=0.05)
    with serve(settings) as base_url, WorkerProcess(base_url, mint_worker_key(base_url)) as worker:
        worker.wait_for("registered")
        yield base_url


def test_sync_client_signs_in_chats_and_gives_feedback(server: str) -> None:
    with InferenceClient(server) as client:
        assert client.providers() == ["local"]
        client.register_local("Olga", PASSWORD, display_name="Olga K.")
        user_id = client.check()
        assert client.login_local("olga", PASSWORD) and client.check() == user_id
        assert client.refresh() and client.check() == user_id

        chat = client.create_chat()
        prompt = client.prompter_message(chat.id, "first words", None)
        drafts = [client.assistant_message(chat.id, prompt.id, MODEL) for _ in range(2)]
        for draft in drafts:
            events = list(client.events(chat.id, draft.id))
            assert events[-1].event_type == "message"
            assert events[-1].message.content == "You said: first words"
        client.vote(chat.id, drafts[0].id, 1)
        client.report(chat.id, drafts[1].id, "feedback", "too short")
        client.message_eval(chat.id, drafts[0].id, [drafts[1].id])
        first, second = (client.get_message(chat.id, draft.id) for draft in drafts)
        assert first.score == 1 and [report.reason for report in second.reports] == ["too short"]

        client.update_chat(chat.id, ChatUpdateRequest(title="Renamed", hidden=True))
        assert client.list_chats().chats == []
        listed = client.list_chats(include_hidden=True)
        assert [(item.id, item.title) for item in listed.chats] == [(chat.id, "Renamed")]
        assert len(client.get_chat(chat.id).messages) == 3

        with pytest.raises(InferenceApiError) as bad_vote:
            client.vote(chat.id, drafts[0].id, 5)
        assert bad_vote.value.status == 422
        with pytest.raises(InferenceApiError) as missing:
            client.get_chat(uuid.uuid4())
        assert (missing.value.status, missing.value.detail) == (404, "Chat not found")

        client.delete_chat(chat.id)
        client.delete_account()
        with pytest.raises(InferenceApiError) as gone:
            client.check()
        assert gone.value.status == 401
        with pytest.raises(InferenceApiError):
            client.login_local("olga", PASSWORD)


@pytest.mark.anyio
async def test_async_client_does_the_same_as_a_trusted_frontend(server: str) -> None:
    async with AsyncInferenceClient(server) as client:
        with pytest.raises(InferenceApiError) as wrong:
            await client.login_local("nobody", PASSWORD)
        assert (wrong.value.status, wrong.value.detail) == (401, "Invalid username or password")
        client.use_trusted_client(
            TrustedClientToken(
                api_key=ADMIN_KEY, client="website", user_id="u-7", provider_account_id="7", username="Pat"
            )
        )
        user = await client.ensure_trusted_user()
        assert (user.id, user.provider, user.display_name) == ("u-7", "website", "Pat")
        assert await client.check() == "u-7"
        assert [config.name for config in await client.model_configs()] == [MODEL]

        chat = await client.create_chat()
        prompt = await client.prompter_message(chat.id, "async words", None)
        reply = await client.assistant_message(chat.id, prompt.id, MODEL)
        tokens = [
            event.text async for event in client.events(chat.id, reply.id) if event.event_type == "token"
        ]
        assert "".join(tokens) == "You said: async words"
        await client.vote(chat.id, reply.id, -1)
        assert (await client.get_message(chat.id, reply.id)).score == -1
        page = await client.list_chats(limit=1)
        assert [item.id for item in page.chats] == [chat.id]
        with pytest.raises(InferenceApiError) as not_assistant:
            await client.report(chat.id, prompt.id, "spam")
        assert not_assistant.value.status == 400
        with pytest.raises(ValueError):
            await client.refresh()  # a trusted client has no refresh token


def test_a_root_mounted_inference_api(make_settings: Callable[..., Settings]) -> None:
    with serve(make_settings(serve_only="inference", allow_debug_auth=True)) as base_url:
        with InferenceClient(base_url, prefix="") as client:
            client.login_debug("quinn")
            assert client.check() == "quinn"
            assert client.create_chat().title is None
        with InferenceClient(base_url) as prefixed, pytest.raises(InferenceApiError) as missing:
            prefixed.providers()
        assert missing.value.status == 404
