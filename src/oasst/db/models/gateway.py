"""Tables of the course gateway: accounts (hashed keys, token budgets), their users, chats, messages and the
charges that reserve and then settle each call's tokens."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, utcnow


class GatewayAccount(Base):
    """A billing entity (a course team): one key, a budget, the tokens used and those reserved in flight."""

    __tablename__ = "gateway_account"
    __table_args__ = (
        CheckConstraint("budget >= 0", name="budget_not_negative"),
        CheckConstraint("usage >= 0", name="usage_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    # sha256 hex of the key (as API client keys): the key is shown at creation or rotation only.
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    budget: Mapped[int] = mapped_column(BigInteger)
    course: Mapped[str] = mapped_column(String(80))
    usage: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]


class GatewayUser(Base):
    """A person (a student, by code) who may belong to an account."""

    __tablename__ = "gateway_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("gateway_account.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]


class GatewayChat(Base):
    """A conversation of an account; `model` None means the gateway's default model."""

    __tablename__ = "gateway_chat"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    account_id: Mapped[int] = mapped_column(ForeignKey("gateway_account.id"), index=True)
    model_type: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    instruction_prefix: Mapped[str] = mapped_column(Text)
    user_prefix: Mapped[str] = mapped_column(Text)
    assistant_prefix: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]


class GatewayMessage(Base):
    """A turn of a chat: role `system` (an instruction), `user` or `assistant` (with its args and usage)."""

    __tablename__ = "gateway_message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("gateway_chat.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    model_args: Mapped[dict[str, Any]]
    usage: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]


class GatewayCharge(Base):
    """One call's tokens: `reserved` while it runs (its upper bound held on the account), then `settled` with
    the real counts and the UTC day they count for. A call that fails leaves no row."""

    __tablename__ = "gateway_charge"
    __table_args__ = (
        Index("ix_gateway_charge_account_id_state_created_at", "account_id", "state", "created_at"),
        Index("ix_gateway_charge_day_account_id", "day", "account_id"),
        # Rows of released reservations are deleted: SQLite must not hand their ids out again, or a late
        # settlement of a lapsed reservation would find another call's row.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("gateway_account.id"))
    state: Mapped[str] = mapped_column(String(16), default="reserved")
    # "chat" (the Parrot API), "v1" (OpenAI-compatible) or "inference" (a chat reply of a person whose local
    # account is linked to the account: the web UI's chat or the inference API)
    source: Mapped[str] = mapped_column(String(16))
    reserved_tokens: Mapped[int] = mapped_column(BigInteger)
    # While an "inference" charge is reserved: the prompt's estimate, charged if the worker counts none.
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    charged_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    day: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The chat reply an "inference" charge is for: it settles when the worker finishes that message. No
    # foreign key: the charge outlives the message (a chat deleted mid-reply still pays for the reply).
    inference_message_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
