"""Local accounts: people who sign in to oasst itself (web UI, inference API) with a password."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, new_id, utcnow


class LocalAccount(Base):
    """A username and a salted scrypt hash; usernames are stored lower-cased, so unique in any case."""

    __tablename__ = "local_account"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    # "scrypt$n$r$p$salt$hash": the parameters travel with the hash, so they can be raised later.
    password_hash: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="user")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The hash of the course gateway key the person joined with: that key's account pays for their chat
    # replies while the key is current (a new key or a closed account ends it).
    gateway_key_hash: Mapped[str | None] = mapped_column(String(64))
