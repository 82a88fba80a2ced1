"""Frontend users: created on first sight, gated by enabled and ToS, listed, updated and anonymised."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.users import repository
from oasst.collection.users.schemas import FrontEndUserPage, UserFilter, UserKeyset, UserListingParams
from oasst.config import Settings
from oasst.db.base import new_id, utcnow
from oasst.db.dml import insert_ignore
from oasst.db.models import ApiClient, User
from oasst.errors import OasstError, forbidden
from oasst.protocol import collection as wire
from oasst.protocol.collection import ErrorCode

if TYPE_CHECKING:
    # Only an annotation here: the request dependencies import this module for the viewer.
    from oasst.collection.deps import FrontendIdentity

DELETED_USER_DISPLAY_NAME = "Deleted User"
DELETED_USER_ID_PREFIX = "deleted_"
# A streak ends when the user has not been active for this long.
STREAK_GRACE = timedelta(hours=36)


async def get_or_create(session: AsyncSession, client: ApiClient, user: wire.User) -> User:
    """The user named by a request body, created if new; a changed display name is stored."""
    row = await repository.by_identity(session, client.id, user.auth_method, user.id)
    if row is None:
        now = utcnow()
        system = user.auth_method == "system"
        await insert_ignore(
            session,
            User,
            {
                "id": new_id(),
                "username": user.id,
                "auth_method": user.auth_method,
                "display_name": user.display_name,
                "api_client_id": client.id,
                "created_date": now,
                "streak_last_day_date": now,
                "enabled": True,
                "deleted": False,
                "notes": "",
                "show_on_leaderboard": not system,
                "tos_acceptance_date": now if system else None,
            },
            ["api_client_id", "username", "auth_method"],
        )
        row = await repository.by_identity(session, client.id, user.auth_method, user.id)
        assert row is not None
    elif row.display_name != user.display_name:
        row.display_name = user.display_name
    return row


async def record_activity(
    session: AsyncSession, user_id: uuid.UUID, user: wire.User, streak_since: datetime | None, now: datetime
) -> User:
    """A task answered at `now`: the user's last activity and streak (`streak_since`: its first day as
    stored), with the display name the frontend sent, in one UPDATE; the fresh row."""
    values: dict[str, object] = {"last_activity_date": now, "display_name": user.display_name}
    if streak_since is None or streak_since > now:
        values.update(streak_last_day_date=now, streak_days=0)
    else:
        values["streak_days"] = (now - streak_since).days
    return await repository.update_returning(session, user_id, values)


def check_enabled(user: User, settings: Settings) -> None:
    """The gate on every task, interaction and emoji call."""
    if user.deleted or not user.enabled:
        raise OasstError("User account disabled", ErrorCode.USER_DISABLED, 503)
    if user.tos_acceptance_date is None and not settings.debug_ignore_tos_acceptance:
        raise OasstError(
            "User has not accepted the terms of service", ErrorCode.USER_HAS_NOT_ACCEPTED_TOS, 451
        )


async def get_active(
    session: AsyncSession, client: ApiClient, user: wire.User | None, settings: Settings
) -> User:
    """The enabled user acting in a request whose body names them (400/4000 when none is named)."""
    if user is None:
        raise OasstError("User required", ErrorCode.USER_NOT_SPECIFIED)
    row = await get_or_create(session, client, user)
    check_enabled(row, settings)
    return row


async def by_header(
    session: AsyncSession, client: ApiClient, identity: FrontendIdentity | None
) -> User | None:
    """The user of the `x-oasst-user` header; 404/4002 if the header names nobody known to this client."""
    if identity is None:
        return None
    row = await repository.by_identity(session, client.id, identity.auth_method, identity.username)
    if row is None:
        raise OasstError("User not found", ErrorCode.USER_NOT_FOUND, 404)
    return row


async def upsert(session: AsyncSession, client: ApiClient, request: wire.CreateFrontendUserRequest) -> User:
    """POST /frontend_users/: create or fetch, then apply flags (changing them needs a trusted client)."""
    row = await get_or_create(session, client, request)
    wants_tos = bool(request.tos_acceptance) and row.tos_acceptance_date is None
    # Only flags the caller actually sent count: unlike upstream, the defaults of a plain upsert never
    # re-enable or un-hide a user a moderator changed.
    sent = request.model_fields_set
    changes = {
        name: getattr(request, name)
        for name in ("enabled", "show_on_leaderboard", "notes")
        if name in sent
        and getattr(request, name) is not None
        and getattr(row, name) != getattr(request, name)
    }
    if changes and not client.trusted:
        raise forbidden()
    for name, value in changes.items():
        setattr(row, name, value)
    if wants_tos:
        row.tos_acceptance_date = utcnow()
    await session.flush()
    return row


def to_wire(user: User) -> wire.FrontEndUser:
    return wire.FrontEndUser(
        id=user.username,
        display_name=user.display_name,
        auth_method=user.auth_method,
        user_id=user.id,
        enabled=user.enabled,
        deleted=user.deleted,
        notes=user.notes,
        created_date=user.created_date,
        show_on_leaderboard=user.show_on_leaderboard,
        streak_days=user.streak_days,
        streak_last_day_date=user.streak_last_day_date,
        last_activity_date=user.last_activity_date,
        tos_acceptance_date=user.tos_acceptance_date,
    )


def _not_found() -> OasstError:
    return OasstError("User not found", ErrorCode.USER_NOT_FOUND, 404)


def _client_scope(client: ApiClient, api_client_id: uuid.UUID | None) -> uuid.UUID | None:
    """Whose users a call may see: untrusted clients their own only (naming another client is 403/2)."""
    if client.trusted:
        return api_client_id
    if api_client_id is not None and api_client_id != client.id:
        raise forbidden()
    return client.id


async def get_visible(
    session: AsyncSession, client: ApiClient, user_id: uuid.UUID, api_client_id: uuid.UUID | None = None
) -> User:
    """The user with this backend id (404/4002); another client's user is 403/2 for untrusted clients."""
    if not client.trusted and api_client_id is not None and api_client_id != client.id:
        raise forbidden()
    row = await repository.by_id(session, user_id)
    if row is None or (api_client_id is not None and row.api_client_id != api_client_id):
        raise _not_found()
    if not client.trusted and row.api_client_id != client.id:
        raise forbidden()
    return row


async def by_frontend_identity(
    session: AsyncSession,
    client: ApiClient,
    auth_method: str,
    username: str,
    api_client_id: uuid.UUID | None = None,
) -> User:
    """The user (auth_method, username) of the calling client, or of `api_client_id` for trusted clients."""
    target = _client_scope(client, api_client_id) or client.id
    row = await repository.by_identity(session, target, auth_method, username)
    if row is None:
        raise _not_found()
    return row


async def update(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    display_name: str | None = None,
    enabled: bool | None = None,
    notes: str | None = None,
    show_on_leaderboard: bool | None = None,
    tos_acceptance: bool | None = None,
) -> User:
    """PUT /users/{id} (trusted): set the given fields; `tos_acceptance=true` stamps the date now."""
    row = await repository.by_id(session, user_id)
    if row is None:
        raise _not_found()
    if display_name is not None:
        row.display_name = display_name
    if enabled is not None:
        row.enabled = enabled
    if notes is not None:
        row.notes = notes
    if show_on_leaderboard is not None:
        row.show_on_leaderboard = show_on_leaderboard
    if tos_acceptance:
        row.tos_acceptance_date = utcnow()
    await session.flush()
    return row


async def delete(session: AsyncSession, user_id: uuid.UUID) -> User:
    """Anonymise a user: deleted, renamed, hidden from leaderboards. The messages stay."""
    row = await repository.by_id(session, user_id)
    if row is None:
        raise _not_found()
    row.deleted = True
    row.display_name = DELETED_USER_DISPLAY_NAME
    # Unique per client and auth method, like every username.
    row.username = f"{DELETED_USER_ID_PREFIX}{row.id}"
    row.show_on_leaderboard = False
    await session.flush()
    return row


def _keyset_error() -> OasstError:
    return OasstError("Need id and name for keyset pagination", ErrorCode.GENERIC_ERROR)


def _scoped(client: ApiClient, where: UserFilter) -> UserFilter:
    return UserFilter(_client_scope(client, where.api_client_id), where.auth_method, where.search_text)


async def listing(
    session: AsyncSession, client: ApiClient, sort_key: str, params: UserListingParams, *, desc: bool
) -> list[wire.FrontEndUser]:
    """/users/by_username and /users/by_display_name: one keyset slice ordered by (sort_key, id)."""
    keyset = params.keyset
    if (keyset.gt_id is not None and keyset.gte_key is None) or (
        keyset.lt_id is not None and keyset.lte_key is None
    ):
        raise _keyset_error()
    where = _scoped(client, params.where)
    rows = await repository.listing(session, sort_key, where, keyset, desc=desc, limit=params.max_count)
    return [to_wire(row) for row in rows]


def _split_cursor(raw: str | None) -> tuple[str | None, uuid.UUID | None]:
    """`<uuid>$<key>` (the key may hold `$` itself) or a bare key; a bad uuid is 400/101."""
    if not raw:
        return None, None
    if "$" not in raw:
        return raw, None
    id_part, key = raw.split("$", 1)
    try:
        return key, uuid.UUID(id_part)
    except ValueError:
        raise OasstError("Invalid cursor value", ErrorCode.INVALID_CURSOR_VALUE) from None


async def page(
    session: AsyncSession,
    client: ApiClient,
    where: UserFilter,
    *,
    sort_key: str,
    before: str | None,
    after: str | None,
    max_count: int,
) -> FrontEndUserPage:
    """/users/cursor: a page of users in ascending (sort_key, id) order with its neighbours' cursors."""
    if sort_key not in repository.SORT_KEYS:
        raise OasstError(f"Sort key '{sort_key}' not supported", ErrorCode.SORT_KEY_UNSUPPORTED)
    before, after = before or None, after or None
    lte_key, lt_id = _split_cursor(before)
    gte_key, gt_id = _split_cursor(after)
    keyset = UserKeyset(gte_key=gte_key, gt_id=gt_id, lte_key=lte_key, lt_id=lt_id)
    # Only `before`: read backwards from it, then show the page in ascending order.
    query_desc = before is not None and after is None
    # One extra row tells whether there is more, unless the page is closed on both sides.
    limit = max_count + 1 if before is None or after is None else max_count
    rows = await repository.listing(
        session, sort_key, _scoped(client, where), keyset, desc=query_desc, limit=limit
    )
    more = len(rows) > max_count
    rows = rows[:max_count]
    if query_desc:
        rows.reverse()

    def cursor(row: User) -> str:
        return f"{row.id}${getattr(row, sort_key)}"

    prev = next_ = None
    if rows:
        if (more and before is not None) or after is not None:
            prev = cursor(rows[0])
        if more or before is not None:
            next_ = cursor(rows[-1])
    else:
        # An empty page echoes the cursors it was asked with, so the client can turn back.
        prev, next_ = after, before
    return FrontEndUserPage(
        prev=prev, next=next_, sort_key=sort_key, order="asc", items=[to_wire(row) for row in rows]
    )


async def reset_streaks(session: AsyncSession, now: datetime) -> int:
    """End the streaks of users inactive for 36 hours (the periodic streak job)."""
    count = await repository.reset_streaks(session, now - STREAK_GRACE)
    await session.flush()
    return count
