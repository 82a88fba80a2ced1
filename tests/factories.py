"""Test factories: API clients, users, messages and tree states written straight into the test database."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from oasst.collection.auth.service import hash_key
from oasst.db.base import utcnow
from oasst.db.models import ApiClient, Message, MessageTreeState, User
from oasst.db.session import sync_url


class Factory:
    """Builds rows through a blocking engine on the same database the app under test uses."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(sync_url(database_url))
        self._serial = itertools.count(1)
        # Messages get increasing creation dates one millisecond apart unless a test sets them.
        self._clock = utcnow() - timedelta(days=1)

    def close(self) -> None:
        self.engine.dispose()

    def _save(self, row: Any) -> Any:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
        return row

    def next_date(self) -> datetime:
        self._clock += timedelta(milliseconds=1)
        return self._clock

    def client_by_key(self, api_key: str) -> ApiClient:
        with Session(self.engine, expire_on_commit=False) as session:
            client = session.scalar(select(ApiClient).where(ApiClient.api_key_hash == hash_key(api_key)))
        assert client is not None, "the app has not created this client"
        return client

    def api_client(self, api_key: str | None = None, *, trusted: bool = False) -> tuple[ApiClient, str]:
        """A new enabled client and its key."""
        key = api_key or f"test-key-{uuid.uuid4().hex}"
        client = ApiClient(
            api_key_hash=hash_key(key),
            description="test client",
            trusted=trusted,
            enabled=True,
            frontend_type="test",
        )
        return self._save(client), key

    def user(self, client: ApiClient, username: str | None = None, **values: Any) -> User:
        number = next(self._serial)
        fields: dict[str, Any] = {
            "username": username or f"user{number}",
            "auth_method": "local",
            "display_name": f"User {number}",
            "api_client_id": client.id,
            "enabled": True,
            "deleted": False,
            "notes": "",
            "show_on_leaderboard": True,
            "created_date": utcnow(),
        }
        fields.update(values)
        return self._save(User(**fields))

    def message(
        self,
        client: ApiClient,
        user: User | None = None,
        parent: Message | None = None,
        **values: Any,
    ) -> Message:
        """A message (a root with its tree state when there is no parent); the parent's child count grows."""
        number = next(self._serial)
        role = "prompter" if parent is None or parent.role == "assistant" else "assistant"
        message_id = values.pop("id", None) or uuid.uuid4()
        fields: dict[str, Any] = {
            "id": message_id,
            "parent_id": parent.id if parent else None,
            "message_tree_id": parent.message_tree_id if parent else message_id,
            "user_id": user.id if user else None,
            "role": role,
            "api_client_id": client.id,
            "frontend_message_id": f"fm-{number}",
            "created_date": self.next_date(),
            "text": f"message {number}",
            "lang": "en",
            "depth": parent.depth + 1 if parent else 0,
            "children_count": 0,
            "deleted": False,
            "review_count": 0,
            "review_result": True,
            "ranking_count": 0,
            "synthetic": False,
            "edited": False,
            "emojis": {},
        }
        fields.update(values)
        message = Message(**fields)
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(message)
            if parent is None:
                session.add(
                    MessageTreeState(
                        message_tree_id=message.id,
                        goal_tree_size=12,
                        max_depth=3,
                        max_children_count=3,
                        state="growing",
                        active=True,
                        lang=message.lang,
                    )
                )
            else:
                stored = session.get(Message, parent.id)
                assert stored is not None
                stored.children_count += 1
                parent.children_count = stored.children_count
            session.commit()
        return message

    def chain(self, client: ApiClient, user: User | None, length: int, **values: Any) -> list[Message]:
        """A root and `length - 1` replies, each under the previous one."""
        messages = [self.message(client, user, **values)]
        for _ in range(length - 1):
            messages.append(self.message(client, user, messages[-1], **values))
        return messages

    def set_tree_state(self, tree_id: uuid.UUID, state: str) -> None:
        """Move a tree to an inactive `state` (one that hands out no more work)."""
        with Session(self.engine) as session:
            tree = session.get(MessageTreeState, tree_id)
            assert tree is not None
            tree.state, tree.active = state, False
            session.commit()

    def rows(self, model: Any, **where: Any) -> list[Any]:
        """Rows of `model` matching `where` (column == value)."""
        with Session(self.engine) as session:
            query = select(model).filter_by(**where)
            return list(session.scalars(query))

    def fetch(self, model: Any, key: Any) -> Any:
        with Session(self.engine) as session:
            return session.get(model, key)


def make_factory(database_url: str) -> Iterator[Factory]:
    """The body of a `factory` fixture: one Factory per test, its engine closed afterwards."""
    factory = Factory(database_url)
    try:
        yield factory
    finally:
        factory.close()
