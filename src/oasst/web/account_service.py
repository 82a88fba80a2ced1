"""What the account pages do: a person's display name and password, the course budget that pays for their
chat replies, and deleting the account. Services flush; the request's transaction commits.

Course budgets. A person chats on a course's token budget by joining the course's gateway account with its
key on their account page: the local account keeps the hash of that key, and from then on each of their chat
replies, asked for on the chat pages or through the inference API, is reserved and settled on the account by
the gateway's budgets, as the Parrot API's and /v1's calls with the key are (see inference.service
`course_key`). Why this link and not a sign-in with the key, or an admin linking accounts: a course hands its
key to its students already, so holding it proves membership, with no admin work per student; a new key or a
closed account ends every membership at once, as it ends the key's API access; and each person keeps their
own chats, contributions and leaderboard entry, where signing in *as* the gateway account would make one
person of everybody holding the key. Only local accounts can join: the link is kept on them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.accounts import service as accounts
from oasst.collection.auth.service import hash_key
from oasst.collection.users import service as users_service
from oasst.config import Settings
from oasst.db.models import ApiClient, LocalAccount
from oasst.errors import OasstError
from oasst.gateway import service as gateway_service
from oasst.gateway.errors import GatewayError
from oasst.inference import service as inference
from oasst.protocol.collection import ErrorCode
from oasst.web import service
from oasst.web.i18n import N_
from oasst.web.sessions import SignedIn


async def _own_account(session: AsyncSession, user: SignedIn) -> LocalAccount:
    """The local account of a person signed in with a password (others have no such settings here)."""
    account = await accounts.get_by_id(session, uuid.UUID(user.id)) if user.kind == "local" else None
    if account is None:
        raise service.bad_input(N_("Only an account with a password on this site has this setting."))
    return account


async def _check_password(account: LocalAccount, password: str) -> None:
    if not await accounts.password_matches(account, password):
        raise OasstError(N_("Your current password is wrong."), ErrorCode.ACCOUNT_PASSWORD_INVALID, 403)


@dataclass(frozen=True)
class AccountView:
    """What the account page shows: the username of a local account (None for other sign-ins), whether it
    has a course budget to show, and that budget."""

    username: str | None
    course: service.Course | None


async def account_view(session: AsyncSession, settings: Settings, user: SignedIn) -> AccountView:
    if user.kind != "local":
        return AccountView(None, None)
    account = await _own_account(session, user)
    return AccountView(account.username, await service.course(session, settings, account.gateway_key_hash))


async def rename(session: AsyncSession, client: ApiClient, user: SignedIn, display_name: str) -> None:
    """A new display name for a local account; the contributions (leaderboards) show it at once too."""
    account = await accounts.set_display_name(session, await _own_account(session, user), display_name)
    await service.contributor(session, client, SignedIn(user.kind, user.id, account.display_name, user.role))


async def change_password(
    session: AsyncSession, user: SignedIn, current: str, new: str, new_again: str
) -> None:
    account = await _own_account(session, user)
    await _check_password(account, current)
    if new != new_again:
        raise service.bad_input(N_("The two passwords differ."))
    await accounts.set_password(session, account.username, new)


async def join_course(session: AsyncSession, settings: Settings, user: SignedIn, key: str) -> None:
    """Let the course account of `key` pay for the person's chat replies (the admin token is not a key)."""
    account = await _own_account(session, user)
    try:
        gateway_service.as_account(await gateway_service.caller(session, settings, key.strip()))
    except GatewayError:
        raise service.bad_input(N_("This is not the key of an open course account.")) from None
    await accounts.set_gateway_key(session, account, hash_key(key.strip()))


async def leave_course(session: AsyncSession, user: SignedIn) -> None:
    await accounts.set_gateway_key(session, await _own_account(session, user), None)


async def delete(session: AsyncSession, client: ApiClient, user: SignedIn, password: str) -> None:
    """Delete the person as the core deletes users (upstream's account deletion): the contributor is
    anonymised (messages stay, the leaderboards forget them), the chat user too (chats stay, tokens stop);
    a local account, once its password is confirmed, is removed, so nobody can sign in with it again; an
    OAuth account's name and role here are forgotten."""
    account = await _own_account(session, user) if user.kind == "local" else None
    if account is not None:
        await _check_password(account, password)
    contributor = await service.contributor(session, client, user)
    await users_service.delete(session, contributor.id)
    await inference.delete_user(session, await service.chat_user(session, user))
    if account is not None:
        await accounts.delete(session, account)
    elif user.kind != "dev":
        await service.forget_oauth_account(session, user)
