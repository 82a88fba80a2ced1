"""Wire models of /api/v1/admin: API clients, settings, purge results, flagged messages, user merges."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from oasst.collection.stats.schemas import SystemStats
from oasst.protocol.collection import CursorPage, Timestamp, WireModel

Text256 = Annotated[str, StringConstraints(max_length=256)]


class CreateApiClientRequest(WireModel):
    description: Text256
    frontend_type: Text256
    trusted: bool = False
    admin_email: Text256 | None = None


class PublicSettings(WireModel):
    """Subset of backend settings which can be retrieved by untrusted API clients."""

    PROJECT_NAME: str
    API_V1_STR: str
    MESSAGE_SIZE_LIMIT: int
    DEBUG_USE_SEED_DATA: bool
    DEBUG_ALLOW_SELF_LABELING: bool
    DEBUG_SKIP_EMBEDDING_COMPUTATION: bool
    DEBUG_SKIP_TOXICITY_CALCULATION: bool
    DEBUG_DATABASE_ECHO: bool
    USER_STATS_INTERVAL_DAY: int
    USER_STATS_INTERVAL_WEEK: int
    USER_STATS_INTERVAL_MONTH: int
    USER_STATS_INTERVAL_TOTAL: int


class PurgeResultModel(WireModel):
    before: SystemStats
    after: SystemStats
    preview: bool
    duration: float


class FlaggedMessageResponse(WireModel):
    message_id: uuid.UUID
    processed: bool
    created_date: Timestamp | None = None


class FlaggedMessagePage(CursorPage[FlaggedMessageResponse]):
    pass


class MergeUsersRequest(WireModel):
    destination_user_id: uuid.UUID
    source_user_ids: Annotated[list[uuid.UUID], Field(max_length=1000)]
