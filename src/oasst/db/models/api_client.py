"""API clients: the frontends (website, bots, scripts) that call /api/v1 with a key."""

from __future__ import annotations

import uuid

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, new_id


class ApiClient(Base):
    __tablename__ = "api_client"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # sha256 hex of the key: the key itself is shown once and never stored.
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(256), default="")
    admin_email: Mapped[str | None] = mapped_column(String(256))
    enabled: Mapped[bool] = mapped_column(default=True)
    trusted: Mapped[bool] = mapped_column(default=False)
    frontend_type: Mapped[str] = mapped_column(String(256), default="")
