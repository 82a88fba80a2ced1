"""Helpers of the export and import tests: a tree grown through /api/v1, the two commands, file readers."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, func, select, update
from typer.testing import CliRunner, Result

from oasst.app import create_app
from oasst.cli.main import app
from oasst.config import Settings
from oasst.db.base import Base
from oasst.db.models import Message, MessageTreeState, User
from oasst.db.session import sync_url
from tests.collection.frontend import BEST, OTHER, Frontend, user

# Re-exported: the export and import tests take their helpers from here.
from tests.collection.frontend import PROMPT as PROMPT
from tests.collection.frontend import SMALL_TREES as SMALL_TREES
from tests.conftest import ADMIN_KEY


@dataclass
class Grown:
    """A tree that went through the whole task protocol, with an emoji and a free label on top."""

    root_id: str
    best_id: str
    other_id: str
    users: dict[str, str]  # frontend username -> backend user id


def grow_tree(settings: Settings) -> Grown:
    """`Frontend.grow_tree` (the reviews also rate humor 0.25), then an emoji and a free label."""
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as client:
        root_id = Frontend(client).grow_tree(humor=0.25)
        children = {m["text"]: m["id"] for m in client.get(f"/api/v1/messages/{root_id}/children").json()}
        emoji = {"user": user("erin"), "op": "add", "emoji": "+1"}
        assert client.post(f"/api/v1/messages/{root_id}/emoji", json=emoji).status_code == 202
        free_label = {
            "type": "text_labels",
            "user": user("frank"),
            "text": "",
            "labels": {"quality": 0.5},
            "message_id": children[BEST],
        }
        assert client.post("/api/v1/text_labels/", json=free_label).status_code == 204
    engine = create_engine(sync_url(settings.effective_database_url))
    with engine.connect() as conn:
        users = {name: str(user_id) for name, user_id in conn.execute(select(User.username, User.id))}
    engine.dispose()
    return Grown(root_id, children[BEST], children[OTHER], users)


def run(database_url: str, *args: str) -> Result:
    """`oasst ARGS...` on `database_url`, in this process."""
    env = {"OASST_DATABASE_URL": database_url, "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def export(database_url: str, tmp_path: Path, *args: str, name: str = "out.jsonl") -> list[dict[str, Any]]:
    """`oasst export --export-file` with `args`; the lines of the file, parsed."""
    path = tmp_path / name
    result = run(database_url, "export", "--export-file", str(path), *args)
    assert result.exit_code == 0, result.output
    return read_jsonl(path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener: Any = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def nodes(tree_or_node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of a tree (or below a node), depth first."""
    found, stack = [], [tree_or_node.get("prompt", tree_or_node)]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(reversed(node.get("replies", [])))
    return found


def wipe(database_url: str) -> None:
    """Delete every row of every table (the schema stays)."""
    engine = create_engine(sync_url(database_url))
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
    engine.dispose()


def row_counts(database_url: str) -> dict[str, int]:
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }
    engine.dispose()
    return counts


def set_tree(database_url: str, root_id: str, **values: Any) -> None:
    """Change a tree's state row (state=...) or its messages (messages={...})."""
    import uuid

    messages = values.pop("messages", None)
    engine = create_engine(sync_url(database_url))
    with engine.begin() as conn:
        tree_id = uuid.UUID(root_id)
        if values:
            conn.execute(
                update(MessageTreeState).where(MessageTreeState.message_tree_id == tree_id).values(**values)
            )
        if messages:
            conn.execute(update(Message).where(Message.message_tree_id == tree_id).values(**messages))
    engine.dispose()
