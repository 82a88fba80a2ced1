"""The sync and async collection clients against a real server over HTTP, on both database engines."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from oasst.client import AsyncCollectionClient, CollectionClient, OasstApiError
from oasst.client.autoplay import answer, frontend_message_id, reply
from oasst.config import Settings
from oasst.protocol.collection import (
    CreateFrontendUserRequest,
    InitialPromptTask,
    LabelInitialPromptTask,
    TaskDone,
    TaskRequestType,
    TextReplyToMessage,
    User,
)
from tests.conftest import ADMIN_KEY
from tests.live import serve

ALICE = User(id="alice", display_name="Alice", auth_method="local")
BOB = User(id="bob", display_name="Bob", auth_method="local")


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    """A live server whose trees need one review per message, so a few tasks move them along."""
    tree_manager: dict[str, Any] = {"num_reviews_initial_prompt": 1, "num_reviews_reply": 1}
    with serve(make_settings(tree_manager=tree_manager)) as base_url:
        yield base_url


@pytest.fixture
def client(server: str) -> Iterator[CollectionClient]:
    with CollectionClient(server, ADMIN_KEY) as client:
        yield client


def write_prompt(client: CollectionClient, user: User, text: str) -> InitialPromptTask:
    task = client.fetch_task(TaskRequestType.initial_prompt, user)
    assert isinstance(task, InitialPromptTask)
    client.ack_task(task.id, frontend_message_id(task))
    assert isinstance(client.post_interaction(reply(task, user, text, f"m-{task.id}")), TaskDone)
    return task


def test_upsert_user_returns_the_stored_user(client: CollectionClient) -> None:
    created = client.upsert_user(CreateFrontendUserRequest(**ALICE.model_dump(), tos_acceptance=True))
    assert (created.id, created.display_name, created.auth_method) == ("alice", "Alice", "local")
    assert created.tos_acceptance_date is not None

    renamed = client.upsert_user(id="alice", display_name="Alice L.", auth_method="local")
    assert renamed.user_id == created.user_id
    assert client.get_user("local", "alice").display_name == "Alice L."


def test_a_prompt_goes_through_fetch_ack_interaction_and_review(client: CollectionClient) -> None:
    before = client.availability(BOB, "en")
    assert set(before) == {t.value for t in TaskRequestType}
    assert before["label_initial_prompt"] == 0

    write_prompt(client, ALICE, "What is the tallest tree on earth?")

    after = client.availability(BOB, "en")
    assert after["label_initial_prompt"] == 1
    task = client.fetch_task("label_initial_prompt", BOB, lang="en")
    assert isinstance(task, LabelInitialPromptTask)
    assert task.conversation.messages[-1].text == "What is the tallest tree on earth?"
    client.ack_task(task.id, frontend_message_id(task))
    assert isinstance(client.post_interaction(answer(task, BOB, random.Random(1))), TaskDone)
    assert client.availability(BOB, "en")["label_initial_prompt"] == 0


def test_random_task_for_a_new_user_on_an_empty_server_is_a_prompt(client: CollectionClient) -> None:
    assert isinstance(client.fetch_random_task(ALICE), InitialPromptTask)


def test_nack_sends_the_user_so_the_server_accepts_it(client: CollectionClient) -> None:
    task = client.fetch_task(TaskRequestType.initial_prompt, ALICE)
    client.nack_task(task.id, "not now", ALICE)

    with pytest.raises(OasstApiError) as refused:
        client.ack_task(task.id, "late")
    assert refused.value.error_code == 2103


def test_close_finishes_a_collective_task(client: CollectionClient) -> None:
    task = client.fetch_task(TaskRequestType.initial_prompt, ALICE, collective=True)
    client.ack_task(task.id, "collective-1")
    assert isinstance(client.close_task("collective-1"), TaskDone)


def test_errors_carry_status_and_open_assistant_code(client: CollectionClient, server: str) -> None:
    with CollectionClient(server, "not-a-key") as stranger, pytest.raises(OasstApiError) as denied:
        stranger.fetch_random_task(ALICE)
    assert (denied.value.status, denied.value.error_code) == (403, 2)

    with pytest.raises(OasstApiError) as unknown:
        client.ack_task("4f3c1a2e-0000-4000-8000-000000000000", "x")
    assert (unknown.value.status, unknown.value.error_code) == (404, 2100)

    with pytest.raises(OasstApiError) as none_left:
        client.fetch_task(TaskRequestType.label_assistant_reply, ALICE)
    assert (none_left.value.status, none_left.value.error_code) == (503, 1006)

    with pytest.raises(OasstApiError) as invalid:
        client.availability(ALICE, "x")
    assert (invalid.value.status, invalid.value.error_code) == (422, 0)
    assert "lang" in invalid.value.message


@pytest.mark.anyio
async def test_async_client_runs_the_same_flow(server: str) -> None:
    async with AsyncCollectionClient(server, ADMIN_KEY) as client:
        user = await client.upsert_user(**ALICE.model_dump(), tos_acceptance=True)
        assert user.id == "alice"
        assert (await client.get_user("local", "alice")).user_id == user.user_id

        task = await client.fetch_random_task(ALICE, lang="en")
        assert isinstance(task, InitialPromptTask)
        await client.ack_task(task.id, frontend_message_id(task))
        prompt = TextReplyToMessage(
            message_id=frontend_message_id(task),
            user_message_id="async-1",
            text="Why is the sky blue?",
            user=ALICE,
        )
        assert isinstance(await client.post_interaction(prompt), TaskDone)
        assert (await client.availability(BOB))["label_initial_prompt"] == 1

        skipped = await client.fetch_task(TaskRequestType.label_initial_prompt, BOB)
        await client.nack_task(skipped.id, "skip", BOB)

        collective = await client.fetch_task(TaskRequestType.initial_prompt, BOB, collective=True)
        await client.ack_task(collective.id, "async-collective")
        assert isinstance(await client.close_task("async-collective"), TaskDone)


@pytest.mark.anyio
async def test_async_client_raises_typed_errors(server: str) -> None:
    async with AsyncCollectionClient(server, "not-a-key") as stranger:
        with pytest.raises(OasstApiError) as denied:
            await stranger.availability(ALICE)
    assert (denied.value.status, denied.value.error_code) == (403, 2)

    async with AsyncCollectionClient(server, ADMIN_KEY) as client:
        with pytest.raises(OasstApiError) as unknown:
            await client.ack_task("4f3c1a2e-0000-4000-8000-000000000000", "x")
    assert (unknown.value.status, unknown.value.error_code) == (404, 2100)
    assert unknown.value.code is not None and unknown.value.code.name == "TASK_NOT_FOUND"
