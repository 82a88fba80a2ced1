"""`oasst export`: the oasst_data format of spec 6.2-6.3 field for field, and every option of spec 6.4."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oasst.collection.export.schemas import NODE_KEYS, TREE_KEYS, ExportMessageNode, ExportMessageTree
from oasst.config import Settings
from oasst.db.base import utcnow
from oasst.db.models import Message
from tests.collection.exports import (
    BEST,
    OTHER,
    PROMPT,
    SMALL_TREES,
    Grown,
    export,
    grow_tree,
    nodes,
    read_jsonl,
    run,
    set_tree,
)
from tests.conftest import ADMIN_KEY
from tests.factories import Factory, make_factory

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(tree_manager=SMALL_TREES)


@pytest.fixture
def grown(settings: Settings) -> Grown:
    return grow_tree(settings)


def sha(collection: str, key: str, seed: int = 42) -> str:
    return hashlib.sha256(f"{collection}:{key}{seed}".encode()).hexdigest()


def assert_upstream_shape(value: Any) -> None:
    """No nulls anywhere (upstream writes with exclude_none) and keys in the schema's order."""
    if isinstance(value, dict):
        assert None not in value.values(), value
        if "message_id" in value:
            assert list(value) == [k for k in NODE_KEYS if k in value], list(value)
        for item in value.values():
            assert_upstream_shape(item)
    elif isinstance(value, list):
        for item in value:
            assert_upstream_shape(item)


def test_a_grown_tree_exports_field_for_field(database_url: str, grown: Grown, tmp_path: Path) -> None:
    [tree] = export(database_url, tmp_path)
    assert list(tree) == list(TREE_KEYS[:3]) and tree["message_tree_id"] == grown.root_id
    assert tree["tree_state"] == "ready_for_export"
    assert_upstream_shape(tree)
    ExportMessageTree.model_validate(tree)

    prompt = tree["prompt"]
    assert list(prompt) == [
        "message_id", "user_id", "created_date", "text", "role", "lang", "review_count", "review_result",
        "deleted", "synthetic", "emojis", "replies",
    ]  # fmt: skip
    assert prompt["message_id"] == grown.root_id and "parent_id" not in prompt and "rank" not in prompt
    assert prompt["user_id"] == grown.users["alice"]
    assert (prompt["text"], prompt["role"], prompt["lang"]) == (PROMPT, "prompter", "en")
    assert (prompt["review_count"], prompt["review_result"], prompt["deleted"]) == (1, True, False)
    assert prompt["synthetic"] is False and prompt["emojis"] == {"+1": 1}
    # Replies come best first (rank 0), each a leaf with an empty reply list.
    best, other = prompt["replies"]
    assert (best["text"], best["rank"], best["message_id"]) == (BEST, 0, grown.best_id)
    assert (other["text"], other["rank"], other["message_id"]) == (OTHER, 1, grown.other_id)
    assert best["parent_id"] == grown.root_id and best["user_id"] == grown.users["dave"]
    # Never reacted to: no emojis key at all, as upstream (a map only appears with the first emoji).
    assert best["replies"] == [] and best["role"] == "assistant" and "emojis" not in best
    for node in nodes(tree):
        assert ISO.match(node["created_date"]), node["created_date"]
        assert "labels" not in node and "events" not in node
        ExportMessageNode.model_validate(node)


def test_stdout_and_gzip_carry_the_same_lines(database_url: str, grown: Grown, tmp_path: Path) -> None:
    lines = export(database_url, tmp_path)
    zipped = tmp_path / "trees.jsonl.gz"
    result = run(database_url, "export", "--export-file", str(zipped))
    assert result.exit_code == 0 and zipped.read_bytes()[:2] == b"\x1f\x8b"
    assert read_jsonl(zipped) == lines
    assert "exported 1 trees (3 messages)" in result.stderr
    on_stdout = run(database_url, "export")
    assert on_stdout.exit_code == 0
    assert [line for line in on_stdout.stdout.splitlines() if line] == [
        line for line in (tmp_path / "out.jsonl").read_text().splitlines()
    ]  # the progress bar and the summary go to stderr


def test_labels_are_means_and_counts_of_every_label_row(
    database_url: str, grown: Grown, tmp_path: Path
) -> None:
    [tree] = export(database_url, tmp_path, "--export-labels")
    prompt = tree["prompt"]
    best, other = prompt["replies"]
    assert list(prompt) == [k for k in NODE_KEYS if k in prompt] and list(prompt)[-1] == "labels"
    # The prompt's review: the mandatory spam label and quality, in TextLabel order.
    assert prompt["labels"] == {"spam": {"value": 0.0, "count": 1}, "quality": {"value": 1.0, "count": 1}}
    # The best answer: its review (quality 0.8) and a free label (quality 0.5) count alike.
    assert best["labels"] == {
        "spam": {"value": 0.0, "count": 1},
        "quality": {"value": 0.65, "count": 2},
        "humor": {"value": 0.25, "count": 1},
    }
    assert other["labels"]["quality"] == {"value": 0.8, "count": 1}
    assert list(best["labels"]) == ["spam", "quality", "humor"]


def test_events_hold_emojis_and_rankings_on_the_parent(
    database_url: str, grown: Grown, tmp_path: Path
) -> None:
    [tree] = export(database_url, tmp_path, "--export-labels", "--export-events")
    prompt = tree["prompt"]
    assert list(prompt)[-3:] == ["replies", "labels", "events"]
    assert prompt["events"] == {
        "emoji": [{"type": "emoji", "user_id": grown.users["erin"], "emoji": "+1"}],
        "ranking": [
            {
                "type": "ranking",
                "user_id": grown.users["bob"],
                "ranking": prompt["events"]["ranking"][0]["ranking"],
                "ranked_message_ids": [grown.best_id, grown.other_id],
                "ranking_parent_id": grown.root_id,
                "message_tree_id": grown.root_id,
            }
        ],
    }  # not_rankable only appears when true
    assert sorted(prompt["events"]["ranking"][0]["ranking"]) == [0, 1]
    assert all("events" not in reply for reply in prompt["replies"])
    ExportMessageTree.model_validate(tree)


def test_anonymization_hashes_every_id_and_the_tree_id(
    database_url: str, grown: Grown, tmp_path: Path
) -> None:
    [tree] = export(database_url, tmp_path, "--export-events", "--anonymizer-seed", "42")
    # Unlike upstream (quirk 8), the tree's own id is hashed too.
    assert tree["message_tree_id"] == sha("message_tree", grown.root_id)
    prompt = tree["prompt"]
    assert prompt["message_id"] == sha("message", grown.root_id)
    assert prompt["user_id"] == sha("user", grown.users["alice"])
    best, other = prompt["replies"]
    assert best["message_id"] == sha("message", grown.best_id) and best["parent_id"] == prompt["message_id"]
    assert best["user_id"] == sha("user", grown.users["dave"])
    [emoji] = prompt["events"]["emoji"]
    assert emoji["user_id"] == sha("user", grown.users["erin"])
    [ranking] = prompt["events"]["ranking"]
    assert ranking["user_id"] == sha("user", grown.users["bob"])
    assert ranking["ranked_message_ids"] == [best["message_id"], other["message_id"]]
    assert ranking["ranking_parent_id"] == prompt["message_id"]
    assert ranking["message_tree_id"] == tree["message_tree_id"]
    assert not UUID_TEXT.search((tmp_path / "out.jsonl").read_text())  # no id left in the clear


def test_prompts_only_user_and_flattened_exports(database_url: str, grown: Grown, tmp_path: Path) -> None:
    [tree] = export(database_url, tmp_path, "--prompts-only", "--export-labels")
    assert "replies" not in tree["prompt"] and tree["prompt"]["labels"]["quality"]["value"] == 1.0

    # A user's messages, as single messages (no replies key).
    [message] = export(database_url, tmp_path, "--user", grown.users["dave"], "--export-labels")
    assert message["message_id"] == grown.best_id and message["text"] == BEST and "replies" not in message
    assert list(message) == [k for k in NODE_KEYS if k in message]
    assert message["labels"]["quality"] == {"value": 0.65, "count": 2}

    # Delete the other answer: gone from the trees, listed alone by --deleted-only.
    _update(database_url, grown.other_id, deleted=True)
    [tree] = export(database_url, tmp_path)
    assert [r["message_id"] for r in tree["prompt"]["replies"]] == [grown.best_id]
    [tree] = export(database_url, tmp_path, "--include-deleted")
    assert [r["deleted"] for r in tree["prompt"]["replies"]] == [False, True]
    [deleted] = export(database_url, tmp_path, "--deleted-only")
    assert deleted["message_id"] == grown.other_id and deleted["deleted"] is True and "replies" not in deleted

    # A rejected message: only --include-spam and --spam-only show it (review_result false after 3 reviews).
    _update(database_url, grown.best_id, review_result=False, review_count=3)
    [tree] = export(database_url, tmp_path, "--include-deleted")
    assert [r["message_id"] for r in tree["prompt"]["replies"]] == [grown.other_id]
    [spam] = export(database_url, tmp_path, "--spam-only")
    assert spam["message_id"] == grown.best_id and spam["review_result"] is False
    _update(database_url, grown.best_id, review_count=2)
    [spam] = export(database_url, tmp_path, "--spam-only")
    assert "review_result" not in spam  # upstream shows a negative result only after three reviews


def _update(database_url: str, message_id: str, **values: Any) -> None:
    import uuid

    from sqlalchemy import create_engine, update

    from oasst.db.session import sync_url

    engine = create_engine(sync_url(database_url))
    with engine.begin() as conn:
        conn.execute(update(Message).where(Message.id == uuid.UUID(message_id)).values(**values))
    engine.dispose()


@pytest.fixture
def factory(database_url: str, grown: Grown) -> Iterator[Factory]:
    yield from make_factory(database_url)


def add_tree(factory: Factory, database_url: str, *, state: str = "ready_for_export", **values: Any) -> str:
    """A prompt with one accepted answer, straight into the database."""
    client = factory.client_by_key(ADMIN_KEY)
    author = factory.user(client)
    root = factory.message(client, author, **values)
    factory.message(client, author, root, **{k: v for k, v in values.items() if k != "created_date"})
    set_tree(database_url, str(root.id), state=state)
    return str(root.id)


def test_tree_filters(database_url: str, grown: Grown, factory: Factory, tmp_path: Path) -> None:
    old = utcnow() - timedelta(days=400)
    german = add_tree(factory, database_url, lang="de", created_date=old)
    growing = add_tree(factory, database_url, state="growing")
    synthetic = add_tree(factory, database_url, synthetic=True, model_name="m1")

    def ids(*args: str) -> list[str]:
        return [
            line.get("message_tree_id", line.get("message_id"))
            for line in export(database_url, tmp_path, *args)
        ]

    # Default: ready_for_export trees without synthetic messages, oldest prompt first.
    assert ids() == [german, grown.root_id]
    assert ids("--limit", "1") == [german]
    assert ids("--lang", "de") == [german]
    assert ids("--state", "growing") == [growing]
    assert set(ids("--state", "all")) == {german, grown.root_id, growing}
    assert ids("--include-synthetic") == [german, synthetic, grown.root_id]
    synthetic_messages = export(database_url, tmp_path, "--synthetic-only")  # a message list
    assert [m.get("parent_id") for m in synthetic_messages] == [None, synthetic]
    assert all(m["synthetic"] and m["model_name"] == "m1" for m in synthetic_messages)
    cutoff = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    assert ids("--to", cutoff) == [german]
    assert ids("--from", cutoff) == [grown.root_id]
    assert ids("--from", old.isoformat(), "--to", (old + timedelta(seconds=1)).isoformat()) == [german]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--state", "bogus"], "unknown tree state 'bogus'; choose one of: all, initial_prompt_review"),
        (["--lang", "english!"], "'english!' is not a language code"),
        (["--from", "yesterday"], "'yesterday' is not an ISO date"),
        (["--to", "2024-13-01"], "'2024-13-01' is not an ISO date"),
        (["--user", "nobody"], "'nobody' is not a user id"),
        (
            ["--user", "3f0b1c3e-52a2-4c52-9a6b-47b7f7a2e0f4", "--state", "all"],
            "cannot be combined with --user",
        ),
        (["--limit", "0"], "--limit"),
    ],
)
def test_bad_options_are_clear_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(f"sqlite:///{tmp_path / 'none.db'}", "export", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split()), result.output
    assert not (tmp_path / "none.db").exists()  # refused before touching any database
