"""Message listing shapes (query parameters, filters, keyset bounds, cursor pages); edits and history."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from pydantic import StringConstraints

from oasst.errors import OasstError
from oasst.protocol import collection as wire
from oasst.protocol.collection import ErrorCode, Timestamp

T = TypeVar("T")
# +1 and -1 exclude each other: each maps to the one it takes back.
THUMBS = {"+1": "-1", "-1": "+1"}
_CURSOR = re.compile(r"^([0-9a-fA-F-]{32,36})\$(.+)$")


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


MaxCount = Annotated[int, Query(gt=0, le=1000)]
Lang = Annotated[str | None, Query(max_length=32)]
Cursor = Annotated[str | None, Query(max_length=128)]


class _ListingFlags:
    """The flags every message listing filters by; the parameter classes below declare them."""

    only_roots: bool
    include_deleted: bool
    lang: str | None

    def where(self, **narrowing: Any) -> MessageFilter:
        """The listing's filter: these flags and the route's own conditions (user_id, api_client_id, ...)."""
        return MessageFilter(
            only_roots=self.only_roots, include_deleted=self.include_deleted, lang=self.lang, **narrowing
        )


@dataclass(frozen=True)
class MessageListingParams(_ListingFlags):
    """Query parameters of the listings by creation date (a user's messages, GET /messages/)."""

    max_count: MaxCount = 10
    start_date: datetime | None = None
    end_date: datetime | None = None
    only_roots: bool = False
    desc: bool = True
    include_deleted: bool = False
    lang: Lang = None


@dataclass(frozen=True)
class AllMessagesListingParams(MessageListingParams):
    """GET /messages/ calls the deleted flag `allow_deleted`, as upstream does."""

    include_deleted: Annotated[bool, Query(alias="allow_deleted")] = False


@dataclass(frozen=True)
class MessagePageParams(_ListingFlags):
    """Query parameters of the cursor pages (a user's messages/cursor, GET /messages/cursor)."""

    before: Cursor = None
    after: Cursor = None
    only_roots: bool = False
    include_deleted: bool = False
    max_count: MaxCount = 10
    desc: bool = False
    lang: Lang = None


MessageListingDep = Annotated[MessageListingParams, Depends()]
AllMessagesListingDep = Annotated[AllMessagesListingParams, Depends()]
MessagePageDep = Annotated[MessagePageParams, Depends()]


@dataclass(frozen=True)
class Keyset:
    """Bounds on the (created_date, id) sort key; an id makes its date bound strict on equal dates."""

    gte_date: datetime | None = None
    gt_id: uuid.UUID | None = None
    lte_date: datetime | None = None
    lt_id: uuid.UUID | None = None


def as_utc(value: datetime | None) -> datetime | None:
    """A query date in UTC; a date without offset is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_cursor(raw: str | None) -> tuple[datetime | None, uuid.UUID | None]:
    """`<uuid>$<iso date>` or a bare ISO date; anything else is 400/101."""
    if not raw:
        return None, None
    match = _CURSOR.match(raw)
    id_part, date_part = (match[1], match[2]) if match else (None, raw)
    try:
        row_id = uuid.UUID(id_part) if id_part else None
        try:
            date = datetime.fromisoformat(date_part)
        except ValueError:
            # An unencoded "+00:00" in a query string arrives as " 00:00".
            head, sep, tail = date_part.rpartition(" ")
            if not sep:
                raise
            date = datetime.fromisoformat(f"{head}+{tail}")
    except ValueError:
        raise OasstError("Invalid cursor value", ErrorCode.INVALID_CURSOR_VALUE) from None
    return as_utc(date), row_id


def cursor(row_id: uuid.UUID, created_date: datetime) -> str:
    return f"{row_id}${created_date.isoformat()}"


@dataclass(frozen=True)
class PageQuery:
    """What to fetch for one cursor page (§3.6): the bounds, the query direction and the row limit."""

    keyset: Keyset
    desc: bool
    limit: int


def page_query(before: str | None, after: str | None, *, max_count: int, desc: bool) -> PageQuery:
    before_date, before_id = parse_cursor(before)
    after_date, after_id = parse_cursor(after)
    if desc:
        keyset = Keyset(gte_date=before_date, gt_id=before_id, lte_date=after_date, lt_id=after_id)
        query_desc = not (before is not None and after is None)
    else:
        keyset = Keyset(gte_date=after_date, gt_id=after_id, lte_date=before_date, lt_id=before_id)
        query_desc = before is not None and after is None
    # One extra row tells whether there is more, unless the page is closed on both sides.
    limit = max_count + 1 if before is None or after is None else max_count
    return PageQuery(keyset, query_desc, limit)


def page_cut(
    rows: list[T],
    query: PageQuery,
    cursor_of: Callable[[T], str],
    *,
    before: str | None,
    after: str | None,
    max_count: int,
    desc: bool,
) -> tuple[list[T], str | None, str | None]:
    """The page's items in display order with its `prev` and `next` cursors."""
    more = len(rows) > max_count
    rows = rows[:max_count]
    if desc != query.desc:
        rows.reverse()
    prev = next_ = None
    if rows:
        if (more and before is not None) or after is not None:
            prev = cursor_of(rows[0])
        if more or before is not None:
            next_ = cursor_of(rows[-1])
    else:
        # An empty page echoes the dates it was asked with, so the client can turn back.
        after_date, _ = parse_cursor(after)
        before_date, _ = parse_cursor(before)
        if after_date is not None:
            prev = after_date.isoformat()
        if before_date is not None:
            next_ = before_date.isoformat()
    return rows, prev, next_


# Upstream takes any length; the configurable MESSAGE_SIZE_LIMIT is checked by the service (400/1008).
MessageText = Annotated[str, StringConstraints(max_length=100_000)]


class MessageEditRequest(wire.WireModel):
    """POST /messages/{id}/edit: a moderator (`user`) replaces the text of a message."""

    user: wire.User
    new_content: MessageText


class MessageRevision(wire.WireModel):
    """One stored version of a message's text (GET /messages/{id}/history)."""

    id: uuid.UUID
    text: str
    message_id: uuid.UUID
    user_id: uuid.UUID | None = None
    created_date: Timestamp | None = None
    user_is_author: bool | None = None
