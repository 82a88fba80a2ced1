"""Queries that count: system and tree counts, cached stats, and the set-based leaderboard refreshes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    Subquery,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from oasst.collection.trees.service import LABEL_TASKS
from oasst.db.base import UTCDateTime
from oasst.db.models import (
    CachedStats,
    Message,
    MessageReaction,
    MessageTreeState,
    Task,
    TextLabels,
    TrollStats,
    User,
    UserStats,
)
from oasst.protocol.collection import TreeState

USER_STATS_COUNTS = (
    "prompts",
    "replies_assistant",
    "replies_prompter",
    "labels_simple",
    "labels_full",
    "rankings_total",
    "rankings_good",
    "accepted_prompts",
    "accepted_replies_assistant",
    "accepted_replies_prompter",
    "reply_ranked_1",
    "reply_ranked_2",
    "reply_ranked_3",
)
TROLL_COUNTS = (
    "red_flags",
    "upvotes",
    "downvotes",
    "spam_prompts",
    "spam",
    "lang_mismach",
    "not_appropriate",
    "pii",
    "hate_speech",
    "sexual_content",
    "political_content",
)
TROLL_AVERAGES = ("quality", "humor", "toxicity", "violence", "helpfulness")
# troll_stats column -> the text label it counts (upstream's column keeps its misspelling).
TROLL_FLAG_LABELS = {
    "spam": "spam",
    "lang_mismach": "lang_mismatch",
    "not_appropriate": "not_appropriate",
    "pii": "pii",
    "hate_speech": "hate_speech",
    "sexual_content": "sexual_content",
    "political_content": "political_content",
}


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- system and tree counts ------------------------------------------------------------------------------


async def tree_state_counts(session: AsyncSession) -> dict[str, int]:
    """How many trees are in each state (states with no tree are absent)."""
    rows = await session.execute(
        select(MessageTreeState.state, func.count()).group_by(MessageTreeState.state)
    )
    return {state: int(count) for state, count in rows}


async def message_counts_by_deleted(session: AsyncSession) -> dict[bool, int]:
    rows = await session.execute(select(Message.deleted, func.count()).group_by(Message.deleted))
    return {bool(deleted): int(count) for deleted, count in rows}


async def active_messages_by_lang(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(Message.lang, func.count()).where(Message.deleted.is_(False)).group_by(Message.lang)
    )
    return {lang: int(count) for lang, count in rows}


async def root_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).where(Message.parent_id.is_(None))) or 0)


async def tree_message_counts(session: AsyncSession, *, only_active: bool) -> list[dict[str, Any]]:
    """Per tree: state, goal, deepest level, oldest and youngest message and the live message count."""
    query = (
        select(
            MessageTreeState.message_tree_id,
            MessageTreeState.state,
            func.max(Message.depth).label("depth"),
            func.min(Message.created_date).label("oldest"),
            func.max(Message.created_date).label("youngest"),
            func.count(Message.id).label("count"),
            MessageTreeState.goal_tree_size,
        )
        .join(Message, Message.message_tree_id == MessageTreeState.message_tree_id)
        .where(Message.deleted.is_(False))
        .group_by(MessageTreeState.message_tree_id, MessageTreeState.state, MessageTreeState.goal_tree_size)
        .order_by(func.min(Message.created_date), MessageTreeState.message_tree_id)
    )
    if only_active:
        query = query.where(MessageTreeState.active.is_(True))
    return [dict(row._mapping) for row in await session.execute(query)]


# --- cached stats ----------------------------------------------------------------------------------------


def _human_messages() -> list[ColumnElement[bool]]:
    return [Message.deleted.is_(False), Message.review_result.is_(True), Message.synthetic.is_(False)]


async def human_messages_by(session: AsyncSession, column: str) -> dict[str, int]:
    """Live, accepted, human-written messages counted by `lang` or `role`."""
    key = getattr(Message, column)
    rows = await session.execute(select(key, func.count()).where(*_human_messages()).group_by(key))
    return {value: int(count) for value, count in rows}


async def tree_states_by_lang(session: AsyncSession) -> list[dict[str, Any]]:
    """`[{lang, count, state}]`: trees by state and by the language of their root."""
    rows = await session.execute(
        select(Message.lang, func.count().label("count"), MessageTreeState.state)
        .join(Message, Message.id == MessageTreeState.message_tree_id)
        .group_by(Message.lang, MessageTreeState.state)
        .order_by(Message.lang, MessageTreeState.state)
    )
    return [{"lang": lang, "count": int(count), "state": state} for lang, count, state in rows]


async def users_accepted_tos(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count()).where(User.enabled.is_(True), User.tos_acceptance_date.is_not(None))
    )
    return int(count or 0)


async def save_cached(session: AsyncSession, name: str, stats: Any, now: datetime) -> None:
    """Insert or replace the cached statistic `name`."""
    dialect = postgresql if _is_postgres(session) else sqlite
    stmt = dialect.insert(CachedStats).values(name=name, modified_date=now, stats=stats)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"modified_date": stmt.excluded.modified_date, "stats": stmt.excluded.stats},
    )
    await session.execute(stmt)


async def cached(session: AsyncSession, name: str | None = None) -> list[CachedStats]:
    query = select(CachedStats).order_by(CachedStats.name)
    if name is not None:
        query = query.where(CachedStats.name == name)
    return list(await session.scalars(query))


# --- leaderboard refresh ---------------------------------------------------------------------------------


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _zeros(columns: tuple[str, ...], given: dict[str, ColumnElement[Any]]) -> list[ColumnElement[Any]]:
    """Every column of a UNION ALL branch, in order: the given ones, 0 for the others."""
    return [given.get(name, literal_column("0")).label(name) for name in columns]


def _since(column: Any, base_date: datetime | None) -> list[ColumnElement[bool]]:
    return [] if base_date is None else [column >= base_date]


def _json_uuid(session: AsyncSession, text: ColumnElement[str]) -> ColumnElement[Any]:
    """A UUID stored as text inside JSON, comparable with a Uuid column on either engine."""
    if _is_postgres(session):
        return cast(text, Uuid)
    # SQLite stores Uuid columns as 32 hex digits, JSON holds the dashed form.
    return func.replace(text, "-", "")


def _user_stats_parts(session: AsyncSession, base_date: datetime | None) -> Select[Any]:
    """One UNION ALL branch per source, each grouped by user: messages, label tasks, rankings, ranks."""
    is_root = Message.parent_id.is_(None)
    is_reply = Message.parent_id.is_not(None)
    accepted = Message.review_result.is_(True)
    assistant, prompter = Message.role == "assistant", Message.role == "prompter"
    messages = (
        select(
            Message.user_id.label("user_id"),
            *_zeros(
                USER_STATS_COUNTS,
                {
                    "prompts": _count_if(is_root),
                    "accepted_prompts": _count_if(and_(is_root, accepted)),
                    "replies_assistant": _count_if(and_(is_reply, assistant)),
                    "replies_prompter": _count_if(and_(is_reply, prompter)),
                    "accepted_replies_assistant": _count_if(and_(is_reply, assistant, accepted)),
                    "accepted_replies_prompter": _count_if(and_(is_reply, prompter, accepted)),
                },
            ),
        )
        .where(
            Message.deleted.is_(False),
            Message.user_id.is_not(None),
            *_since(Message.created_date, base_date),
        )
        .group_by(Message.user_id)
    )
    mode = Task.payload["mode"].as_string()
    labels = (
        select(
            Task.user_id.label("user_id"),
            *_zeros(
                USER_STATS_COUNTS,
                {"labels_simple": _count_if(mode == "simple"), "labels_full": _count_if(mode == "full")},
            ),
        )
        .where(
            Task.done.is_(True),
            Task.payload_type.in_(LABEL_TASKS),
            Task.user_id.is_not(None),
            *_since(Task.created_date, base_date),
        )
        .group_by(Task.user_id)
    )
    is_ranking = MessageReaction.payload_type == "RankingReactionPayload"
    rankings = (
        select(
            MessageReaction.user_id.label("user_id"),
            *_zeros(USER_STATS_COUNTS, {"rankings_total": func.count()}),
        )
        .where(is_ranking, *_since(MessageReaction.created_date, base_date))
        .group_by(MessageReaction.user_id)
    )
    branches = [messages, labels, rankings]
    for position in range(3):
        # Whose reply each ranking put first, second or third (individual rankings, not the consensus).
        ranked = _json_uuid(session, MessageReaction.payload[("ranked_message_ids", position)].as_string())
        branches.append(
            select(
                Message.user_id.label("user_id"),
                *_zeros(USER_STATS_COUNTS, {f"reply_ranked_{position + 1}": func.count()}),
            )
            .select_from(MessageReaction)
            .join(Message, Message.id == ranked)
            .where(is_ranking, Message.user_id.is_not(None), *_since(MessageReaction.created_date, base_date))
            .group_by(Message.user_id)
        )
    parts = union_all(*branches).subquery("parts")
    return select(
        parts.c.user_id, *(func.sum(parts.c[name]).label(name) for name in USER_STATS_COUNTS)
    ).group_by(parts.c.user_id)


@dataclass(frozen=True)
class _Frame:
    """The time frame a refresh rebuilds: its name, where it starts (None: ever) and when it was computed."""

    name: str
    base_date: datetime | None
    now: datetime


async def _replace_frame(
    session: AsyncSession,
    model: type[UserStats] | type[TrollStats],
    frame: _Frame,
    scored: Subquery,
    score: str,
    rank: ColumnElement[Any],
    counts: tuple[str, ...],
) -> int:
    """Replace the frame's rows of `model` with the `scored` ones and their ranks; returns the row count."""
    columns = ["user_id", "time_frame", "base_date", "modified_date", score, "rank", *counts]
    rows = select(
        scored.c.user_id,
        literal(frame.name),
        literal(frame.base_date, UTCDateTime()),
        literal(frame.now, UTCDateTime()),
        scored.c[score],
        rank,
        *(scored.c[name] for name in counts),
    )
    await session.execute(delete(model).where(model.time_frame == frame.name))
    result = await session.execute(insert(model).from_select(columns, rows))
    return int(result.rowcount)  # type: ignore[attr-defined]


def leader_score(c: Any) -> ColumnElement[int]:
    """The spec's score over the columns `c` of a stats row (integer division floors the 0.1 terms)."""
    return (
        c.prompts // 10
        + 4 * c.replies_assistant
        + c.replies_prompter
        + c.labels_simple
        + 2 * c.labels_full
        + c.rankings_total
        + c.rankings_good
        + c.accepted_prompts // 10
        + 4 * c.accepted_replies_assistant
        + c.accepted_replies_prompter
        + 9 * c.reply_ranked_1
        + 3 * c.reply_ranked_2
        + c.reply_ranked_3
    )


def _on_leaderboard() -> ColumnElement[bool]:
    return and_(User.enabled.is_(True), User.show_on_leaderboard.is_(True), User.deleted.is_(False))


async def refresh_user_stats(
    session: AsyncSession, time_frame: str, base_date: datetime | None, now: datetime
) -> int:
    """Rebuild every user_stats row of a frame, ranks included, in two statements; returns the row count."""
    totals = _user_stats_parts(session, base_date).subquery("totals")
    shown = case((_on_leaderboard(), 1), else_=0)
    scored = (
        select(totals, leader_score(totals.c).label("leader_score"), shown.label("shown"))
        .join(User, User.id == totals.c.user_id)
        .subquery("scored")
    )
    rank = case(
        (
            scored.c.shown == 1,
            func.row_number().over(
                partition_by=scored.c.shown, order_by=(scored.c.leader_score.desc(), scored.c.user_id)
            ),
        ),
        else_=null(),
    )
    frame = _Frame(time_frame, base_date, now)
    return await _replace_frame(session, UserStats, frame, scored, "leader_score", rank, USER_STATS_COUNTS)


def _troll_parts(base_date: datetime | None) -> Select[Any]:
    """UNION ALL of emoji counts, spam prompts and text labels on each user's messages, grouped by user."""
    no_averages = [cast(null(), Float).label(name) for name in TROLL_AVERAGES]

    def emoji(code: str) -> ColumnElement[int]:
        return func.sum(func.coalesce(Message.emojis[code].as_integer(), 0))

    emojis = (
        select(
            Message.user_id.label("user_id"),
            *_zeros(
                TROLL_COUNTS,
                {"red_flags": emoji("red_flag"), "upvotes": emoji("+1"), "downvotes": emoji("-1")},
            ),
            *no_averages,
        )
        .where(
            Message.deleted.is_(False),
            Message.user_id.is_not(None),
            *_since(Message.created_date, base_date),
        )
        .group_by(Message.user_id)
    )
    spam_prompts = (
        select(
            Message.user_id.label("user_id"),
            *_zeros(TROLL_COUNTS, {"spam_prompts": func.count()}),
            *no_averages,
        )
        .join(MessageTreeState, MessageTreeState.message_tree_id == Message.id)
        .where(
            Message.parent_id.is_(None),
            Message.user_id.is_not(None),
            MessageTreeState.state == TreeState.aborted_low_grade,
            *_since(Message.created_date, base_date),
        )
        .group_by(Message.user_id)
    )

    def label(name: str) -> ColumnElement[float]:
        return TextLabels.labels[name].as_float()

    # Label values lie in [0, 1]; a flag counts when it rounds to 1, the same on both engines.
    labels = (
        select(
            Message.user_id.label("user_id"),
            *_zeros(
                TROLL_COUNTS,
                {column: _count_if(label(name) >= 0.5) for column, name in TROLL_FLAG_LABELS.items()},
            ),
            *(func.avg(label(name)).label(name) for name in TROLL_AVERAGES),
        )
        .select_from(TextLabels)
        .join(Message, Message.id == TextLabels.message_id)
        .where(
            Message.deleted.is_(False),
            Message.user_id.is_not(None),
            *_since(TextLabels.created_date, base_date),
        )
        .group_by(Message.user_id)
    )
    parts = union_all(emojis, spam_prompts, labels).subquery("parts")
    return select(
        parts.c.user_id,
        *(func.sum(parts.c[name]).label(name) for name in TROLL_COUNTS),
        # Only the label branch has averages; the others contribute NULL.
        *(func.max(parts.c[name]).label(name) for name in TROLL_AVERAGES),
    ).group_by(parts.c.user_id)


def troll_score(c: Any) -> ColumnElement[int]:
    return (
        3 * c.red_flags
        - c.upvotes
        + c.downvotes
        + c.spam_prompts
        + c.lang_mismach
        + c.not_appropriate
        + c.pii
        + c.hate_speech
        + c.sexual_content
        + c.political_content
    )


async def refresh_troll_stats(
    session: AsyncSession, time_frame: str, base_date: datetime | None, now: datetime
) -> int:
    """Rebuild every troll_stats row of a frame, ranked over all users; returns the row count."""
    totals = _troll_parts(base_date).subquery("totals")
    scored = select(totals, troll_score(totals.c).label("troll_score")).subquery("scored")
    rank = func.row_number().over(order_by=(scored.c.troll_score.desc(), scored.c.user_id))
    frame = _Frame(time_frame, base_date, now)
    counts = (*TROLL_COUNTS, *TROLL_AVERAGES)
    return await _replace_frame(session, TrollStats, frame, scored, "troll_score", rank, counts)


# --- leaderboard reads -----------------------------------------------------------------------------------


def _board(time_frame: str) -> Select[UserStats, User]:
    """The shown rows of a frame: ranked users first by rank (users shown since the refresh last)."""
    return (
        select(UserStats, User)
        .join(User, User.id == UserStats.user_id)
        .where(UserStats.time_frame == time_frame, _on_leaderboard())
        .order_by(UserStats.rank.is_(None), UserStats.rank, UserStats.leader_score.desc(), UserStats.user_id)
    )


async def leaderboard(session: AsyncSession, time_frame: str, limit: int) -> list[tuple[UserStats, User]]:
    rows = await session.execute(_board(time_frame).limit(limit))
    return [(stats, user) for stats, user in rows]


async def user_stats(session: AsyncSession, user_id: uuid.UUID) -> dict[str, UserStats]:
    rows = await session.scalars(select(UserStats).where(UserStats.user_id == user_id))
    return {row.time_frame: row for row in rows}


async def window(
    session: AsyncSession, time_frame: str, rank: int, size: int
) -> list[tuple[UserStats, User]]:
    """`size` shown, ranked rows around `rank`, the window moved inward at either end of the board."""
    ranked = [UserStats.time_frame == time_frame, UserStats.rank.is_not(None), _on_leaderboard()]
    counts = select(func.count()).select_from(UserStats).join(User, User.id == UserStats.user_id)
    above = int(await session.scalar(counts.where(*ranked, UserStats.rank < rank)) or 0)
    total = int(await session.scalar(counts.where(*ranked)) or 0)
    offset = max(0, min(above - size // 2, total - size))
    rows = await session.execute(
        select(UserStats, User)
        .join(User, User.id == UserStats.user_id)
        .where(*ranked)
        .order_by(UserStats.rank)
        .offset(offset)
        .limit(size)
    )
    return [(stats, user) for stats, user in rows]


async def trollboard(
    session: AsyncSession, time_frame: str, limit: int, enabled: bool | None
) -> list[tuple[TrollStats, User]]:
    query = (
        select(TrollStats, User)
        .join(User, User.id == TrollStats.user_id)
        .where(TrollStats.time_frame == time_frame)
        .order_by(TrollStats.rank.is_(None), TrollStats.rank, TrollStats.user_id)
        .limit(limit)
    )
    if enabled is not None:
        query = query.where(User.enabled.is_(enabled))
    return [(stats, user) for stats, user in await session.execute(query)]
