"""Tables of the inference API: its users and refresh tokens, chats, chat messages, their reports and draft
choices, and worker keys."""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, JSONType, new_id, utcnow


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (version 7): chats and messages sort by id as they sort by creation."""
    millis = time.time_ns() // 1_000_000
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def uuid7_time(value: uuid.UUID) -> float:
    """When a UUIDv7 was made (Unix seconds, millisecond precision)."""
    return (value.int >> 80) / 1000


class InferenceUser(Base):
    """A person of the chat API, keyed by (provider, provider account id); the id is supplied or random."""

    __tablename__ = "inference_user"
    __table_args__ = (UniqueConstraint("provider", "provider_account_id"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    provider_account_id: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(256))
    deleted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RefreshToken(Base):
    __tablename__ = "inference_refresh_token"

    # sha256 hex of the token as handed out, so a presented token is looked up by the same hash.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("inference_user.id", ondelete="CASCADE"), index=True)
    enabled: Mapped[bool] = mapped_column(default=True)


class Chat(Base):
    __tablename__ = "inference_chat"
    __table_args__ = (Index("ix_inference_chat_user_id_id", "user_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[str] = mapped_column(ForeignKey("inference_user.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(default=utcnow)
    title: Mapped[str | None] = mapped_column(String(100))
    active_thread_tail_message_id: Mapped[uuid.UUID | None]
    hidden: Mapped[bool] = mapped_column(default=False)
    allow_data_use: Mapped[bool] = mapped_column(default=True)


class ChatMessage(Base):
    """A turn of a chat; assistant turns carry their work (parameters, worker, state, timing)."""

    __tablename__ = "inference_message"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    chat_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inference_chat.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[uuid.UUID | None]
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    content: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), index=True)
    score: Mapped[int] = mapped_column(default=0)
    work_parameters: Mapped[dict[str, Any] | None]
    work_begin_at: Mapped[datetime | None]
    work_end_at: Mapped[datetime | None]
    worker_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("inference_worker.id", ondelete="SET NULL")
    )
    worker_compat_hash: Mapped[str | None] = mapped_column(String(512))
    worker_config: Mapped[dict[str, Any] | None]
    used_plugin: Mapped[dict[str, Any] | None]


class ChatReport(Base):
    """A user's report of an assistant message (spam, offensive, feedback) with its reason."""

    __tablename__ = "inference_report"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inference_message.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("inference_user.id", ondelete="CASCADE"), index=True)
    report_type: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageEvaluation(Base):
    """Which of several assistant drafts a user picked, and the ones passed over."""

    __tablename__ = "inference_message_evaluation"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    chat_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inference_chat.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("inference_user.id", ondelete="CASCADE"))
    selected_message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inference_message.id", ondelete="CASCADE"), index=True
    )
    inferior_message_ids: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(Base):
    """A worker key, minted by an admin; the key itself is shown once and only its sha256 is kept."""

    __tablename__ = "inference_worker"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(256))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    trusted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
