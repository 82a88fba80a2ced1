"""Blocking, set-based queries of export and import: trees streamed in batches, their rows, bulk inserts."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    Uuid,
    any_,
    bindparam,
    case,
    cast,
    create_engine,
    event,
    exists,
    func,
    literal_column,
    null,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import aliased

from oasst.db.models import (
    ApiClient,
    Message,
    MessageEmoji,
    MessageReaction,
    MessageTreeState,
    TextLabels,
    User,
)
from oasst.db.session import ensure_sqlite_dir, sync_url

T = TypeVar("T")
ANALYZED = (Message, MessageTreeState, TextLabels, MessageEmoji, MessageReaction, User)
# IN lists stay well below SQLite's limit of bound parameters.
IN_CHUNK = 5000


def _sqlite_connect(dbapi_connection: Any, write: bool) -> None:
    # sqlite3 would open transactions by itself (late, and never for reads); SQLAlchemy's `begin` does it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")  # as the servers run it (WAL: no fsync per commit)
    if write:
        # 64 MB of page cache (instead of 2 MB): bulk inserts touch index pages all over the file.
        cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def blocking_engine(database_url: str, *, write: bool = False, connections: int = 1) -> Engine:
    """A sync engine (psycopg or sqlite3) for bulk work outside the servers.

    On SQLite every transaction is real: a reader sees one snapshot, a writer takes the write lock at BEGIN
    (IMMEDIATE), so that it waits for a running server instead of failing half-way.
    """
    ensure_sqlite_dir(database_url)
    engine = create_engine(sync_url(database_url), pool_size=connections, max_overflow=0)
    if engine.dialect.name == "sqlite":
        begin = "BEGIN IMMEDIATE" if write else "BEGIN"
        event.listen(
            engine, "connect", lambda dbapi_connection, _record: _sqlite_connect(dbapi_connection, write)
        )
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
    return engine


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- reading: the database renders each message as its export node, Python only nests them ----------------


def _literal(text: str) -> ColumnElement[str]:
    """A constant SQL string (json_build_object cannot type bound parameters)."""
    assert "'" not in text
    return literal_column(f"'{text}'", String)


class Rendering:
    """Per-dialect SQL: ids as text keys, and most of a message's export node rendered as JSON text.

    Keys are the canonical uuid text on PostgreSQL and 32 hex digits on SQLite (how each stores a uuid):
    cheap to read and compare. The database renders the node from `created_date` to `emojis` (spec 6.3 order,
    nulls left out); the writer puts the three ids in front, formatted and, if asked, anonymized.
    """

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def key(self, column: Any) -> ColumnElement[str]:
        return cast(column, String) if self.postgres else type_coerce(column, String)

    def key_of(self, value: uuid.UUID) -> str:
        return str(value) if self.postgres else value.hex

    def format_key(self, key: str | None) -> str | None:
        """The canonical uuid text of a key."""
        if key is None or self.postgres:
            return key
        return f"{key[:8]}-{key[8:12]}-{key[12:16]}-{key[16:20]}-{key[20:]}"

    def ids_parameter(self, ids: Sequence[uuid.UUID]) -> Any:
        return list(ids) if self.postgres else json.dumps([i.hex for i in ids])

    def among(self, column: Any, ids: Sequence[uuid.UUID]) -> ColumnElement[bool]:
        """`column IN ids` with one parameter however many ids: an array, or a JSON list on SQLite."""
        if self.postgres:
            return column == any_(bindparam("ids", self.ids_parameter(ids), type_=postgresql.ARRAY(Uuid)))
        values: Any = select(literal_column("value")).select_from(
            func.json_each(bindparam("ids", self.ids_parameter(ids)))
        )
        return type_coerce(column, String).in_(values)

    def _date(self, column: Any) -> ColumnElement[str]:
        """Python's isoformat of the UTC time: microseconds only when not zero, offset +00:00."""
        if self.postgres:
            utc = func.timezone(_literal("UTC"), column)
            text = func.to_char(utc, _literal('YYYY-MM-DD"T"HH24:MI:SS.US'))
        else:
            # SQLite holds 'YYYY-MM-DD HH:MM:SS.ffffff'.
            text = func.replace(type_coerce(column, String), _literal(" "), _literal("T"))
        return func.replace(text, _literal(".000000"), _literal("")) + _literal("+00:00")

    def _quote(self, column: Any) -> ColumnElement[str]:
        """A JSON string of the text (escaped by the database)."""
        if self.postgres:
            return cast(func.to_json(column), String)
        return func.nullif(func.json_quote(column), _literal("null"))  # SQLite quotes NULL as null

    @staticmethod
    def _member(name: str, value: Any) -> ColumnElement[str]:
        """',"name":value', or '' when the value is NULL."""
        return func.coalesce(_literal(f',"{name}":') + value, _literal(""))

    @staticmethod
    def _flag(name: str, condition: Any) -> ColumnElement[str]:
        return case((condition, _literal(f',"{name}":true')), else_=_literal(f',"{name}":false'))

    def rest(self) -> ColumnElement[str]:
        """',"created_date":...,"emojis":{...}}', built as text: cheaper than a JSON value without nulls."""
        m = Message
        if self.postgres:
            emojis = func.nullif(cast(m.emojis, String), _literal("null"))
        else:
            emojis = func.nullif(func.json(type_coerce(m.emojis, String)), _literal("null"))
        # Upstream hides a negative review result until more than two reviews agree on it.
        review_result = case(
            (m.review_result.is_(True), _literal(',"review_result":true')),
            (m.review_result.is_(False) & (m.review_count > 2), _literal(',"review_result":false')),
            else_=_literal(""),
        )
        parts = [
            _literal(',"created_date":"') + self._date(m.created_date) + _literal('","text":'),
            self._quote(m.text),
            _literal(',"role":') + self._quote(m.role),
            _literal(',"lang":') + self._quote(m.lang),
            _literal(',"review_count":') + cast(m.review_count, String),
            review_result,
            self._flag("deleted", m.deleted),
            self._member("rank", cast(m.rank, String)),
            self._flag("synthetic", m.synthetic),
            self._member("model_name", self._quote(m.model_name)),
            self._member("emojis", emojis),
            _literal("}"),
        ]
        rest = parts[0]
        for part in parts[1:]:
            rest = rest + part
        return rest

    def _json_rows(self, model: Any, columns: list[Any], order: list[Any], json_columns: int = 0) -> Any:
        """A JSON array of `model`'s rows on the message, in `order` (NULL if none).

        Each row is [columns...], or the column itself when there is one. The last `json_columns` columns
        hold JSON documents, nested as such.
        """
        if self.postgres:
            row = columns[0] if len(columns) == 1 else func.json_build_array(*columns)
            aggregate = func.json_agg(aggregate_order_by(row, *order))
            return select(cast(aggregate, String)).where(model.message_id == Message.id).scalar_subquery()
        rows = (
            select(*columns)
            .where(model.message_id == Message.id)
            .order_by(*order)
            .correlate(Message)
            .subquery()
        )
        plain = len(columns) - json_columns
        # SQLite forgets that a value is JSON when it leaves a subquery: json() says it again.
        values = [c if i < plain else func.json(c) for i, c in enumerate(rows.c)]
        aggregate = func.json_group_array(values[0] if len(values) == 1 else func.json_array(*values))
        return select(aggregate).having(func.count() > 0).scalar_subquery()

    def _labels(self) -> Any:
        """A JSON array of the `labels` of the message's text-label rows."""
        labels = aliased(TextLabels, name="labels")
        return self._json_rows(labels, [labels.labels], [labels.created_date, labels.id], json_columns=1)

    def _emojis(self) -> ColumnElement[str]:
        emoji = aliased(MessageEmoji, name="emoji")
        columns = [self.key(emoji.user_id), emoji.emoji]
        return self._json_rows(emoji, columns, [emoji.created_date, emoji.user_id, emoji.emoji])

    def _reactions(self) -> ColumnElement[str]:
        reaction = aliased(MessageReaction, name="reaction")
        columns = [self.key(reaction.user_id), reaction.payload_type, reaction.payload]
        return self._json_rows(reaction, columns, [reaction.created_date, reaction.task_id], json_columns=1)

    def message_columns(self, *, labels: bool = False, events: bool = False) -> list[Any]:
        """(id key, parent key, user key, rank, tree key, rest of the node JSON, labels, emojis, reactions).

        The last three are JSON arrays of the message's label dicts, [user key, emoji] and [user key, payload
        type, payload], read only when asked for (NULL otherwise, and when there are none).
        """
        m = Message
        none = null()
        return [
            self.key(m.id),
            self.key(m.parent_id),
            self.key(m.user_id),
            m.rank,
            self.key(m.message_tree_id),
            self.rest(),
            self._labels() if labels else none,
            self._emojis() if events else none,
            self._reactions() if events else none,
        ]


@dataclass(frozen=True)
class TreeFilter:
    """Which trees an export selects (by their row and their root message)."""

    state: str | None
    lang: str | None
    synthetic: bool | None
    created_from: datetime | None
    created_to: datetime | None


@dataclass(frozen=True)
class MessageFilter:
    """Which messages of the selected trees (or of a user) are written."""

    deleted: bool | None
    review_result: bool | None
    prompts_only: bool


@dataclass(frozen=True)
class TreeRow:
    tree_id: uuid.UUID
    state: str


def _tree_query(filters: TreeFilter, columns: Callable[[Any], list[Any]]) -> tuple[Any, Any]:
    """SELECT `columns(root)` FROM message_tree_state JOIN message root WHERE the tree filters hold."""
    root = aliased(Message, name="root")
    query = (
        select(*columns(root))
        .select_from(MessageTreeState)
        .join(root, root.id == MessageTreeState.message_tree_id)
    )
    if filters.state is not None:
        query = query.where(MessageTreeState.state == filters.state)
    if filters.lang is not None:
        query = query.where(root.lang == filters.lang)
    if filters.created_from is not None:
        query = query.where(root.created_date >= filters.created_from)
    if filters.created_to is not None:
        query = query.where(root.created_date < filters.created_to)
    if filters.synthetic is not None:
        any_synthetic = exists().where(
            Message.message_tree_id == MessageTreeState.message_tree_id, Message.synthetic.is_(True)
        )
        query = query.where(any_synthetic if filters.synthetic else ~any_synthetic)
    return query, root


def export_snapshot(conn: Connection) -> str:
    """The id of this REPEATABLE READ transaction's snapshot, for other connections to share (PostgreSQL)."""
    snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
    if not re.fullmatch(r"[0-9A-F]+(-[0-9A-F]+)+", snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    return snapshot


def import_snapshot(conn: Connection, snapshot: str) -> None:
    """Make this new REPEATABLE READ transaction see exactly `snapshot` (its first statement)."""
    # SET takes no parameters; export_snapshot checked that the id is hex digits and dashes.
    conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")


def no_jit(conn: Connection) -> None:
    """No JIT compilation (PostgreSQL): each batch query is cheap, compiling it again each time is not."""
    conn.exec_driver_sql("SET jit = off")


def count_trees(conn: Connection, filters: TreeFilter) -> int:
    query, _ = _tree_query(filters, lambda _root: [func.count()])
    return int(conn.execute(query).scalar_one())


def tree_batches(
    conn: Connection, filters: TreeFilter, limit: int | None, size: int
) -> Iterator[list[TreeRow]]:
    """The selected trees in the order of their prompts' creation, `size` at a time, from one streamed query.

    PostgreSQL reads them through a server-side cursor and SQLite steps its statement, so other queries
    run between batches on the same connection (and snapshot).
    """
    query, root = _tree_query(
        filters, lambda _root: [MessageTreeState.message_tree_id, MessageTreeState.state]
    )
    query = query.order_by(root.created_date, root.id).limit(limit)
    # Per statement: Connection.execution_options() would stream every later query too.
    result = conn.execute(query, execution_options={"stream_results": True, "yield_per": size})
    for part in result.partitions():
        yield [TreeRow(tree_id, state) for tree_id, state in part]


def _message_filters(query: Any, filters: MessageFilter) -> Any:
    if filters.deleted is not None:
        query = query.where(Message.deleted.is_(filters.deleted))
    if filters.review_result is not None:
        query = query.where(Message.review_result.is_(filters.review_result))
    if filters.prompts_only:
        query = query.where(Message.parent_id.is_(None))
    return query


class TreeMessages:
    """The messages of a batch of trees that pass the filters, oldest first (`Rendering.message_columns`).

    The statement is compiled once and run on the driver's cursor: rows come back as plain tuples, without
    SQLAlchemy's per-statement and per-row work, which would otherwise cost as much as the query.
    """

    def __init__(
        self, conn: Connection, rendering: Rendering, filters: MessageFilter, *, labels: bool, events: bool
    ) -> None:
        self.conn = conn
        self.rendering = rendering
        columns = rendering.message_columns(labels=labels, events=events)
        query = select(*columns).where(rendering.among(Message.message_tree_id, []))
        query = _message_filters(query, filters).order_by(Message.created_date, Message.id)
        self.compiled = query.compile(dialect=conn.dialect)

    def __call__(self, tree_ids: Sequence[uuid.UUID]) -> list[Any]:
        params = self.compiled.construct_params({"ids": self.rendering.ids_parameter(tree_ids)})
        if self.compiled.positiontup is not None:
            arguments: Any = [params[name] for name in self.compiled.positiontup]
        else:
            arguments = params
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.compiled.string, arguments)
            return list(cursor.fetchall())
        finally:
            cursor.close()


@dataclass(frozen=True)
class UserMessageKey:
    created_date: datetime
    message_id: uuid.UUID


def _user_query(
    columns: list[Any],
    user_id: uuid.UUID,
    filters: MessageFilter,
    *,
    synthetic: bool | None,
    lang: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> Any:
    query = _message_filters(select(*columns).where(Message.user_id == user_id), filters)
    if synthetic is not None:
        query = query.where(Message.synthetic.is_(synthetic))
    if lang is not None:
        query = query.where(Message.lang == lang)
    if created_from is not None:
        query = query.where(Message.created_date >= created_from)
    if created_to is not None:
        query = query.where(Message.created_date < created_to)
    return query


def count_user_messages(conn: Connection, user_id: uuid.UUID, filters: MessageFilter, **where: Any) -> int:
    return int(conn.execute(_user_query([func.count()], user_id, filters, **where)).scalar_one())


def user_messages(
    conn: Connection,
    rendering: Rendering,
    user_id: uuid.UUID,
    filters: MessageFilter,
    *,
    after: UserMessageKey | None,
    size: int,
    labels: bool,
    events: bool,
    **where: Any,
) -> tuple[Sequence[Any], UserMessageKey | None]:
    """The next `size` messages of a user, oldest first, and the key to continue after them."""
    columns = [*rendering.message_columns(labels=labels, events=events), Message.created_date, Message.id]
    query = _user_query(columns, user_id, filters, **where)
    if after is not None:
        query = query.where(
            tuple_(Message.created_date, Message.id) > tuple_(after.created_date, after.message_id)
        )
    rows = conn.execute(query.order_by(Message.created_date, Message.id).limit(size)).all()
    if not rows:
        return [], None
    return rows, UserMessageKey(rows[-1][-2], rows[-1][-1])


# --- import ------------------------------------------------------------------------------------------------


def ensure_api_client(conn: Connection, values: dict[str, Any]) -> None:
    """Insert the API client row unless one with its id exists (a concurrent twin is fine)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(ApiClient).values(**values).on_conflict_do_nothing(index_elements=["id"]))


def users_by_username(
    conn: Connection, api_client_id: uuid.UUID, auth_method: str, usernames: Sequence[str]
) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for part in chunks(usernames):
        query = select(User.username, User.id).where(
            User.api_client_id == api_client_id, User.auth_method == auth_method, User.username.in_(part)
        )
        found.update({username: user_id for username, user_id in conn.execute(query)})
    return found


def existing_user_ids(conn: Connection, user_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for part in chunks(user_ids):
        found.update(conn.execute(select(User.id).where(User.id.in_(part))).scalars())
    return found


def refresh_statistics(conn: Connection) -> None:
    """After a bulk load, fresh planner statistics for the tables it filled (PostgreSQL; autovacuum lags)."""
    if conn.dialect.name != "postgresql":
        return
    tables = ", ".join(conn.dialect.identifier_preparer.quote(t.__tablename__) for t in ANALYZED)
    with conn.begin():
        conn.exec_driver_sql(f"ANALYZE {tables}")


class Bulk:
    """Bulk writes on the driver's own connection, inside the current transaction.

    PostgreSQL gets COPY and one array parameter for id lookups; SQLite gets executemany and short IN lists.
    Rows are sequences in the order of the columns given, their values already in the driver's form: the
    caller converts each value once with the `encode_*` methods (a message id goes into several rows).
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self.quote = conn.dialect.identifier_preparer.quote

    def encode_id(self, value: uuid.UUID) -> str:
        return str(value) if self.postgres else value.hex

    def encode_id_int(self, value: int) -> str:
        """A UUID given as its 128-bit integer."""
        text = f"{value:032x}"
        if self.postgres:
            return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        return text

    def encode_date(self, value: datetime) -> Any:
        if self.postgres:
            return value
        # The text SQLAlchemy stores for a UTC datetime on SQLite (always with microseconds).
        if value.utcoffset():
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    @staticmethod
    def encode_json(value: Any) -> str | None:
        return None if value is None else json.dumps(value)

    def _cursor(self) -> Any:
        return self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def insert(self, model: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        table = self.quote(model.__table__.name)
        names = ", ".join(self.quote(c) for c in columns)
        cursor = self._cursor()
        try:
            if self.postgres:
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        finally:
            cursor.close()

    def existing_messages(self, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """Message id -> tree id, for those of `message_ids` already stored."""
        found: dict[uuid.UUID, uuid.UUID] = {}
        cursor = self._cursor()
        try:
            if self.postgres:
                cursor.execute(
                    "SELECT id, message_tree_id FROM message WHERE id = ANY(%s)", (list(message_ids),)
                )
                found.update(cursor.fetchall())
                return found
            for part in chunks(message_ids, 500):
                marks = ", ".join("?" * len(part))
                cursor.execute(
                    f"SELECT id, message_tree_id FROM message WHERE id IN ({marks})", [i.hex for i in part]
                )
                found.update((uuid.UUID(a), uuid.UUID(b)) for a, b in cursor.fetchall())
            return found
        finally:
            cursor.close()
