"""Registering, authenticating and managing local accounts. Services flush; the caller's scope commits.

Passwords are hashed with scrypt (stdlib) under a random salt; the hash string carries its parameters
(`scrypt$n$r$p$salt$hash`), so raising them later only rehashes each password at its next sign-in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Sequence
from functools import cache
from typing import Literal, get_args

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.accounts import repository
from oasst.db.models import LocalAccount
from oasst.errors import OasstError
from oasst.protocol.collection import ErrorCode

Role = Literal["user", "moderator", "admin"]
ROLES: tuple[str, ...] = get_args(Role)

USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{2,31}")
# Upstream only asks that a display name start with a non-space (`^\S+`); here no character may be a control
# character, a line or paragraph separator, or a bidirectional override (which would garble the pages).
DISPLAY_NAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MIN_PASSWORD = 8
MAX_PASSWORD = 256
MAX_DISPLAY_NAME = 256

# scrypt cost: 2**14 x 8 blocks is 16 MiB and some 50 ms per hash, the usual interactive setting.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32


# --- password hashes ----------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * p, dklen=KEY_BYTES
    )


def hash_password(password: str) -> str:
    """A fresh salted hash of `password` with the current parameters (blocking: about 50 ms)."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`, compared in constant time (blocking)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(computed, base64.b64decode(key))
    except ValueError:
        return False


def is_current(stored: str) -> bool:
    """Whether `stored` was made with today's parameters (else it is rehashed at the next sign-in)."""
    return stored.startswith(f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$")


@cache
def _decoy_hash() -> str:
    """A hash to check against when there is no account, so a miss costs as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


# --- validation ---------------------------------------------------------------------------------------------


def normalize_username(username: str) -> str:
    """The stored form of a username: lower case, checked (3-32 of a-z 0-9 _ . -, starting alphanumeric)."""
    normalized = username.strip().lower()
    if not USERNAME.fullmatch(normalized):
        raise OasstError(
            "A username has 3 to 32 characters: letters, digits, '_', '.' or '-', "
            "and starts with a letter or digit",
            ErrorCode.ACCOUNT_USERNAME_INVALID,
            422,
        )
    return normalized


def check_password(password: str, username: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise OasstError(
            f"The password must have at least {MIN_PASSWORD} characters",
            ErrorCode.ACCOUNT_PASSWORD_INVALID,
            422,
        )
    if len(password) > MAX_PASSWORD:
        raise OasstError(
            f"The password must have at most {MAX_PASSWORD} characters",
            ErrorCode.ACCOUNT_PASSWORD_INVALID,
            422,
        )
    if password.strip().lower() == username:
        raise OasstError("The password must not be the username", ErrorCode.ACCOUNT_PASSWORD_INVALID, 422)


def check_display_name(name: str) -> str:
    """The display name to store: `name` without surrounding spaces, 1 to 256 characters, none forbidden."""
    clean = name.strip()
    if not clean or len(clean) > MAX_DISPLAY_NAME or DISPLAY_NAME_FORBIDDEN.search(clean):
        raise OasstError(
            f"A display name has 1 to {MAX_DISPLAY_NAME} characters and no control characters",
            ErrorCode.ACCOUNT_DISPLAY_NAME_INVALID,
            422,
        )
    return clean


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise OasstError(
            f"Unknown role {role!r}: one of {', '.join(ROLES)}", ErrorCode.ACCOUNT_ROLE_INVALID, 422
        )
    return role  # type: ignore[return-value]


# --- accounts -----------------------------------------------------------------------------------------------


async def register(
    session: AsyncSession,
    username: str,
    password: str,
    display_name: str | None = None,
    role: str = "user",
) -> LocalAccount:
    """A new enabled account; 409 if the name is taken (in any case), 422 for a bad name, password or role."""
    normalized = normalize_username(username)
    check_password(password, normalized)
    check_role(role)
    display = check_display_name(display_name if display_name and display_name.strip() else username)
    if await repository.by_username(session, normalized) is not None:
        raise _taken(normalized)
    account = LocalAccount(
        username=normalized,
        password_hash=await asyncio.to_thread(hash_password, password),
        display_name=display,
        role=role,
        enabled=True,
    )
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError as error:  # registered by someone else since the check above
        raise _taken(normalized) from error
    return account


def _taken(username: str) -> OasstError:
    return OasstError(f"The username {username!r} is taken", ErrorCode.ACCOUNT_USERNAME_TAKEN, 409)


async def authenticate(session: AsyncSession, username: str, password: str) -> LocalAccount | None:
    """The enabled account with this name and password, else None; a miss takes as long as a hit."""
    account = await repository.by_username(session, username.strip().lower())
    if account is None or not account.enabled:
        await asyncio.to_thread(verify_password, password, _decoy_hash())
        return None
    if not await asyncio.to_thread(verify_password, password, account.password_hash):
        return None
    if not is_current(account.password_hash):
        account.password_hash = await asyncio.to_thread(hash_password, password)
        await session.flush()
    return account


async def get(session: AsyncSession, username: str) -> LocalAccount:
    """The account of `username` (any case), or 404."""
    account = await repository.by_username(session, username.strip().lower())
    if account is None:
        raise OasstError(f"No account {username!r}", ErrorCode.ACCOUNT_NOT_FOUND, 404)
    return account


async def get_by_id(session: AsyncSession, account_id: uuid.UUID) -> LocalAccount | None:
    return await repository.by_id(session, account_id)


async def list_accounts(session: AsyncSession) -> Sequence[LocalAccount]:
    return await repository.all_accounts(session)


async def set_role(session: AsyncSession, username: str, role: str) -> LocalAccount:
    account = await get(session, username)
    account.role = check_role(role)
    await session.flush()
    return account


async def set_password(session: AsyncSession, username: str, password: str) -> LocalAccount:
    account = await get(session, username)
    check_password(password, account.username)
    account.password_hash = await asyncio.to_thread(hash_password, password)
    await session.flush()
    return account


async def password_matches(account: LocalAccount, password: str) -> bool:
    """Whether `password` is the account's (scrypt runs in a thread)."""
    return await asyncio.to_thread(verify_password, password, account.password_hash)


async def set_display_name(session: AsyncSession, account: LocalAccount, display_name: str) -> LocalAccount:
    account.display_name = check_display_name(display_name)
    await session.flush()
    return account


async def set_gateway_key(session: AsyncSession, account: LocalAccount, key_hash: str | None) -> LocalAccount:
    """Join the course account whose key hashes to `key_hash` (the key was checked), or leave it (None)."""
    account.gateway_key_hash = key_hash
    await session.flush()
    return account


async def delete(session: AsyncSession, account: LocalAccount) -> None:
    """Remove the account: its username and password are gone (the name may be registered again)."""
    await session.delete(account)
    await session.flush()


async def set_enabled(session: AsyncSession, username: str, enabled: bool) -> LocalAccount:
    """Disable (or enable again) an account: a disabled account cannot sign in."""
    account = await get(session, username)
    account.enabled = enabled
    await session.flush()
    return account
