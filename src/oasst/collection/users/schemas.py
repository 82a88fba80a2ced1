"""Shapes of the user listings: query parameters, filter and keyset bounds, the page of /users/cursor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from oasst.protocol.collection import CursorPage, FrontEndUser

SearchText = Annotated[str | None, Query(max_length=256)]
AuthMethod = Annotated[str | None, Query(max_length=128)]
UserCount = Annotated[int, Query(gt=0, le=10_000)]


class FrontEndUserPage(CursorPage[FrontEndUser]):
    pass


@dataclass(frozen=True)
class UserFilter:
    """Which users a listing covers (None: no condition); `search_text` matches inside the sort key."""

    api_client_id: uuid.UUID | None = None
    auth_method: str | None = None
    search_text: str | None = None


@dataclass(frozen=True)
class UserKeyset:
    """Bounds on the (sort key, id) order; an id makes its key bound strict on equal keys."""

    gte_key: str | None = None
    gt_id: uuid.UUID | None = None
    lte_key: str | None = None
    lt_id: uuid.UUID | None = None


@dataclass(frozen=True)
class UserListingParams:
    """Query parameters of a keyset slice of users by username (/users/by_username, /frontend_users/)."""

    api_client_id: uuid.UUID | None = None
    gte_key: Annotated[str | None, Query(alias="gte_username", max_length=256)] = None
    gt_id: uuid.UUID | None = None
    lte_key: Annotated[str | None, Query(alias="lte_username", max_length=256)] = None
    lt_id: uuid.UUID | None = None
    search_text: SearchText = None
    auth_method: AuthMethod = None
    max_count: UserCount = 100

    @property
    def where(self) -> UserFilter:
        return UserFilter(self.api_client_id, self.auth_method, self.search_text)

    @property
    def keyset(self) -> UserKeyset:
        return UserKeyset(self.gte_key, self.gt_id, self.lte_key, self.lt_id)


@dataclass(frozen=True)
class DisplayNameListingParams(UserListingParams):
    """The same by display name (/users/by_display_name)."""

    gte_key: Annotated[str | None, Query(alias="gte_display_name", max_length=256)] = None
    lte_key: Annotated[str | None, Query(alias="lte_display_name", max_length=256)] = None


UserListingDep = Annotated[UserListingParams, Depends()]
DisplayNameListingDep = Annotated[DisplayNameListingParams, Depends()]
