"""Tasks handed out to frontend users, with their ack, answer and expiry."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, utcnow


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_user_created", "user_id", "created_date"),
        Index("ix_task_parent_created", "parent_message_id", "created_date"),
        Index("ix_task_client_frontend_id", "api_client_id", "frontend_message_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_date: Mapped[datetime] = mapped_column(default=utcnow)
    expiry_date: Mapped[datetime | None]
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    payload_type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]]
    api_client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"))
    ack: Mapped[bool | None]
    done: Mapped[bool] = mapped_column(default=False)
    skipped: Mapped[bool] = mapped_column(default=False)
    skip_reason: Mapped[str | None] = mapped_column(String(512))
    frontend_message_id: Mapped[str | None] = mapped_column(String(200))
    message_tree_id: Mapped[uuid.UUID | None]
    parent_message_id: Mapped[uuid.UUID | None]
    collective: Mapped[bool] = mapped_column(default=False)
    lang: Mapped[str | None] = mapped_column(String(32))
    # sha256 of the interaction that completed the task: a replay of it is answered without a second write.
    interaction_digest: Mapped[str | None] = mapped_column(String(64))
