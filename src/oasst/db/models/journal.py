"""An append-only journal of what contributors did (replies, rankings, ratings)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, new_id, utcnow


class Journal(Base):
    __tablename__ = "journal"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_date: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[uuid.UUID | None]
    message_id: Mapped[uuid.UUID | None]
    api_client_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(200))
    event_payload: Mapped[dict[str, Any]]
