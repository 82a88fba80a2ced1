"""Frontend users: people as a frontend names them, keyed by (api client, auth method, username)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, new_id, utcnow


class User(Base):
    __tablename__ = "user"
    __table_args__ = (UniqueConstraint("api_client_id", "username", "auth_method"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(128))
    auth_method: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(256))
    created_date: Mapped[datetime] = mapped_column(default=utcnow)
    api_client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"))
    enabled: Mapped[bool] = mapped_column(default=True)
    notes: Mapped[str] = mapped_column(String(1024), default="")
    deleted: Mapped[bool] = mapped_column(default=False)
    show_on_leaderboard: Mapped[bool] = mapped_column(default=True)
    streak_last_day_date: Mapped[datetime | None] = mapped_column(default=utcnow)
    streak_days: Mapped[int | None]
    last_activity_date: Mapped[datetime | None]
    tos_acceptance_date: Mapped[datetime | None]
