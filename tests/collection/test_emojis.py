"""Emoji reactions (§4.9): toggle, add and remove, +1/-1 exclusivity, red flags, counts under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from oasst.collection.messages import service
from oasst.db.models import ApiClient, FlaggedMessage, Message, MessageEmoji, User
from oasst.db.session import create_engine, sessionmaker, transaction
from tests.factories import Factory


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def react(
    app_client: TestClient,
    message: Message | uuid.UUID,
    emoji: str,
    who: str = "alice",
    op: str | None = None,
) -> Any:
    """POST /messages/{id}/emoji as the local user `who`."""
    message_id = message if isinstance(message, uuid.UUID) else message.id
    body: dict[str, Any] = {"user": {"id": who, "display_name": who.title(), "auth_method": "local"}}
    body["emoji"] = emoji
    if op is not None:
        body["op"] = op
    return app_client.post(f"/api/v1/messages/{message_id}/emoji", json=body)


def reacted(
    app_client: TestClient, message: Message, emoji: str, who: str = "alice", op: str | None = None
) -> tuple[dict[str, int], list[str]]:
    """The message's emoji counts and `who`'s own emojis after a reaction that must be accepted."""
    response = react(app_client, message, emoji, who, op)
    assert response.status_code == 202, response.text
    body = response.json()
    return body["emojis"], body["user_emojis"]


def test_toggle_adds_then_removes(app_client: TestClient, message: Message) -> None:
    response = react(app_client, message, "+1")
    assert response.status_code == 202
    body = response.json()
    assert body["id"] == str(message.id)
    assert (body["emojis"], body["user_emojis"], body["user_is_author"]) == ({"+1": 1}, ["+1"], False)
    assert reacted(app_client, message, "+1") == ({}, [])


def test_add_and_remove_are_idempotent(app_client: TestClient, message: Message) -> None:
    assert reacted(app_client, message, "clap", op="add") == ({"clap": 1}, ["clap"])
    assert reacted(app_client, message, "clap", op="add") == ({"clap": 1}, ["clap"])
    assert reacted(app_client, message, "clap", "bob", op="add") == ({"clap": 2}, ["clap"])
    assert reacted(app_client, message, "clap", op="remove") == ({"clap": 1}, [])
    assert reacted(app_client, message, "clap", op="remove") == ({"clap": 1}, [])


def test_thumbs_up_and_down_exclude_each_other(app_client: TestClient, message: Message) -> None:
    assert reacted(app_client, message, "+1") == ({"+1": 1}, ["+1"])
    assert reacted(app_client, message, "-1") == ({"-1": 1}, ["-1"])
    emojis, mine = reacted(app_client, message, "+1", "bob")
    assert (emojis, mine) == ({"-1": 1, "+1": 1}, ["+1"])
    assert reacted(app_client, message, "+1", op="add") == ({"+1": 2}, ["+1"])


def test_thumbs_on_your_own_message_are_ignored(app_client: TestClient, message: Message) -> None:
    response = react(app_client, message, "+1", "author")
    assert response.status_code == 202
    assert (response.json()["emojis"], response.json()["user_is_author"]) == ({}, True)
    assert reacted(app_client, message, "-1", "author", op="add") == ({}, [])
    assert reacted(app_client, message, "heart_eyes", "author") == ({"heart_eyes": 1}, ["heart_eyes"])


def test_reactions_show_for_the_current_user(
    app_client: TestClient, factory: Factory, message: Message
) -> None:
    reacted(app_client, message, "rofl")
    reacted(app_client, message, "100", "bob")
    url = f"/api/v1/messages/{message.id}"
    seen = app_client.get(url, headers={"x-oasst-user": "local:alice"}).json()
    assert (seen["emojis"], seen["user_emojis"]) == ({"rofl": 1, "100": 1}, ["rofl"])
    assert app_client.get(url).json()["user_emojis"] == []
    assert len(factory.rows(MessageEmoji, message_id=message.id)) == 2


def test_red_flag_queues_the_message_for_moderation(
    app_client: TestClient, factory: Factory, message: Message
) -> None:
    reacted(app_client, message, "red_flag")
    [flagged] = factory.rows(FlaggedMessage, message_id=message.id)
    assert flagged.processed is False
    with factory.engine.begin() as conn:
        conn.execute(FlaggedMessage.__table__.update().values(processed=True))  # type: ignore[attr-defined]
    assert reacted(app_client, message, "red_flag", "bob") == ({"red_flag": 2}, ["red_flag"])
    [again] = factory.rows(FlaggedMessage, message_id=message.id)
    assert again.processed is False


def test_emoji_errors(app_client: TestClient, factory: Factory, admin: ApiClient, message: Message) -> None:
    factory.user(admin, "banned", enabled=False)
    assert react(app_client, message, "+1", "banned").status_code == 503
    assert react(app_client, message, "+1", "banned").json()["error_code"] == 4001
    response = react(app_client, uuid.uuid4(), "+1")
    assert (response.status_code, response.json()["error_code"]) == (404, 2001)
    assert react(app_client, message, "thumbs_up").status_code == 422
    assert react(app_client, message, "+1", op="flip").status_code == 422
    no_user = app_client.post(f"/api/v1/messages/{message.id}/emoji", json={"emoji": "+1"})
    assert no_user.status_code == 422
    assert react(app_client, message, "+1").status_code == 202  # "alice" is created on the fly


@pytest.mark.anyio
async def test_concurrent_reactions_keep_exact_counts(database_url: str) -> None:
    factory = Factory(database_url)
    client, _ = factory.api_client()
    target = factory.message(client, factory.user(client, "author"))
    users = [factory.user(client) for _ in range(12)]
    factory.close()
    engine = create_engine(database_url)
    sessions = sessionmaker(engine)

    async def one(user: User, emoji: str) -> None:
        async with transaction(sessions) as session:
            row = await session.get(Message, target.id)
            assert row is not None
            await service.add_emoji(session, row, user, emoji)

    try:
        await asyncio.gather(
            *(one(user, "+1") for user in users),
            *(one(user, "_skip_reply") for user in users[:6]),
            *(one(user, "+1") for user in users[:3]),  # already there: no second count
        )
        async with transaction(sessions) as session:
            stored = await session.scalar(select(Message.emojis).where(Message.id == target.id))
            rows = (
                await session.scalars(select(MessageEmoji).where(MessageEmoji.message_id == target.id))
            ).all()
    finally:
        await engine.dispose()
    assert stored == {"+1": 12, "_skip_reply": 6}
    assert len(rows) == 18
