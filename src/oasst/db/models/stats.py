"""Per-user leaderboard statistics for each time frame."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, utcnow


class UserStats(Base):
    __tablename__ = "user_stats"

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
