"""Frontend users as the API sees them: lookup, creation on first sight, the enabled/ToS gate."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.deps import FrontendIdentity
from oasst.collection.users import repository
from oasst.config import Settings
from oasst.db.base import new_id, utcnow
from oasst.db.dml import insert_ignore
from oasst.db.models import ApiClient, User
from oasst.errors import OasstError, forbidden
from oasst.protocol import collection as wire
from oasst.protocol.collection import ErrorCode


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
