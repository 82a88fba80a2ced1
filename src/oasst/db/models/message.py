"""Messages of conversation trees and everything attached to one: emojis, labels, rankings, revisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, new_id, utcnow


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("api_client_id", "frontend_message_id"),
        Index("ix_message_tree", "message_tree_id"),
        Index("ix_message_parent", "parent_id"),
        Index("ix_message_user_created", "user_id", "created_date"),
        Index("ix_message_created_id", "created_date", "id"),
        # Only the deleted few: counting them (the admin status page) reads this, not the table. On SQLite the
        # condition is written as SQLAlchemy writes it in queries there, or SQLite would not use the index.
        Index("ix_message_deleted", "id", postgresql_where=text("deleted"), sqlite_where=text("deleted = 1")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    parent_id: Mapped[uuid.UUID | None]
    message_tree_id: Mapped[uuid.UUID]
    task_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    role: Mapped[str] = mapped_column(String(128))
    api_client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"))
    frontend_message_id: Mapped[str] = mapped_column(String(200))
    created_date: Mapped[datetime] = mapped_column(default=utcnow)
    text: Mapped[str] = mapped_column(Text)
    lang: Mapped[str] = mapped_column(String(32), default="en")
    depth: Mapped[int] = mapped_column(default=0)
    children_count: Mapped[int] = mapped_column(default=0)
    deleted: Mapped[bool] = mapped_column(default=False)
    review_count: Mapped[int] = mapped_column(default=0)
    review_result: Mapped[bool | None]
    ranking_count: Mapped[int] = mapped_column(default=0)
    rank: Mapped[int | None]
    synthetic: Mapped[bool] = mapped_column(default=False)
    edited: Mapped[bool] = mapped_column(default=False)
    model_name: Mapped[str | None] = mapped_column(String(1024))
    emojis: Mapped[dict[str, Any] | None]


class MessageEmoji(Base):
    __tablename__ = "message_emoji"

    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), primary_key=True, index=True)
    emoji: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_date: Mapped[datetime] = mapped_column(default=utcnow)


class TextLabels(Base):
    __tablename__ = "text_labels"
    __table_args__ = (Index("ix_text_labels_message_user", "message_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    created_date: Mapped[datetime] = mapped_column(default=utcnow)
    api_client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"))
    text: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"))
    labels: Mapped[dict[str, Any]]
    task_id: Mapped[uuid.UUID | None] = mapped_column(index=True)


class MessageReaction(Base):
    """A ranking (or legacy rating) given through a task, stored on the ranked replies' parent."""

    __tablename__ = "message_reaction"

    task_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), primary_key=True)
    created_date: Mapped[datetime] = mapped_column(default=utcnow)
    payload_type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]]
    api_client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"))
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), index=True
    )


class MessageRevision(Base):
    __tablename__ = "message_revision"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    text: Mapped[str] = mapped_column(Text)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    created_date: Mapped[datetime] = mapped_column(default=utcnow)


class FlaggedMessage(Base):
    __tablename__ = "flagged_message"

    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), primary_key=True
    )
    processed: Mapped[bool] = mapped_column(default=False)
    created_date: Mapped[datetime] = mapped_column(default=utcnow, index=True)
