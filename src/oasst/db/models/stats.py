"""Per-user leaderboard and trollboard statistics for each time frame, and the cached system statistics."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, JSONType, utcnow


class UserStats(Base):
    __tablename__ = "user_stats"
    __table_args__ = (Index("ix_user_stats_time_frame_rank", "time_frame", "rank"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    time_frame: Mapped[str] = mapped_column(String(32), primary_key=True)
    base_date: Mapped[datetime | None]
    modified_date: Mapped[datetime] = mapped_column(default=utcnow)
    leader_score: Mapped[int] = mapped_column(default=0)
    rank: Mapped[int | None]
    prompts: Mapped[int] = mapped_column(default=0)
    replies_assistant: Mapped[int] = mapped_column(default=0)
    replies_prompter: Mapped[int] = mapped_column(default=0)
    labels_simple: Mapped[int] = mapped_column(default=0)
    labels_full: Mapped[int] = mapped_column(default=0)
    rankings_total: Mapped[int] = mapped_column(default=0)
    rankings_good: Mapped[int] = mapped_column(default=0)
    accepted_prompts: Mapped[int] = mapped_column(default=0)
    accepted_replies_assistant: Mapped[int] = mapped_column(default=0)
    accepted_replies_prompter: Mapped[int] = mapped_column(default=0)
    reply_ranked_1: Mapped[int] = mapped_column(default=0)
    reply_ranked_2: Mapped[int] = mapped_column(default=0)
    reply_ranked_3: Mapped[int] = mapped_column(default=0)


class TrollStats(Base):
    """What others thought of a user's messages in a time frame: flags, votes and labels."""

    __tablename__ = "troll_stats"
    __table_args__ = (Index("ix_troll_stats_time_frame_rank", "time_frame", "rank"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    time_frame: Mapped[str] = mapped_column(String(32), primary_key=True)
    base_date: Mapped[datetime | None]
    modified_date: Mapped[datetime] = mapped_column(default=utcnow)
    troll_score: Mapped[int] = mapped_column(default=0)
    rank: Mapped[int | None]
    red_flags: Mapped[int] = mapped_column(default=0)
    upvotes: Mapped[int] = mapped_column(default=0)
    downvotes: Mapped[int] = mapped_column(default=0)
    spam_prompts: Mapped[int] = mapped_column(default=0)
    quality: Mapped[float | None]
    humor: Mapped[float | None]
    toxicity: Mapped[float | None]
    violence: Mapped[float | None]
    helpfulness: Mapped[float | None]
    spam: Mapped[int] = mapped_column(default=0)
    # Upstream's spelling: the column name is part of the wire format (TrollScore.lang_mismach).
    lang_mismach: Mapped[int] = mapped_column(default=0)
    not_appropriate: Mapped[int] = mapped_column(default=0)
    pii: Mapped[int] = mapped_column(default=0)
    hate_speech: Mapped[int] = mapped_column(default=0)
    sexual_content: Mapped[int] = mapped_column(default=0)
    political_content: Mapped[int] = mapped_column(default=0)


class CachedStats(Base):
    """A named statistic computed periodically (a JSON object or list) and served as is."""

    __tablename__ = "cached_stats"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    modified_date: Mapped[datetime] = mapped_column(default=utcnow)
    stats: Mapped[Any] = mapped_column(JSONType)
