"""People who sign in to the web UI through an OAuth provider: their name there and their role here."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from oasst.db.base import Base, new_id, utcnow


class OAuthAccount(Base):
    """An account at Discord, GitHub or Google that signed in here, keyed as the provider names it. The row
    is made at the first sign-in; the name is the provider's, as of the latest sign-in."""

    __tablename__ = "oauth_account"
    __table_args__ = (UniqueConstraint("provider", "account_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="user")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    signed_in_at: Mapped[datetime] = mapped_column(default=utcnow)
