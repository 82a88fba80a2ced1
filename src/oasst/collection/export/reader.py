"""Reading OASST jsonl and jsonl.gz files: nested trees, single messages and Hugging Face flat rows.

Every tree comes out as its messages (root first for nested trees) with the line each was read from; a line
that cannot be read comes out as a failure naming the file and line. A broken line among the consecutive
rows of a flat tree sinks that tree.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import TypeAdapter, ValidationError

from oasst.collection.export.schemas import (
    ExportMessageEventEmoji,
    ExportMessageEventRanking,
    ExportMessageEventRating,
    ExportMessageNode,
    ExportMessageTree,
)

Event = ExportMessageEventEmoji | ExportMessageEventRating | ExportMessageEventRanking
# Events import can store; report and score events have no table and are ignored.
EVENT_TYPES: dict[str, TypeAdapter[Any]] = {
    "emoji": TypeAdapter(ExportMessageEventEmoji),
    "rating": TypeAdapter(ExportMessageEventRating),
    "ranking": TypeAdapter(ExportMessageEventRanking),
}


@dataclass
class Failure:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class ReadNode:
    line: int
    node: ExportMessageNode
    parent: str | None
    events: list[Event] = field(default_factory=list)


@dataclass
class ReadTree:
    """A tree as read: its messages with the line each came from, and the state the file gives it."""

    file: str
    line: int
    state: str | None
    nodes: list[ReadNode]


class _Malformed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(error: ValidationError, prefix: str = "") -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in (*([prefix] if prefix else []), *first["loc"]))
    more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"


def _read_node(line: int, node: ExportMessageNode, parent: str | None) -> ReadNode:
    """The node with its storable events checked (a bad event makes the line malformed)."""
    events: list[Event] = []
    for kind, entries in (node.events or {}).items():
        adapter = EVENT_TYPES.get(kind)
        if adapter is None:
            continue
        for i, entry in enumerate(entries):
            try:
                events.append(adapter.validate_python({"type": kind, **entry}))
            except ValidationError as error:
                raise _Malformed(_reason(error, f"message {node.message_id}: events.{kind}.{i}")) from None
    return ReadNode(line, node, parent, events)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class _FlatGroup:
    """Consecutive single-message lines of one tree (the Hugging Face layout, or our message lists)."""

    def __init__(self, file: str, line: int, key: str | None) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.state: str | None = None
        self.nodes: list[ReadNode] = []
        self.ids: set[str] = set()
        self.failure: Failure | None = None

    def accepts(self, key: str | None, parent: str | None) -> bool:
        """Rows carry their tree id (Hugging Face), or join the tree that holds their parent."""
        if key is not None:
            return key == self.key
        return parent is not None and parent in self.ids

    def sink(self, failure: Failure) -> None:
        if self.failure is None:
            self.failure = failure

    def add(self, line: int, node: ExportMessageNode) -> None:
        self.nodes.append(_read_node(line, node, node.parent_id))
        if node.tree_state is not None and (node.parent_id is None or self.state is None):
            self.state = node.tree_state
        # A single message may carry nested replies of its own.
        stack = [(node.message_id, reply) for reply in reversed(node.replies or [])]
        while stack:
            parent, reply = stack.pop()
            self.nodes.append(_read_node(line, reply, parent))
            self.ids.add(reply.message_id)
            stack.extend((reply.message_id, r) for r in reversed(reply.replies or []))

    def finish(self) -> ReadTree | Failure:
        if self.failure is not None:
            return self.failure
        return ReadTree(self.file, self.line, self.state, self.nodes)


class Reader:
    """Reads one jsonl or jsonl.gz file (gzip is recognised by its magic bytes) in file order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self._raw: IO[bytes] | None = None
        self._done = False

    @property
    def position(self) -> int:
        """Bytes of the (compressed) file read so far."""
        if self._done:
            return self.path.stat().st_size
        return self._raw.tell() if self._raw is not None and not self._raw.closed else 0

    @staticmethod
    def _lines(raw: IO[bytes]) -> Iterator[bytes]:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        yield from gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw

    def __iter__(self) -> Iterator[ReadTree | Failure]:
        group: _FlatGroup | None = None
        lineno = 0
        with self.path.open("rb") as raw:
            self._raw = raw
            try:
                for lineno, line in enumerate(self._lines(raw), 1):
                    if line.strip():
                        done, group = self._line(lineno, line, group)
                        yield from done
            except (OSError, EOFError, zlib.error) as error:
                failure = Failure(self.name, lineno + 1, f"unreadable file: {error}")
                if group is None:
                    yield failure
                else:
                    group.sink(failure)
        self._done = True
        if group is not None:
            yield group.finish()

    def _line(
        self, lineno: int, line: bytes, group: _FlatGroup | None
    ) -> tuple[list[ReadTree | Failure], _FlatGroup | None]:
        """What a line completes (trees or failures) and the flat group still open after it."""
        try:
            obj = json.loads(line)
        except ValueError as error:
            return self._broken(group, Failure(self.name, lineno, f"invalid JSON: {error}")), group
        if not isinstance(obj, dict):
            return self._broken(group, Failure(self.name, lineno, "not a JSON object")), group
        if "message_id" in obj:
            return self._message(lineno, obj, group)
        done: list[ReadTree | Failure] = [group.finish()] if group is not None else []
        if "message_tree_id" not in obj:
            reason = "neither a message tree (message_tree_id) nor a message (message_id)"
            done.append(Failure(self.name, lineno, reason))
            return done, None
        done.append(self._nested(lineno, obj))
        return done, None

    @staticmethod
    def _broken(group: _FlatGroup | None, failure: Failure) -> list[ReadTree | Failure]:
        """A line that cannot be read sinks the flat tree it sits in (if one is open), else stands alone."""
        if group is None:
            return [failure]
        group.sink(failure)
        return []

    def _message(
        self, lineno: int, obj: dict[str, Any], group: _FlatGroup | None
    ) -> tuple[list[ReadTree | Failure], _FlatGroup | None]:
        key, parent = _text(obj.get("message_tree_id")), _text(obj.get("parent_id"))
        message_id = _text(obj["message_id"]) or ""
        done: list[ReadTree | Failure] = []
        if group is None or not group.accepts(key, parent):
            if group is not None:
                done.append(group.finish())
            group = _FlatGroup(self.name, lineno, key if key is not None else message_id)
        group.ids.add(message_id)
        try:
            group.add(lineno, ExportMessageNode.model_validate(obj))
        except ValidationError as error:
            group.sink(Failure(self.name, lineno, _reason(error)))
        except _Malformed as error:
            group.sink(Failure(self.name, lineno, error.reason))
        return done, group

    def _nested(self, lineno: int, obj: dict[str, Any]) -> ReadTree | Failure:
        try:
            tree = ExportMessageTree.model_validate(obj)
        except ValidationError as error:
            return Failure(self.name, lineno, _reason(error))
        if tree.prompt is None:
            return Failure(self.name, lineno, "tree without a prompt")
        nodes: list[ReadNode] = []
        stack: list[tuple[str | None, ExportMessageNode]] = [(None, tree.prompt)]
        try:
            while stack:
                parent, node = stack.pop()
                if node.parent_id is not None and node.parent_id != parent:
                    where = "the prompt" if parent is None else f"a reply to {parent}"
                    raise _Malformed(
                        f"message {node.message_id}: parent_id {node.parent_id} but it is {where}"
                    )
                nodes.append(_read_node(lineno, node, parent))
                stack.extend((node.message_id, reply) for reply in reversed(node.replies or []))
        except _Malformed as error:
            return Failure(self.name, lineno, error.reason)
        return ReadTree(self.name, lineno, tree.tree_state, nodes)
