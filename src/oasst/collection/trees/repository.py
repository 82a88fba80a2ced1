"""Queries of the tree manager: locks, tree states, the active messages of a language, open tasks."""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    CompoundSelect,
    Select,
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    func,
    join,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.base import UTCDateTime
from oasst.db.models import (
    Message,
    MessageEmoji,
    MessageReaction,
    MessageTreeState,
    Task,
    TextLabels,
    User,
    UserStats,
)
from oasst.protocol.collection import TreeState


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def lock_tree(session: AsyncSession, tree_id: uuid.UUID) -> MessageTreeState | None:
    """The tree's state row, locked until commit so that its transitions never race."""
    return await read_tree(session, tree_id, lock=_is_postgres(session))


async def read_tree(
    session: AsyncSession, tree_id: uuid.UUID, *, lock: bool = False
) -> MessageTreeState | None:
    """The tree's state row as the database has it now."""
    stmt = _TREE_ROW_FOR_UPDATE if lock else _TREE_ROW
    return (await session.scalars(stmt, {"tree_id": tree_id})).one_or_none()


@dataclass(slots=True)
class ActiveMessage:
    """The columns the tree manager needs of a message (task selection reads those of active trees)."""

    id: uuid.UUID
    parent_id: uuid.UUID | None
    tree_id: uuid.UUID
    user_id: uuid.UUID | None
    role: str
    lang: str
    depth: int
    review_count: int
    review_result: bool | None
    synthetic: bool
    ranking_count: int
    emojis: dict[str, int]
    deleted: bool


# The statements task selection runs on every request are built on the tables, not the mapped classes: the
# session then runs them as plain Core, without the ORM's compile and result steps (a third less CPU each).
_MESSAGE = cast(Table, Message.__table__)
_TREE = cast(Table, MessageTreeState.__table__)
_TASK = cast(Table, Task.__table__)
_LABELS = cast(Table, TextLabels.__table__)
_message, _tree, _task, _labels = _MESSAGE.c, _TREE.c, _TASK.c, _LABELS.c
_emoji = cast(Table, MessageEmoji.__table__).c
_reaction = cast(Table, MessageReaction.__table__).c

ACTIVE_COLUMNS = (
    _message.id,
    _message.parent_id,
    _message.message_tree_id,
    _message.user_id,
    _message.role,
    _message.lang,
    _message.depth,
    _message.review_count,
    _message.review_result,
    _message.synthetic,
    _message.ranking_count,
    _message.emojis,
    _message.deleted,
)


@dataclass(slots=True)
class TreeMessage(ActiveMessage):
    """A live message of a claimed slot's tree, with what a task shows of it."""

    text: str
    frontend_message_id: str


# ActiveMessage's fields, in order.
_MessageValues = tuple[
    uuid.UUID,
    uuid.UUID | None,
    uuid.UUID,
    uuid.UUID | None,
    str,
    str,
    int,
    int,
    bool | None,
    bool,
    int,
    dict[str, int],
    bool,
]


def _message_values(row: Any) -> _MessageValues:
    """A row's ACTIVE_COLUMNS in ActiveMessage's field order (hand-out builds dozens a request)."""
    return (
        row.id,
        row.parent_id,
        row.message_tree_id,
        row.user_id,
        row.role,
        row.lang,
        row.depth,
        row.review_count,
        row.review_result,
        row.synthetic,
        row.ranking_count,
        row.emojis or {},
        row.deleted,
    )


def _active(row: Any) -> ActiveMessage:
    return ActiveMessage(*_message_values(row))


def _tree_message(row: Any) -> TreeMessage:
    return TreeMessage(*_message_values(row), row.text, row.frontend_message_id)


ACTIVE_STATES = (TreeState.initial_prompt_review, TreeState.growing, TreeState.ranking)

# The hand-out path runs these on every request: they are built once with bind parameters, so SQLAlchemy
# neither rebuilds nor re-keys them and the driver reuses its prepared statements.
_LANG: BindParameter[str] = bindparam("lang", type_=String())
_USER: BindParameter[uuid.UUID] = bindparam("user_id", type_=Uuid())
_SINCE: BindParameter[datetime] = bindparam("since", type_=UTCDateTime())
_NOW: BindParameter[datetime] = bindparam("now", type_=UTCDateTime())
# A language's trees in which work is handed out, as a subquery.
_ACTIVE_TREE = and_(
    _tree.active.is_(True),
    _tree.lang == _LANG,
    _tree.state.in_([s.value for s in ACTIVE_STATES]),
)
_ACTIVE_TREE_IDS = select(_tree.message_tree_id).where(_ACTIVE_TREE)
_IN_ACTIVE_TREES = select(_message.id).where(_message.message_tree_id.in_(_ACTIVE_TREE_IDS))
# The states whose counts decide the prompt lottery and how many new prompts a language takes.
COUNTED_STATES = (TreeState.growing, TreeState.initial_prompt_review, TreeState.prompt_lottery_waiting)
_STATE_TOTALS = (
    select(*(func.count().filter(_tree.state == state).label(state) for state in COUNTED_STATES))
    .where(_tree.lang == _LANG)
    .subquery("totals")
)
# The language's trees counted by state (a one-row aggregate), and joined to it its active trees with their
# live messages: a tree without one has NULL message columns, and no active tree leaves the counts alone.
_LANGUAGE_TREES = (
    select(
        *_STATE_TOTALS.c,
        _tree.message_tree_id.label("tree_key"),
        _tree.state.label("tree_state"),
        _tree.goal_tree_size,
        _tree.max_depth,
        _tree.max_children_count,
        *ACTIVE_COLUMNS,
    )
    .select_from(_STATE_TOTALS)
    .outerjoin(
        join(
            _TREE,
            _MESSAGE,
            and_(_message.message_tree_id == _tree.message_tree_id, _message.deleted.is_(False)),
            isouter=True,
        ),
        # The conditions, not `IN (active tree ids)`: SQLite would build every tree-and-message row first.
        _ACTIVE_TREE,
    )
)
_UNFINISHED = and_(_task.done.is_(False), _task.skipped.is_(False))
_OPEN_TASKS = select(_task.payload_type, _task.parent_message_id, _task.message_tree_id, _task.user_id).where(
    _task.lang == _LANG,
    _task.created_date > _SINCE,
    _UNFINISHED,
    or_(_task.expiry_date.is_(None), _task.expiry_date > _NOW),
)
_NO_DATE = null().cast(UTCDateTime())
# Rows (kind, message id, date): the user's emojis (kind: the emoji) in the language's active trees, their
# task labels, replies and rankings there, and their pending tasks in any language (message id: the task's).
_FOOTPRINT: CompoundSelect[str, uuid.UUID, datetime] = union_all(
    select(_emoji.emoji, _emoji.message_id, _emoji.created_date).where(
        _emoji.user_id == _USER, _emoji.message_id.in_(_IN_ACTIVE_TREES)
    ),
    select(literal("labelled"), _labels.message_id, _NO_DATE).where(
        _labels.user_id == _USER,
        _labels.task_id.is_not(None),
        _labels.message_id.in_(_IN_ACTIVE_TREES),
    ),
    select(literal("replied"), _message.parent_id, _NO_DATE).where(
        _message.user_id == _USER,
        _message.deleted.is_(False),
        _message.parent_id.is_not(None),
        _message.message_tree_id.in_(_ACTIVE_TREE_IDS),
    ),
    select(literal("ranked"), _reaction.message_id, _NO_DATE).where(
        _reaction.user_id == _USER, _reaction.message_id.in_(_IN_ACTIVE_TREES)
    ),
    select(literal("pending"), _task.id, _NO_DATE).where(
        _task.user_id == _USER, _task.created_date > _SINCE, _UNFINISHED
    ),
)
_STATE_COUNTS = select(_tree.state, func.count()).where(_tree.lang == _LANG).group_by(_tree.state)
_LOTTERY_CANDIDATES = (
    select(MessageTreeState.message_tree_id, Message.user_id)
    .join(Message, Message.id == MessageTreeState.message_tree_id)
    .join(User, User.id == Message.user_id)
    .where(
        MessageTreeState.state == TreeState.prompt_lottery_waiting,
        MessageTreeState.lang == _LANG,
        Message.review_result.is_(True),
        Message.deleted.is_(False),
        User.enabled.is_(True),
        User.deleted.is_(False),
    )
)
_TREE_ROW = (
    select(MessageTreeState)
    .where(MessageTreeState.message_tree_id == bindparam("tree_id"))
    .execution_options(populate_existing=True)
)
_TREE_ROW_FOR_UPDATE = _TREE_ROW.with_for_update()
_TREE_MESSAGES = select(*ACTIVE_COLUMNS).where(_message.message_tree_id == bindparam("tree_id"))
# A tree's messages, the one reviewed repeated once per label set of its finished review tasks.
_TREE_AND_REVIEWS = (
    select(*ACTIVE_COLUMNS, _labels.labels)
    .outerjoin(
        join(_LABELS, _TASK, and_(_task.id == _labels.task_id, _task.done.is_(True))),
        and_(_labels.message_id == _message.id, _message.id == bindparam("message_id")),
    )
    .where(_message.message_tree_id == bindparam("tree_id"))
)
# A message and its tree's state row, the tree locked on PostgreSQL.
_MESSAGE_AND_TREE = (
    select(Message, MessageTreeState)
    .join(MessageTreeState, MessageTreeState.message_tree_id == Message.message_tree_id)
    .where(Message.id == bindparam("message_id"))
    .execution_options(populate_existing=True)
)
_MESSAGE_AND_TREE_FOR_UPDATE = _MESSAGE_AND_TREE.with_for_update(of=MessageTreeState)


@dataclass(slots=True)
class ActiveTree:
    """The columns task selection needs of an active tree."""

    state: str
    goal_tree_size: int
    max_depth: int
    max_children_count: int


@dataclass(slots=True)
class LanguageTrees:
    """A language's trees as task selection sees them."""

    counts: dict[str, int]  # of the COUNTED_STATES
    trees: dict[uuid.UUID, ActiveTree]
    messages: list[ActiveMessage]  # the live messages of `trees`


async def language_trees(session: AsyncSession, lang: str) -> LanguageTrees:
    """The language's tree counts, its active trees and their live messages, in one query."""
    found = LanguageTrees(counts={}, trees={}, messages=[])
    for row in await session.execute(_LANGUAGE_TREES, {"lang": lang}):
        if not found.counts:
            found.counts = {state: int(getattr(row, state)) for state in COUNTED_STATES}
        if row.tree_key is not None and row.tree_key not in found.trees:
            found.trees[row.tree_key] = ActiveTree(
                row.tree_state, row.goal_tree_size, row.max_depth, row.max_children_count
            )
        if row.id is not None:
            found.messages.append(_active(row))
    return found


@dataclass(slots=True)
class OpenTask:
    payload_type: str
    parent_message_id: uuid.UUID | None
    message_tree_id: uuid.UUID | None
    user_id: uuid.UUID | None


async def open_tasks(session: AsyncSession, lang: str, since: datetime, now: datetime) -> list[OpenTask]:
    """Tasks of `lang` handed out since `since` that are neither done nor skipped nor expired."""
    rows = await session.execute(_OPEN_TASKS, {"lang": lang, "since": since, "now": now})
    return [OpenTask(*row) for row in rows]


@dataclass(slots=True)
class UserFootprint:
    """What one user already did: the tasks they must not get again, and how many they have pending."""

    emojis: dict[uuid.UUID, list[str]]
    labelled: set[uuid.UUID]
    replied_to: set[uuid.UUID]
    ranked: set[uuid.UUID]
    pending: int

    def skipped(self, message_id: uuid.UUID, skip_emoji: str) -> bool:
        return skip_emoji in self.emojis.get(message_id, ())


async def user_footprint(
    session: AsyncSession, user_id: uuid.UUID, lang: str, since: datetime
) -> UserFootprint:
    """In one query: the user's emojis (in the order given), task labels, replies and rankings in the
    language's active trees, and their tasks handed out since `since` that are neither done nor skipped."""
    footprint = UserFootprint(emojis={}, labelled=set(), replied_to=set(), ranked=set(), pending=0)
    targets = {"labelled": footprint.labelled, "replied": footprint.replied_to, "ranked": footprint.ranked}
    emojis: list[tuple[datetime, str, uuid.UUID]] = []
    for kind, message_id, created in await session.execute(
        _FOOTPRINT, {"user_id": user_id, "lang": lang, "since": since}
    ):
        if kind == "pending":
            footprint.pending += 1
        elif kind in targets:
            targets[kind].add(message_id)
        else:
            emojis.append((created, kind, message_id))
    for _created, emoji, message_id in sorted(emojis):
        footprint.emojis.setdefault(message_id, []).append(emoji)
    return footprint


async def count_states(session: AsyncSession, lang: str) -> dict[str, int]:
    return {state: int(count) for state, count in await session.execute(_STATE_COUNTS, {"lang": lang})}


async def lottery_candidates(session: AsyncSession, lang: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(tree id, author id) of accepted waiting prompts whose authors are enabled."""
    rows = await session.execute(_LOTTERY_CANDIDATES, {"lang": lang})
    return [(tree_id, user_id) for tree_id, user_id in rows if user_id is not None]


async def monthly_first_ranks(session: AsyncSession, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(UserStats.user_id, UserStats.reply_ranked_1).where(
            UserStats.time_frame == "month", UserStats.user_id.in_(user_ids)
        )
    )
    return {user_id: int(value) for user_id, value in rows}


async def backlog_trees(session: AsyncSession, lang: str, limit: int) -> list[MessageTreeState]:
    rows = await session.scalars(
        select(MessageTreeState)
        .where(MessageTreeState.state == TreeState.backlog_ranking, MessageTreeState.lang == lang)
        .order_by(func.random())
        .limit(limit)
    )
    return list(rows)


async def tree_messages(session: AsyncSession, tree_id: uuid.UUID) -> list[ActiveMessage]:
    """Every message of a tree, deleted ones included."""
    return [_active(row) for row in await session.execute(_TREE_MESSAGES, {"tree_id": tree_id})]


async def lock_tree_of(
    session: AsyncSession, message_id: uuid.UUID
) -> tuple[Message, MessageTreeState] | None:
    """A message and its tree's state row, the tree locked until commit as in `lock_tree`, in one query.

    The message is read as of the query's start: counters other writers of the tree may have changed while
    this one waited for the lock must be read again (as the UPDATEs that bump them do).
    """
    stmt = _MESSAGE_AND_TREE_FOR_UPDATE if _is_postgres(session) else _MESSAGE_AND_TREE
    row = (await session.execute(stmt, {"message_id": message_id})).one_or_none()
    return None if row is None else (row[0], row[1])


async def tree_and_reviews(
    session: AsyncSession, tree_id: uuid.UUID, message_id: uuid.UUID
) -> tuple[list[ActiveMessage], list[dict[str, Any]]]:
    """Every message of a tree, and the label sets of the finished review tasks of one of them (free labels
    and reports do not count), in one query."""
    messages: dict[uuid.UUID, ActiveMessage] = {}
    reviews: list[dict[str, Any]] = []
    for row in await session.execute(_TREE_AND_REVIEWS, {"tree_id": tree_id, "message_id": message_id}):
        messages.setdefault(row.id, _active(row))
        if row.labels is not None:
            reviews.append(row.labels)
    return list(messages.values()), reviews


async def ranking_reactions(session: AsyncSession, parent_ids: list[uuid.UUID]) -> list[MessageReaction]:
    if not parent_ids:
        return []
    rows = await session.scalars(
        select(MessageReaction)
        .join(Task, and_(Task.id == MessageReaction.task_id, Task.done.is_(True)))
        .where(
            MessageReaction.message_id.in_(parent_ids),
            MessageReaction.payload_type == "RankingReactionPayload",
        )
    )
    return list(rows)


async def set_ranks(session: AsyncSession, ranks: dict[uuid.UUID, int | None]) -> None:
    for message_id, rank in ranks.items():
        await session.execute(update(Message).where(Message.id == message_id).values(rank=rank))


async def delete_subtree(session: AsyncSession, root_id: uuid.UUID, tree_id: uuid.UUID) -> None:
    """Soft-delete a message and, breadth first, every descendant."""
    rows = (
        await session.execute(select(Message.id, Message.parent_id).where(Message.message_tree_id == tree_id))
    ).all()
    children: dict[uuid.UUID, list[uuid.UUID]] = {}
    for message_id, parent_id in rows:
        if parent_id is not None:
            children.setdefault(parent_id, []).append(message_id)
    doomed, frontier = [root_id], [root_id]
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, [])]
        doomed.extend(frontier)
    await session.execute(update(Message).where(Message.id.in_(doomed)).values(deleted=True))


_LOCK_KEY = bindparam("key", type_=BigInteger())
_LOCK = select(func.pg_advisory_xact_lock(_LOCK_KEY))
_TRY_LOCK = select(func.pg_try_advisory_xact_lock(_LOCK_KEY))


async def lock(session: AsyncSession, kind: str, key: uuid.UUID | str, *, wait: bool = True) -> bool:
    """Take an advisory lock on one slot (a message, a tree, a language's prompts) until commit.

    With `wait=False` it gives up at once if another transaction holds it (False): callers that may take
    several such locks use that, so two of them can never wait for each other. SQLite runs one transaction at
    a time and needs none.
    """
    if not _is_postgres(session):
        return True
    digest = hashlib.blake2b(f"oasst:{kind}:{key}".encode(), digest_size=8).digest()
    params = {"key": int.from_bytes(digest, "big", signed=True)}
    if wait:
        await session.execute(_LOCK, params)
        return True
    return bool(await session.scalar(_TRY_LOCK, params))


@dataclass(slots=True)
class Slot:
    """What a claim checks, read in one statement once its lock is held: the tree's state, its live messages,
    and the open tasks of some kinds on one parent and in the whole tree."""

    state: str
    active: bool
    goal_tree_size: int
    max_children_count: int
    open_here: int
    open_tree: int
    messages: list[TreeMessage]


@functools.cache
def _slot(payload_types: tuple[str, ...]) -> Select[Any]:
    """One statement per set of task types (the open-task counts are uncorrelated, so computed once)."""
    open_in_tree = (
        _task.message_tree_id == bindparam("tree_id"),
        _task.payload_type.in_(payload_types),
        _task.created_date > _SINCE,
        _UNFINISHED,
        or_(_task.expiry_date.is_(None), _task.expiry_date > _NOW),
    )
    open_here = select(func.count()).where(*open_in_tree, _task.parent_message_id == bindparam("parent_id"))
    return (
        select(
            _tree.state.label("tree_state"),
            _tree.active.label("tree_active"),
            _tree.goal_tree_size,
            _tree.max_children_count,
            open_here.scalar_subquery().label("open_here"),
            select(func.count()).where(*open_in_tree).scalar_subquery().label("open_tree"),
            *ACTIVE_COLUMNS,
            _message.text,
            _message.frontend_message_id,
        )
        .join_from(
            _TREE,
            _MESSAGE,
            and_(_message.message_tree_id == _tree.message_tree_id, _message.deleted.is_(False)),
        )
        .where(_tree.message_tree_id == bindparam("tree_id"))
    )


async def read_slot(
    session: AsyncSession,
    parent_id: uuid.UUID,
    tree_id: uuid.UUID,
    payload_types: tuple[str, ...],
    since: datetime,
    now: datetime,
) -> Slot | None:
    """The slot of `parent_id` as the database has it now; None when its tree has no live message."""
    params = {"parent_id": parent_id, "tree_id": tree_id, "since": since, "now": now}
    rows = (await session.execute(_slot(payload_types), params)).all()
    if not rows:
        return None
    first = rows[0]
    return Slot(
        state=first.tree_state,
        active=first.tree_active,
        goal_tree_size=first.goal_tree_size,
        max_children_count=first.max_children_count,
        open_here=int(first.open_here),
        open_tree=int(first.open_tree),
        messages=[_tree_message(row) for row in rows],
    )


async def open_prompts(session: AsyncSession, lang: str, since: datetime, now: datetime) -> int:
    """Open initial-prompt tasks of a language."""
    rows = await session.execute(_OPEN_TASKS, {"lang": lang, "since": since, "now": now})
    return sum(1 for row in rows if row.payload_type == "InitialPromptPayload")


async def root_deleted(session: AsyncSession, tree_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(Message.deleted).where(Message.id == tree_id)))


async def root_accepted(session: AsyncSession, tree_id: uuid.UUID) -> bool:
    """Whether the tree's root is live and accepted by its reviews."""
    found = await session.scalar(
        select(func.count()).where(
            Message.id == tree_id, Message.review_result.is_(True), Message.deleted.is_(False)
        )
    )
    return bool(found)
