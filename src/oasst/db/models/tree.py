"""The state-machine row of each conversation tree (keyed by its root message id)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base


class MessageTreeState(Base):
    __tablename__ = "message_tree_state"
    __table_args__ = (Index("ix_message_tree_state_state_lang", "state", "lang"),)

    message_tree_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), primary_key=True
    )
    goal_tree_size: Mapped[int]
    max_depth: Mapped[int]
    max_children_count: Mapped[int]
    state: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool]
    origin: Mapped[str | None] = mapped_column(String(1024))
    won_prompt_lottery_date: Mapped[datetime | None]
    lang: Mapped[str] = mapped_column(String(32))
