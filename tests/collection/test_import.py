"""`oasst import`: our exports round-trip field for field, the public layouts load, bad lines are reported."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from oasst.collection.export.service import IMPORT_CLIENT_ID
from oasst.config import Settings
from oasst.db.models import ApiClient, Message, MessageTreeState, User
from oasst.db.session import sync_url
from tests.collection.exports import (
    SMALL_TREES,
    export,
    grow_tree,
    nodes,
    read_jsonl,
    row_counts,
    run,
    wipe,
    write_jsonl,
)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(tree_manager=SMALL_TREES)


def rows(database_url: str, model: Any) -> list[Any]:
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        found = list(conn.execute(select(model)))
    engine.dispose()
    return found


def node(message_id: str, parent: str | None = None, **values: Any) -> dict[str, Any]:
    return {"message_id": message_id, "parent_id": parent, "text": f"text of {message_id[:8]}", **values}


def new_id() -> str:
    return str(uuid.uuid4())


def test_import_then_export_gives_back_the_same_trees(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    grown = grow_tree(settings)
    options = ("--export-labels", "--export-events")
    before = export(database_url, tmp_path, *options, name="before.jsonl")
    wipe(database_url)

    result = run(database_url, "import", str(tmp_path / "before.jsonl"))
    assert result.exit_code == 0, result.output
    assert "imported 1 trees (3 messages)" in result.stderr
    after = export(database_url, tmp_path, *options, name="after.jsonl")
    assert after == before
    # Field for field, key order included: the files are the same bytes.
    assert (tmp_path / "after.jsonl").read_text() == (tmp_path / "before.jsonl").read_text()
    assert export(database_url, tmp_path) == export(database_url, tmp_path, name="plain.jsonl")

    # The authors kept their ids, as users of the import client.
    [client] = rows(database_url, ApiClient)
    assert (client.id, client.frontend_type, client.trusted) == (IMPORT_CLIENT_ID, "import", False)
    users = {str(u.id): u for u in rows(database_url, User)}
    assert {grown.users[name] for name in ("alice", "bob", "dave", "erin")} <= users.keys()
    alice = users[grown.users["alice"]]
    assert (alice.auth_method, alice.username, alice.api_client_id) == (
        "system",
        str(alice.id),
        IMPORT_CLIENT_ID,
    )
    [tree] = rows(database_url, MessageTreeState)
    assert (tree.state, tree.active, tree.origin) == ("ready_for_export", False, "before.jsonl")
    assert {str(m.id) for m in rows(database_url, Message)} == {grown.root_id, grown.best_id, grown.other_id}


def test_importing_again_changes_nothing(database_url: str, tmp_path: Path) -> None:
    root, answer = new_id(), new_id()
    tree = {"message_tree_id": root, "tree_state": "ready_for_export", "prompt": node(root, role="prompter")}
    tree["prompt"]["replies"] = [
        node(answer, root, role="assistant", labels={"quality": {"value": 0.5, "count": 2}})
    ]
    path = write_jsonl(tmp_path / "trees.jsonl", [tree])
    assert run(database_url, "import", str(path)).exit_code == 0
    counts = row_counts(database_url)
    again = run(database_url, "import", str(path))
    assert again.exit_code == 0 and "imported 0 trees (0 messages); 1 already there" in again.stderr
    zipped = tmp_path / "trees.jsonl.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    assert "1 already there" in run(database_url, "import", str(zipped)).stderr  # gzip is read too
    assert row_counts(database_url) == counts


def test_the_hugging_face_flat_layout_imports(database_url: str, tmp_path: Path) -> None:
    root, good, rejected, other_root = new_id(), new_id(), new_id(), new_id()
    user = new_id()

    def row(message_id: str, parent: str | None, tree: str, role: str, **values: Any) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "parent_id": parent,
            "user_id": user,
            "created_date": "2023-02-05T14:23:50.983374+00:00",
            "text": f"text of {message_id[:8]}",
            "role": role,
            "lang": "es",
            "review_count": 3,
            "review_result": True,
            "deleted": False,
            "rank": None,
            "synthetic": False,
            "model_name": None,
            "detoxify": None,
            "message_tree_id": tree,
            "tree_state": "ready_for_export",
            "emojis": None,
            "labels": None,
            **values,
        }

    labels = {"name": ["spam", "quality"], "value": [0.0, 0.75], "count": [3, 2]}
    later = "2023-02-06T10:00:00+00:00"
    lines = [
        row(root, None, root, "prompter", emojis={"name": ["+1", "_skip_reply"], "count": [2, 1]}),
        row(good, root, root, "assistant", rank=0.0, labels=labels),
        row(rejected, root, root, "assistant", review_result=None, review_count=1),
        row(other_root, None, other_root, "prompter", emojis={"name": [], "count": []}, created_date=later),
    ]
    result = run(database_url, "import", str(write_jsonl(tmp_path / "oasst1.jsonl", lines)))
    assert result.exit_code == 0, result.output
    assert "imported 2 trees (4 messages)" in result.stderr

    first, second = export(database_url, tmp_path, "--export-labels", "--lang", "es")
    prompt = first["prompt"]
    assert first["message_tree_id"] == root and prompt["emojis"] == {"+1": 2, "_skip_reply": 1}
    [answer] = prompt["replies"]  # the unreviewed answer (review_result null) is not accepted
    assert (answer["message_id"], answer["rank"], answer["user_id"]) == (good, 0, user)
    assert answer["labels"] == {"spam": {"value": 0.0, "count": 3}, "quality": {"value": 0.75, "count": 2}}
    assert answer["created_date"] == "2023-02-05T14:23:50.983374+00:00"
    assert second["message_tree_id"] == other_root and second["prompt"]["emojis"] == {}
    [with_spam, _] = export(database_url, tmp_path, "--include-spam")
    assert [r["message_id"] for r in with_spam["prompt"]["replies"]] == [good, rejected]
    assert "review_result" not in with_spam["prompt"]["replies"][1]


def test_a_malformed_line_sinks_its_tree_only(database_url: str, tmp_path: Path) -> None:
    a, b, c = new_id(), new_id(), new_id()
    x_root, x_reply, y_root = new_id(), new_id(), new_id()

    def tree(root: str, **prompt: Any) -> dict[str, Any]:
        return {
            "message_tree_id": root,
            "tree_state": "ready_for_export",
            "prompt": node(root, role="prompter", **prompt),
        }

    def flat(message_id: str, parent: str | None, tree_id: str) -> dict[str, Any]:
        role = "prompter" if parent is None else "assistant"
        return {
            **node(message_id, parent, role=role),
            "message_tree_id": tree_id,
            "tree_state": "ready_for_export",
        }

    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            tree(a),
            '{"message_tree_id": "broken',
            tree(b, replies=[{"message_id": new_id(), "role": "assistant"}]),  # a reply without text
            tree(c),
            flat(x_root, None, x_root),
            "[1, 2]",  # inside the rows of tree x: x is not imported
            flat(x_reply, x_root, x_root),
            flat(y_root, None, y_root),
        ],
    )
    result = run(database_url, "import", str(path))
    assert result.exit_code == 1
    errors = result.stderr
    assert f"{path}:2: invalid JSON" in errors
    assert f"{path}:3: prompt.replies.0.text: Field required" in errors
    assert f"{path}:6: not a JSON object" in errors
    assert "imported 3 trees (3 messages); 3 failed" in errors
    assert {str(t.message_tree_id) for t in rows(database_url, MessageTreeState)} == {a, c, y_root}


def test_structure_errors_name_the_line(database_url: str, tmp_path: Path) -> None:
    root, orphan_parent = new_id(), new_id()
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {
                "message_tree_id": root,
                "prompt": node(root, role="prompter", replies=[node(new_id(), root, role="robot")]),
            },
            node(new_id(), orphan_parent, role="assistant"),  # a single message whose parent is nowhere
        ],
    )
    result = run(database_url, "import", str(path))
    assert result.exit_code == 1
    assert f"{path}:1: message" in result.stderr and "role must be prompter or assistant" in result.stderr
    assert f"{path}:2: tree has no root message" in result.stderr
    assert rows(database_url, Message) == []


def test_states_origin_model_and_counts(database_url: str, tmp_path: Path) -> None:
    roots = [new_id() for _ in range(3)]
    trees = [
        {"message_tree_id": r, "tree_state": "ready_for_export", "prompt": node(r, role="prompter")}
        for r in roots
    ]
    path = write_jsonl(tmp_path / "synthetic.jsonl", trees)
    args = ("import", str(path), "--state", "backlog_ranking", "--num-activate", "1", "--origin", "gpt run 1")
    assert run(database_url, *args, "--model-name", "gpt-x", "--max-count", "2").exit_code == 0
    states = {str(t.message_tree_id): t for t in rows(database_url, MessageTreeState)}
    assert set(states) == set(roots[:2])
    assert (states[roots[0]].state, states[roots[0]].active) == ("ranking", True)
    assert (states[roots[1]].state, states[roots[1]].active) == ("backlog_ranking", False)
    assert {t.origin for t in states.values()} == {"gpt run 1"}
    assert {(m.synthetic, m.model_name, m.review_result) for m in rows(database_url, Message)} == {
        (True, "gpt-x", True)
    }

    # The file's own state (the default) puts the third tree in ready_for_export; a dry run stores nothing.
    counts = row_counts(database_url)
    dry = run(database_url, "import", str(path), "--dry-run")
    assert (
        dry.exit_code == 0
        and "imported 1 trees (1 messages); 2 already there (dry run: rolled back)" in dry.stderr
    )
    assert row_counts(database_url) == counts
    assert run(database_url, "import", str(path)).exit_code == 0
    assert {str(t.message_tree_id): t.state for t in rows(database_url, MessageTreeState)}[
        roots[2]
    ] == "ready_for_export"
    assert run(database_url, "import", str(path), "--state", "bogus").exit_code == 2


def test_anonymized_and_message_list_exports_import(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    grow_tree(settings)
    [anonymized] = export(database_url, tmp_path, "--anonymizer-seed", "7", name="anonymized.jsonl")
    messages = export(database_url, tmp_path, "--state", "all", "--include-spam", name="plain.jsonl")
    wipe(database_url)

    # Hashed ids are not UUIDs: each becomes a UUID derived from it, the same on every import.
    assert run(database_url, "import", str(tmp_path / "anonymized.jsonl")).exit_code == 0
    [tree] = export(database_url, tmp_path)
    assert tree["message_tree_id"] == str(uuid.uuid5(IMPORT_CLIENT_ID, anonymized["prompt"]["message_id"]))
    assert [n["text"] for n in nodes(tree)] == [n["text"] for n in nodes(anonymized)]
    assert "already there" in run(database_url, "import", str(tmp_path / "anonymized.jsonl")).stderr

    # Single-message lines (a flattened export) become trees again, parents first.
    wipe(database_url)
    flat = [n | {"replies": None} for n in nodes(messages[0])]
    for message in flat:
        del message["replies"]
    flat_file = write_jsonl(tmp_path / "flat.jsonl", flat)
    # These lines say nothing of their tree's state: the file's state would be backlog_ranking.
    assert run(database_url, "import", str(flat_file), "--state", "ready_for_export").exit_code == 0
    assert export(database_url, tmp_path, "--state", "all", "--include-spam") == messages
    assert read_jsonl(tmp_path / "plain.jsonl") == messages
