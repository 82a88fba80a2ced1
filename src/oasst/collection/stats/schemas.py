"""Wire models of /stats, /leaderboards, /trollboards and user stats, named and ordered as upstream's."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Query

from oasst.protocol.collection import Timestamp, WireModel


class UserStatsTimeFrame(enum.StrEnum):
    day = "day"
    week = "week"
    month = "month"
    total = "total"


@dataclass(frozen=True)
class BoardParams:
    """Parameters of a leaderboard: its frame (in the path) and how many rows."""

    time_frame: UserStatsTimeFrame
    max_count: Annotated[int, Query(gt=0, le=10_000)] = 100


@dataclass(frozen=True)
class TrollboardParams(BoardParams):
    """The trollboard's, which can keep to enabled or to disabled users."""

    enabled: bool | None = None


BoardDep = Annotated[BoardParams, Depends()]
TrollboardDep = Annotated[TrollboardParams, Depends()]


class CachedStatsName(enum.StrEnum):
    human_messages_by_lang = "human_messages_by_lang"
    human_messages_by_role = "human_messages_by_role"
    message_trees_by_state = "message_trees_by_state"
    message_trees_states_by_lang = "message_trees_states_by_lang"
    users_accepted_tos = "users_accepted_tos"


class _BoardRow(WireModel):
    """What every leaderboard and trollboard row starts with: its rank and its user."""

    rank: int | None = None
    user_id: UUID
    highlighted: bool = False
    username: str
    auth_method: str
    display_name: str


class UserScore(_BoardRow):
    leader_score: int = 0
    level: int = 0
    base_date: Timestamp | None = None
    modified_date: Timestamp | None = None
    prompts: int = 0
    replies_assistant: int = 0
    replies_prompter: int = 0
    labels_simple: int = 0
    labels_full: int = 0
    rankings_total: int = 0
    rankings_good: int = 0
    accepted_prompts: int = 0
    accepted_replies_assistant: int = 0
    accepted_replies_prompter: int = 0
    reply_ranked_1: int = 0
    reply_ranked_2: int = 0
    reply_ranked_3: int = 0
    streak_last_day_date: Timestamp | None = None
    streak_days: int | None = None
    last_activity_date: Timestamp | None = None


class LeaderboardStats(WireModel):
    time_frame: str
    last_updated: Timestamp
    leaderboard: list[UserScore]


class TrollScore(_BoardRow):
    last_activity_date: Timestamp | None = None
    enabled: bool
    deleted: bool
    show_on_leaderboard: bool
    troll_score: int = 0
    base_date: Timestamp | None = None
    modified_date: Timestamp | None = None
    red_flags: int = 0
    upvotes: int = 0
    downvotes: int = 0
    spam_prompts: int = 0
    quality: float | None = None
    humor: float | None = None
    toxicity: float | None = None
    violence: float | None = None
    helpfulness: float | None = None
    spam: int = 0
    lang_mismach: int = 0
    not_appropriate: int = 0
    pii: int = 0
    hate_speech: int = 0
    sexual_content: int = 0
    political_content: int = 0


class TrollboardStats(WireModel):
    time_frame: str
    last_updated: Timestamp
    trollboard: list[TrollScore]


class SystemStats(WireModel):
    all: int = 0
    active: int = 0
    active_by_lang: dict[str, int] = {}
    deleted: int = 0
    message_trees: int = 0


class TreeMessageCountStats(WireModel):
    message_tree_id: UUID
    state: str
    depth: int
    oldest: Timestamp
    youngest: Timestamp
    count: int
    goal_tree_size: int


class TreeManagerStats(WireModel):
    state_counts: dict[str, int]
    message_counts: list[TreeMessageCountStats]


class CachedStatsResponse(WireModel):
    name: CachedStatsName | str
    last_updated: Timestamp
    stats: dict[str, Any] | list[Any]


class AllCachedStatsResponse(WireModel):
    stats_by_name: dict[str, CachedStatsResponse]
