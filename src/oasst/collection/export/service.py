"""OASST jsonl export (streamed in batches of trees, memory flat) and bulk import of such files.

Export follows upstream `export.py` (spec 6.4), with two fixes: an anonymized export hashes the tree's own
`message_tree_id` too, and every writer leaves out null fields. Import reads our exports and the public
layouts (nested trees, single messages, Hugging Face flat rows) into trees of the fixed import client.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Full, Queue
from typing import Any, Protocol, TextIO

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from oasst.collection.export import repository
from oasst.collection.export.reader import Failure, Reader, ReadNode, ReadTree
from oasst.collection.export.repository import MessageFilter, Rendering, TreeFilter, TreeRow
from oasst.collection.export.schemas import (
    ExportMessageEventEmoji,
    ExportMessageEventRanking,
    ExportMessageNode,
)
from oasst.db.base import utcnow
from oasst.db.models import (
    Message,
    MessageEmoji,
    MessageReaction,
    MessageTreeState,
    TextLabels,
    User,
)
from oasst.protocol.collection import TextLabel, TreeState

# The well-known client that owns imported messages and their users (spec 2.1).
IMPORT_CLIENT_ID = uuid.UUID("bd8fde8b-1d8e-4e9a-9966-e96d000f8363")
IMPORT_AUTH_METHOD = "system"
IMPORT_USERNAME = "import"
LABEL_NAMES = tuple(label.value for label in TextLabel)
LABEL_ORDER = {name: i for i, name in enumerate(LABEL_NAMES)}
LANG_PATTERN = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,4})?$")
STATE_ALL = "all"
# Import --state choices: keep what the file says (ready_for_export, else backlog), or force one.
IMPORT_STATE_FILE = "file"
IMPORT_STATES = (IMPORT_STATE_FILE, TreeState.ready_for_export.value, TreeState.backlog_ranking.value)
ROLES = frozenset({"prompter", "assistant"})


# --- option parsing shared by the CLI ----------------------------------------------------------------------


def parse_state(value: str | None) -> str | None:
    """A tree state name, `all` (None: no filter), or ValueError listing the valid names."""
    if value is None or value == STATE_ALL:
        return None
    try:
        return TreeState(value).value
    except ValueError:
        names = ", ".join([STATE_ALL, *(s.value for s in TreeState)])
        raise ValueError(f"unknown tree state {value!r}; choose one of: {names}") from None


def parse_lang(value: str | None) -> str | None:
    if value is None:
        return None
    if not LANG_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a language code (2 or 3 letters, optionally a region: en, pt-BR)")
    return value


def parse_date(value: str | None) -> datetime | None:
    """An ISO date or datetime; a naive one is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM])"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_user_id(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a user id (the backend's UUID of the user)") from None


# --- export ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportOptions:
    """What to export. The tri-states are None (no filter), True (only) or False (leave out)."""

    deleted: bool | None = False
    review_result: bool | None = True
    synthetic: bool | None = False
    user_id: uuid.UUID | None = None
    state: str | None = TreeState.ready_for_export.value
    lang: str | None = None
    prompts_only: bool = False
    labels: bool = False
    events: bool = False
    limit: int | None = None
    anonymizer_seed: int | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    batch_size: int = 500

    @classmethod
    def from_flags(
        cls,
        *,
        include_deleted: bool = False,
        deleted_only: bool = False,
        include_spam: bool = False,
        spam_only: bool = False,
        include_synthetic: bool = False,
        synthetic_only: bool = False,
        **values: Any,
    ) -> ExportOptions:
        """Options from upstream's switches: `--x-only` wins over `--include-x`."""
        return cls(
            deleted=True if deleted_only else None if include_deleted else False,
            review_result=False if spam_only else None if include_spam else True,
            synthetic=True if synthetic_only else None if include_synthetic else False,
            **values,
        )

    @property
    def as_messages(self) -> bool:
        """A message list instead of trees: per user, or with only deleted, spam or synthetic messages."""
        return (
            self.user_id is not None
            or self.deleted is True
            or self.review_result is False
            or self.synthetic is True
        )


class ExportProgress(Protocol):
    def start(self, total: int, unit: str) -> None: ...

    def advance(self, done: int) -> None: ...

    def warn(self, message: str) -> None: ...


@dataclass
class ExportSummary:
    trees: int = 0
    messages: int = 0
    skipped: int = 0  # trees whose prompt the message filters left out


class Anonymizer:
    """Upstream's ids: sha256 hex of f"{collection}:{id}{seed}" (no cache, so memory stays flat)."""

    def __init__(self, seed: int) -> None:
        self.seed = str(seed)

    def __call__(self, collection: str, key: str | None) -> str | None:
        if key is None:
            return None
        return hashlib.sha256(f"{collection}:{key}{self.seed}".encode()).hexdigest()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _rank_key(item: tuple[int | None, str]) -> float:
    return math.inf if item[0] is None else item[0]


class _Writer:
    """Nests the nodes the database renders into trees, adds labels and events, and writes JSON lines.

    Rows are `Rendering.message_columns()`; keys join rows together and become the written ids.
    """

    def __init__(self, rendering: Rendering, options: ExportOptions) -> None:
        self.rendering = rendering
        self.options = options
        self.anonymize = Anonymizer(options.anonymizer_seed) if options.anonymizer_seed is not None else None

    def node(self, row: Any) -> str:
        """The node up to `emojis`: its ids (formatted, maybe anonymized), then what the database rendered."""
        key, parent, user, rest = row[0], row[1], row[2], row[5]
        if not self.rendering.postgres:
            fmt = self.rendering.format_key
            key, parent, user = fmt(key), fmt(parent), fmt(user)
        if self.anonymize is not None:
            key = self.anonymize("message", key)
            parent = self.anonymize("message", parent)
            user = self.anonymize("user", user)
        head = f'{{"message_id":"{key}"'
        if parent is not None:
            head += f',"parent_id":"{parent}"'
        if user is not None:
            head += f',"user_id":"{user}"'
        return head + rest

    def tail(self, row: Any) -> str:
        """What follows `replies` in a node: labels (with --export-labels, {} if none) and events (if any)."""
        tail = f',"labels":{self._labels(row[6])}' if self.options.labels else ""
        if self.options.events and (row[7] is not None or row[8] is not None):
            tail += f',"events":{self._events(row[7], row[8])}'
        return tail

    @staticmethod
    def _labels(rows: str | None) -> str:
        """Per TextLabel, in its order: the mean over the message's label rows that have it, and their count.

        Only numbers count. The mean of equal values is that value exactly (a plain average of three 0.1
        is not 0.1), so that imported means come back unchanged.
        """
        if rows is None:
            return "{}"
        values: dict[str, list[float]] = {}
        for labels in json.loads(rows):
            for name, value in labels.items():
                if value.__class__ is float or value.__class__ is int:  # numbers, not booleans
                    values.setdefault(name, []).append(value)
        members = []
        for name in sorted(values.keys() & LABEL_ORDER.keys(), key=LABEL_ORDER.__getitem__):
            found = values[name]
            first = found[0]
            mean = float(first) if all(v == first for v in found) else math.fsum(found) / len(found)
            members.append(f'"{name}":{{"value":{mean!r},"count":{len(found)}}}')
        return "{" + ",".join(members) + "}"

    def _events(self, emojis: str | None, reactions: str | None) -> str:
        """The message's emojis, ratings and rankings, oldest first."""
        events: dict[str, list[Any]] = {}
        user_id = self._user_id
        for user, emoji in json.loads(emojis) if emojis else ():
            events.setdefault("emoji", []).append({"type": "emoji", "user_id": user_id(user), "emoji": emoji})
        for user, payload_type, payload in json.loads(reactions) if reactions else ():
            event = self._reaction(user_id(user), payload_type, payload or {})
            if event is not None:
                events.setdefault(event["type"], []).append(event)
        return _dumps(events)

    def _user_id(self, key: str | None) -> str | None:
        user = self.rendering.format_key(key)
        return self.anonymize("user", user) if self.anonymize else user

    def _reaction(
        self, user: str | None, payload_type: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        if payload_type == "RatingReactionPayload":
            return {"type": "rating", "user_id": user, "rating": payload.get("rating")}
        if payload_type != "RankingReactionPayload":
            return None
        ranked: list[Any] = [str(i) for i in payload.get("ranked_message_ids", [])]
        parent, tree = payload.get("ranking_parent_id"), payload.get("message_tree_id")
        if self.anonymize:
            ranked = [self.anonymize("message", i) for i in ranked]
            parent, tree = self.anonymize("message", parent), self.anonymize("message_tree", tree)
        event: dict[str, Any] = {"type": "ranking", "user_id": user, "ranking": payload.get("ranking", [])}
        event["ranked_message_ids"] = ranked
        if parent is not None:
            event["ranking_parent_id"] = parent
        if tree is not None:
            event["message_tree_id"] = tree
        if payload.get("not_rankable"):
            event["not_rankable"] = True
        return {k: v for k, v in event.items() if v is not None}

    def message(self, row: Any) -> str:
        node, tail = self.node(row), self.tail(row)
        return f"{node[:-1]}{tail}}}\n" if tail else f"{node}\n"

    def tree(self, tree: TreeRow, rows: Sequence[Any]) -> str | None:
        """The tree's line, or None when no root is left after the message filters."""
        nodes: dict[str, tuple[str, str]] = {}
        children: dict[str, list[tuple[int | None, str]]] = {}
        root: str | None = None
        for row in rows:
            key, parent, rank = row[0], row[1], row[3]
            nodes[key] = (self.node(row), self.tail(row))
            if parent is None:
                root = root or key
            else:
                children.setdefault(parent, []).append((rank, key))
        if root is None:
            return None
        parts: list[str] = []
        if self.options.prompts_only:
            node, tail = nodes[root]
            parts.append(f"{node[:-1]}{tail}}}" if tail else node)
        else:
            # Depth first with an explicit stack (no recursion limit): open a node, its replies, close it.
            stack: list[tuple[str, bool, bool]] = [(root, False, False)]
            while stack:
                key, closing, comma = stack.pop()
                node, tail = nodes[key]
                if closing:
                    parts.append(f"]{tail}}}")
                    continue
                parts.append(f'{"," if comma else ""}{node[:-1]},"replies":[')
                stack.append((key, True, False))
                kids = children.get(key)
                if kids:
                    if len(kids) > 1:
                        kids.sort(key=_rank_key)  # by rank, nulls last, otherwise oldest first
                    stack.extend((kid, False, i > 0) for i, (_, kid) in reversed(list(enumerate(kids))))
        tree_id = str(tree.tree_id)
        if self.anonymize:
            tree_id = self.anonymize("message_tree", tree_id)  # type: ignore[assignment]
        return (
            f'{{"message_tree_id":"{tree_id}","tree_state":{_dumps(tree.state)},"prompt":{"".join(parts)}}}\n'
        )


@dataclass
class _Batch:
    """What the database gives for a batch of trees (or of a user's messages)."""

    trees: list[TreeRow]
    rows: Sequence[Any]


_DONE = object()


def _read_ahead(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """`items`, produced by a thread at most `depth` ahead of the caller.

    The thread waits on the database (without the GIL) while the caller turns the previous batch into JSON,
    so both cores work; the bounded queue keeps memory flat.
    """
    queue: Queue[tuple[Any, BaseException | None]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any, error: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                queue.put((item, error), timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the caller, which raises it
            put(_DONE, error)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # here, in the thread that runs it: its connections close now

    thread = threading.Thread(target=produce, name="oasst-export-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = queue.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _read(engine: Any, options: ExportOptions, rendering: Rendering) -> Iterator[int | _Batch]:
    """The total (trees, or a user's messages) first, then the batches, all from one snapshot.

    On PostgreSQL a second connection shares the snapshot and reads every other batch, so that two server
    processes render messages at once.
    """
    tree_filter, message_filter = _filters(options)
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            # One snapshot for the whole file, however long it takes (SQLite's BEGIN gives one too).
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        if options.user_id is not None:
            yield from _read_user(conn, options, rendering, message_filter)
            return
        total = repository.count_trees(conn, tree_filter)
        yield total if options.limit is None else min(total, options.limit)
        if postgres:
            repository.no_jit(conn)
        batches = repository.tree_batches(conn, tree_filter, options.limit, options.batch_size)
        read = _BatchReader(conn, rendering, options, message_filter)
        if not postgres:
            yield from (read(trees) for trees in batches)
            return
        snapshot = repository.export_snapshot(conn)
        with engine.connect() as other, ThreadPoolExecutor(1, "oasst-export-lane") as lane:
            other.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            repository.import_snapshot(other, snapshot)
            repository.no_jit(other)
            read_other = _BatchReader(other, rendering, options, message_filter)
            pending: Future[_Batch] | None = None
            for trees in batches:
                if pending is None:
                    pending = lane.submit(read_other, trees)
                    continue
                mine = read(trees)
                yield pending.result()
                yield mine
                pending = None
            if pending is not None:
                yield pending.result()


class _BatchReader:
    """Reads a batch of trees on one connection: messages, then labels and events when asked for."""

    def __init__(
        self, conn: Connection, rendering: Rendering, options: ExportOptions, message_filter: MessageFilter
    ) -> None:
        self.messages = repository.TreeMessages(
            conn, rendering, message_filter, labels=options.labels, events=options.events
        )

    def __call__(self, trees: list[TreeRow]) -> _Batch:
        return _Batch(trees, self.messages([t.tree_id for t in trees]))


def _read_user(
    conn: Connection, options: ExportOptions, rendering: Rendering, message_filter: MessageFilter
) -> Iterator[int | _Batch]:
    assert options.user_id is not None
    where: dict[str, Any] = {
        "synthetic": options.synthetic,
        "lang": options.lang,
        "created_from": options.created_from,
        "created_to": options.created_to,
    }
    total = repository.count_user_messages(conn, options.user_id, message_filter, **where)
    yield total if options.limit is None else min(total, options.limit)
    remaining = options.limit
    after = None
    size = options.batch_size * 10
    while remaining is None or remaining > 0:
        rows, after = repository.user_messages(
            conn,
            rendering,
            options.user_id,
            message_filter,
            after=after,
            size=size if remaining is None else min(size, remaining),
            labels=options.labels,
            events=options.events,
            **where,
        )
        if not rows:
            return
        if remaining is not None:
            remaining -= len(rows)
        yield _Batch([], rows)


def _filters(options: ExportOptions) -> tuple[TreeFilter, MessageFilter]:
    trees = TreeFilter(
        state=options.state,
        lang=options.lang,
        synthetic=options.synthetic,
        created_from=options.created_from,
        created_to=options.created_to,
    )
    messages = MessageFilter(
        deleted=options.deleted, review_result=options.review_result, prompts_only=options.prompts_only
    )
    return trees, messages


def export(database_url: str, options: ExportOptions, out: TextIO, progress: ExportProgress) -> ExportSummary:
    """Write the selected trees (or messages) to `out` as jsonl, a batch of trees at a time."""
    engine = repository.blocking_engine(database_url, connections=2)
    try:
        with _bulk_gc():
            writer = _Writer(Rendering(engine.dialect.name), options)
            batches = _read_ahead(_read(engine, options, writer.rendering))
            total = next(batches)
            progress.start(total, "messages" if options.user_id is not None else "trees")
            summary = ExportSummary()
            for batch in batches:
                if options.user_id is not None:
                    out.write("".join(writer.message(row) for row in batch.rows))
                    summary.messages += len(batch.rows)
                    progress.advance(len(batch.rows))
                    continue
                out.write(_write_trees(writer, batch, summary, progress))
                progress.advance(len(batch.trees))
            return summary
    finally:
        engine.dispose()


def _write_trees(writer: _Writer, batch: _Batch, summary: ExportSummary, progress: ExportProgress) -> str:
    """The lines of a batch of trees: one per tree, or one per message for the flattened exports."""
    by_tree: dict[str, list[Any]] = {}
    for row in batch.rows:
        by_tree.setdefault(row[4], []).append(row)
    key_of = writer.rendering.key_of
    lines: list[str] = []
    for tree in batch.trees:
        tree_rows = by_tree.get(key_of(tree.tree_id))
        if not tree_rows:
            continue  # every message filtered out: nothing to write (as upstream)
        if writer.options.as_messages:
            lines.extend(writer.message(row) for row in tree_rows)
        else:
            line = writer.tree(tree, tree_rows)
            if line is None:
                summary.skipped += 1
                progress.warn(f"tree {tree.tree_id}: its prompt is filtered out; tree skipped")
                continue
            lines.append(line)
        summary.trees += 1
        summary.messages += len(tree_rows)
    return "".join(lines)


# --- import ------------------------------------------------------------------------------------------------

MESSAGE_COLUMNS = (
    "id",
    "parent_id",
    "message_tree_id",
    "task_id",
    "user_id",
    "role",
    "api_client_id",
    "frontend_message_id",
    "created_date",
    "text",
    "lang",
    "depth",
    "children_count",
    "deleted",
    "review_count",
    "review_result",
    "ranking_count",
    "rank",
    "synthetic",
    "edited",
    "model_name",
    "emojis",
)
LABEL_COLUMNS = ("id", "user_id", "created_date", "api_client_id", "text", "message_id", "labels", "task_id")
EMOJI_COLUMNS = ("message_id", "user_id", "emoji", "created_date")
REACTION_COLUMNS = (
    "task_id",
    "user_id",
    "created_date",
    "payload_type",
    "payload",
    "api_client_id",
    "message_id",
)
TREE_COLUMNS = (
    "message_tree_id",
    "goal_tree_size",
    "max_depth",
    "max_children_count",
    "state",
    "active",
    "origin",
    "won_prompt_lottery_date",
    "lang",
)
USER_COLUMNS = (
    "id",
    "username",
    "auth_method",
    "display_name",
    "created_date",
    "api_client_id",
    "enabled",
    "notes",
    "deleted",
    "show_on_leaderboard",
    "streak_last_day_date",
    "streak_days",
    "last_activity_date",
    "tos_acceptance_date",
)
_USER_ID = 1  # position of user_id in LABEL_COLUMNS, EMOJI_COLUMNS and REACTION_COLUMNS
_MESSAGE_USER_ID = MESSAGE_COLUMNS.index("user_id")
_RANKING_COUNT = MESSAGE_COLUMNS.index("ranking_count")


@dataclass(frozen=True)
class ImportOptions:
    origin: str | None = None
    model_name: str | None = None
    state: str = IMPORT_STATE_FILE
    num_activate: int = 0
    max_count: int | None = None
    dry_run: bool = False
    batch_size: int = 500


class ImportProgress(Protocol):
    def start_file(self, path: Path, size: int) -> None: ...

    def advance(self, position: int, trees: int) -> None: ...

    def error(self, message: str) -> None: ...


@dataclass
class ImportSummary:
    trees: int = 0
    messages: int = 0
    skipped: int = 0
    failed: int = 0


def message_uuid(value: str) -> uuid.UUID:
    """The id itself when it is a UUID; otherwise (an anonymized export) a UUID derived from it."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.uuid5(IMPORT_CLIENT_ID, value)


@dataclass
class _Prepared:
    """One tree as rows in column order, waiting for its batch; user ids are still the file's keys."""

    source: ReadTree
    root_id: uuid.UUID
    file_state: str | None
    lang: str
    message_ids: list[uuid.UUID]
    users: set[str | None]
    messages: list[list[Any]]
    message_users: list[str | None]
    labels: list[list[Any]]
    emojis: list[list[Any]]
    emoji_users: list[str | None]
    reactions: list[list[Any]]
    reaction_users: list[str | None]


@dataclass
class _Outcome:
    trees: int = 0
    messages: int = 0
    skipped: int = 0
    activated: int = 0
    failures: list[Failure] = field(default_factory=list)
    users: dict[str | None, Any] = field(default_factory=dict)


class _Importer:
    """One import: trees read, checked, turned into rows (in the driver's encoding) and stored in batches."""

    def __init__(self, conn: Connection, options: ImportOptions, progress: ImportProgress) -> None:
        self.conn = conn
        self.bulk = bulk = repository.Bulk(conn)
        self.options = options
        self.progress = progress
        self.summary = ImportSummary()
        self.users: dict[str | None, Any] = {}  # the file's user ids -> stored user ids, encoded
        self.activated = 0
        self.now = utcnow()
        self.stored_now = bulk.encode_date(self.now)
        self.client = bulk.encode_id(IMPORT_CLIENT_ID)
        self._tick = 0
        # Ids of new label and reaction rows: UUIDv7 (time first), counting up from a random point, so that
        # they append to the primary key's index instead of landing all over it.
        self._next_id = (int(self.now.timestamp() * 1000) << 80) | (7 << 76) | (secrets.randbits(12) << 64)
        self._next_id |= (0b10 << 62) | secrets.randbits(40)
        self._outer = conn.begin() if options.dry_run else None

    def _unit(self) -> Any:
        """A transaction, or a savepoint inside the one transaction that a dry run rolls back."""
        return self.conn.begin_nested() if self.options.dry_run else self.conn.begin()

    def setup(self) -> None:
        with self._unit():
            repository.ensure_api_client(
                self.conn,
                {
                    "id": IMPORT_CLIENT_ID,
                    # A random hash that no key has: the client owns imported rows and never calls the API.
                    "api_key_hash": secrets.token_hex(32),
                    "description": "API client used for importing data",
                    "admin_email": None,
                    "enabled": True,
                    "trusted": False,
                    "frontend_type": "import",
                },
            )
            users, new = self._resolve_users({None})
            self.bulk.insert(User, USER_COLUMNS, new)
        self.users.update(users)

    def finish(self) -> None:
        if self._outer is not None:
            self._outer.rollback()

    @property
    def full(self) -> bool:
        return self.options.max_count is not None and self.summary.trees >= self.options.max_count

    def _stamp(self) -> Any:
        """Creation times of imported events, a microsecond apart so that they export in file order."""
        self._tick += 1
        return self.bulk.encode_date(self.now + timedelta(microseconds=self._tick))

    def _new_id(self) -> str:
        self._next_id += 1
        return self.bulk.encode_id_int(self._next_id)

    def run_file(self, path: Path, collect: Callable[[], object]) -> None:
        reader = Reader(path)
        origin = self.options.origin or path.name
        self.progress.start_file(path, path.stat().st_size)
        batch: list[_Prepared] = []
        for item in reader:
            prepared = item if isinstance(item, Failure) else self._prepare(item)
            if isinstance(prepared, Failure):
                self._fail(prepared)
                continue
            batch.append(prepared)
            room = None if self.options.max_count is None else self.options.max_count - self.summary.trees
            if len(batch) >= self.options.batch_size or (room is not None and len(batch) >= room):
                self._flush(batch, origin)
                batch = []
                collect()
                self.progress.advance(reader.position, self.summary.trees)
                if self.full:
                    return
        if batch:
            self._flush(batch, origin)
        self.progress.advance(reader.position, self.summary.trees)

    def _fail(self, failure: Failure) -> None:
        self.summary.failed += 1
        self.progress.error(f"{failure} (tree not imported)")

    # -- one tree into rows ----------------------------------------------------------------------------------

    def _prepare(self, tree: ReadTree) -> _Prepared | Failure:
        """Check the tree's shape (one root, known parents, no cycles) and build its rows."""
        roots = [n for n in tree.nodes if n.parent is None]
        if len(roots) != 1:
            what = "no root message" if not roots else f"{len(roots)} root messages"
            line = tree.line if not roots else roots[1].line
            return Failure(tree.file, line, f"tree has {what} (the rows of one tree must be consecutive)")
        children: dict[str, list[ReadNode]] = {}
        known: set[str] = set()
        for n in tree.nodes:
            message_id = n.node.message_id
            if message_id in known:
                return Failure(tree.file, n.line, f"message {message_id} appears twice")
            known.add(message_id)
            if n.node.role not in ROLES:
                return Failure(tree.file, n.line, f"message {message_id}: role must be prompter or assistant")
            if n.parent is not None:
                children.setdefault(n.parent, []).append(n)
        for n in tree.nodes:
            if n.parent is not None and n.parent not in known:
                return Failure(
                    tree.file, n.line, f"message {n.node.message_id}: parent {n.parent} is not in the tree"
                )
        depth = {roots[0].node.message_id: 0}
        order = [roots[0]]
        for current in order:  # breadth first; the list grows while we walk it
            level = depth[current.node.message_id] + 1
            for kid in children.get(current.node.message_id, ()):
                depth[kid.node.message_id] = level
                order.append(kid)
        if len(order) != len(tree.nodes):
            stray = next(n for n in tree.nodes if n.node.message_id not in depth)
            reason = f"message {stray.node.message_id} is not connected to the root"
            return Failure(tree.file, stray.line, reason)
        return self._rows(tree, order, children, depth)

    def _rows(
        self,
        tree: ReadTree,
        order: list[ReadNode],
        children: dict[str, list[ReadNode]],
        depth: dict[str, int],
    ) -> _Prepared:
        bulk = self.bulk
        uuids = {n.node.message_id: message_uuid(n.node.message_id) for n in order}
        ids = {key: bulk.encode_id(value) for key, value in uuids.items()}
        root = order[0].node
        root_id = ids[root.message_id]
        prepared = _Prepared(
            source=tree,
            root_id=uuids[root.message_id],
            file_state=tree.state,
            lang=root.lang or "en",
            message_ids=list(uuids.values()),
            users={None},
            messages=[],
            message_users=[],
            labels=[],
            emojis=[],
            emoji_users=[],
            reactions=[],
            reaction_users=[],
        )
        ranked: dict[str, int] = {}
        model_name = self.options.model_name
        client = self.client
        for n in order:
            node = n.node
            message_id = ids[node.message_id]
            created = node.created_date or self.now
            prepared.users.add(node.user_id)
            prepared.message_users.append(node.user_id)
            prepared.messages.append(
                [
                    message_id,
                    None if n.parent is None else ids[n.parent],
                    root_id,
                    None,
                    None,  # the user, once the batch has resolved the keys
                    node.role,
                    client,
                    node.message_id,
                    bulk.encode_date(created if created.tzinfo else created.replace(tzinfo=UTC)),
                    node.text,
                    node.lang or "en",
                    depth[node.message_id],
                    len(children.get(node.message_id, ())),
                    bool(node.deleted),
                    node.review_count or 0,
                    # Upstream marks imported messages accepted; a result the file gives (even null) is kept.
                    node.review_result if "review_result" in node.model_fields_set else True,
                    0,
                    node.rank,
                    True if node.synthetic is None else node.synthetic,
                    False,
                    node.model_name or model_name,
                    bulk.encode_json(node.emojis),
                ]
            )
            if node.labels:
                prepared.labels.extend(self._label_rows(message_id, node))
            if n.events:
                self._events(prepared, n, uuids[node.message_id], ranked)
        if ranked:
            for row in prepared.messages:
                row[_RANKING_COUNT] = ranked.get(row[0], 0)
        return prepared

    def _events(self, prepared: _Prepared, n: ReadNode, message: uuid.UUID, ranked: dict[str, int]) -> None:
        bulk = self.bulk
        message_id = bulk.encode_id(message)
        emojis: set[tuple[str | None, str]] = set()
        for event in n.events:
            prepared.users.add(event.user_id)
            if isinstance(event, ExportMessageEventEmoji):
                if (event.user_id, event.emoji) in emojis:
                    continue
                emojis.add((event.user_id, event.emoji))
                prepared.emojis.append([message_id, None, event.emoji, self._stamp()])
                prepared.emoji_users.append(event.user_id)
                continue
            if isinstance(event, ExportMessageEventRanking):
                ranked_ids = [message_uuid(i) for i in event.ranked_message_ids]
                for i in ranked_ids:
                    key = bulk.encode_id(i)
                    ranked[key] = ranked.get(key, 0) + 1
                payload_type = "RankingReactionPayload"
                payload: dict[str, Any] = {
                    "type": "message_ranking",
                    "ranking": event.ranking,
                    "ranked_message_ids": [str(i) for i in ranked_ids],
                    # The event sits on the parent it ranks, in this tree.
                    "ranking_parent_id": str(message),
                    "message_tree_id": str(prepared.root_id),
                    "not_rankable": bool(event.not_rankable),
                }
            else:
                payload_type = "RatingReactionPayload"
                payload = {"type": "message_rating", "rating": event.rating}
            prepared.reactions.append(
                [
                    self._new_id(),
                    None,
                    self._stamp(),
                    payload_type,
                    bulk.encode_json(payload),
                    self.client,
                    message_id,
                ]
            )
            prepared.reaction_users.append(event.user_id)

    def _label_rows(self, message_id: str, node: ExportMessageNode) -> list[list[Any]]:
        """Label rows with the file's means and counts: row i holds every label counted more than i times.

        The rows belong to the system user "import": the file does not say who labelled.
        """
        assert node.labels is not None
        entries = [
            (name, v.value, v.count) for name, v in node.labels.items() if v.value is not None and v.count
        ]
        rows = []
        labels = None
        for i in range(max((count for _, _, count in entries), default=0)):
            if labels is None or any(count == i for _, _, count in entries):
                labels = self.bulk.encode_json({name: value for name, value, count in entries if count > i})
            rows.append([self._new_id(), None, self.stored_now, self.client, "", message_id, labels, None])
        return rows

    # -- batches into the database ---------------------------------------------------------------------------

    def _resolve_users(self, keys: set[str | None]) -> tuple[dict[str | None, Any], list[tuple[Any, ...]]]:
        """Stored user ids for the file's user ids (None: the system user "import"), and the users to create.

        A file's user becomes a `system` user of the import client named by that id, and keeps the id
        itself when it is a UUID, so that export gives back the same user_id. An id that exists already (a
        file exported from this database) keeps pointing at that user.
        """
        wanted = [key for key in keys if key not in self.users]
        if not wanted:
            return {}, []
        names = {key: IMPORT_USERNAME if key is None else key for key in wanted}
        found = repository.users_by_username(
            self.conn, IMPORT_CLIENT_ID, IMPORT_AUTH_METHOD, sorted(set(names.values()))
        )
        bulk = self.bulk
        resolved = {key: bulk.encode_id(found[name]) for key, name in names.items() if name in found}
        candidates = {
            key: uuid.uuid5(IMPORT_CLIENT_ID, "user:import") if key is None else message_uuid(key)
            for key in wanted
            if key not in resolved
        }
        taken = repository.existing_user_ids(self.conn, list(set(candidates.values())))
        new: dict[uuid.UUID, tuple[Any, ...]] = {}
        now = self.stored_now
        for key, user_id in candidates.items():
            resolved[key] = bulk.encode_id(user_id)
            if user_id not in taken and user_id not in new:
                name = names[key]
                # Like every system user: off the leaderboard, terms of service taken as accepted (spec 2.2).
                new[user_id] = (
                    bulk.encode_id(user_id), name, IMPORT_AUTH_METHOD, name[:256], now, self.client,
                    True, "", False, False, now, None, None, now,
                )  # fmt: skip
        return resolved, list(new.values())

    def _flush(self, batch: list[_Prepared], origin: str) -> None:
        try:
            with self._unit():
                outcome = self._store(batch, origin)
        except DBAPIError:
            # Something clashed after all (a concurrent import?): store tree by tree to find the culprit.
            for prepared in batch:
                try:
                    with self._unit():
                        single = self._store([prepared], origin)
                except DBAPIError as error:
                    reason = str(error.orig).splitlines()[0] if error.orig else str(error)
                    self._fail(Failure(prepared.source.file, prepared.source.line, f"not stored: {reason}"))
                    continue
                self._commit(single)
            return
        self._commit(outcome)

    def _commit(self, outcome: _Outcome) -> None:
        self.users.update(outcome.users)
        self.activated += outcome.activated
        self.summary.trees += outcome.trees
        self.summary.messages += outcome.messages
        self.summary.skipped += outcome.skipped
        for failure in outcome.failures:
            self._fail(failure)

    def _store(self, batch: list[_Prepared], origin: str) -> _Outcome:
        outcome = _Outcome()
        existing = self.bulk.existing_messages([i for p in batch for i in p.message_ids])
        seen: set[uuid.UUID] = set()
        keep: list[_Prepared] = []
        for prepared in batch:
            if prepared.root_id in existing:
                outcome.skipped += 1  # imported before: importing again changes nothing
                continue
            clash = next((i for i in prepared.message_ids if i in existing or i in seen), None)
            if clash is not None:
                where = f"tree {existing[clash]}" if clash in existing else "another tree of this import"
                reason = f"message {clash} already exists in {where}"
                outcome.failures.append(Failure(prepared.source.file, prepared.source.line, reason))
                continue
            seen.update(prepared.message_ids)
            keep.append(prepared)
        if not keep:
            return outcome
        resolved, new_users = self._resolve_users(set().union(*(p.users for p in keep)))
        users = self.users | resolved
        self.bulk.insert(User, USER_COLUMNS, new_users)
        messages: list[list[Any]] = []
        labels: list[list[Any]] = []
        emojis: list[list[Any]] = []
        reactions: list[list[Any]] = []
        trees: list[tuple[Any, ...]] = []
        import_user = users[None]
        for prepared in keep:
            for row, key in zip(prepared.messages, prepared.message_users, strict=True):
                row[_MESSAGE_USER_ID] = users[key]
            for row, key in zip(prepared.emojis, prepared.emoji_users, strict=True):
                row[_USER_ID] = users[key]
            for row, key in zip(prepared.reactions, prepared.reaction_users, strict=True):
                row[_USER_ID] = users[key]
            for row in prepared.labels:
                row[_USER_ID] = import_user
            messages.extend(prepared.messages)
            labels.extend(prepared.labels)
            emojis.extend(prepared.emojis)
            reactions.extend(prepared.reactions)
            state = self._state(prepared, outcome)
            trees.append(
                (
                    self.bulk.encode_id(prepared.root_id),
                    0,
                    0,
                    0,
                    state,
                    state == TreeState.ranking,
                    origin[:1024],
                    None,
                    prepared.lang,
                )
            )
            outcome.trees += 1
            outcome.messages += len(prepared.messages)
        self.bulk.insert(Message, MESSAGE_COLUMNS, messages)
        self.bulk.insert(MessageTreeState, TREE_COLUMNS, trees)
        self.bulk.insert(TextLabels, LABEL_COLUMNS, labels)
        self.bulk.insert(MessageEmoji, EMOJI_COLUMNS, emojis)
        self.bulk.insert(MessageReaction, REACTION_COLUMNS, reactions)
        outcome.users = resolved
        return outcome

    def _state(self, prepared: _Prepared, outcome: _Outcome) -> str:
        """ready_for_export if asked or as the file says; else backlog (the first --num-activate: ranking)."""
        wanted = self.options.state
        if wanted == TreeState.ready_for_export or (
            wanted == IMPORT_STATE_FILE and prepared.file_state == TreeState.ready_for_export
        ):
            return TreeState.ready_for_export.value
        if self.activated + outcome.activated < self.options.num_activate:
            outcome.activated += 1
            return TreeState.ranking.value
        return TreeState.backlog_ranking.value


@contextmanager
def _bulk_gc() -> Iterator[Callable[[], object]]:
    """The cyclic garbage collector paused during bulk work; the callable collects between batches.

    Left on, it rescans every live row of a batch again and again and takes most of the time.
    """
    enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield gc.collect
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def import_files(
    database_url: str, paths: Sequence[Path], options: ImportOptions, progress: ImportProgress
) -> ImportSummary:
    """Import the trees of `paths` not in the database yet; malformed trees are reported and left out."""
    engine = repository.blocking_engine(database_url, write=True)
    try:
        with engine.connect() as conn, _bulk_gc() as collect:
            importer = _Importer(conn, options, progress)
            try:
                importer.setup()
                for path in paths:
                    if importer.full:
                        break
                    importer.run_file(path, collect)
            finally:
                importer.finish()
            if importer.summary.trees and not options.dry_run:
                repository.refresh_statistics(conn)
            return importer.summary
    finally:
        engine.dispose()
