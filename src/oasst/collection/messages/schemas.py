"""Internal query shapes of the message listings: the filters and the keyset bounds of a page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class MessageFilter:
    """Which messages a listing covers (every field narrows; None means no condition)."""

    user_id: uuid.UUID | None = None
    auth_method: str | None = None
    username: str | None = None
    api_client_id: uuid.UUID | None = None
    only_roots: bool = False
    include_deleted: bool = False
    lang: str | None = None
    search_query: str | None = None


@dataclass(frozen=True)
class Keyset:
    """Bounds on the (created_date, id) sort key; an id makes its date bound strict on equal dates."""

    gte_date: datetime | None = None
    gt_id: uuid.UUID | None = None
    lte_date: datetime | None = None
    lt_id: uuid.UUID | None = None
