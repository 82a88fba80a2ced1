"""Token budgets that hold under concurrency.

Before a call, its upper bound is reserved with one conditional UPDATE (`usage + reserved + cost <= budget`,
atomic on PostgreSQL and SQLite alike) and a `reserved` charge row naming the reply's message; the worker
connection settles it to the real usage in the transaction that stores the reply (never more than was
reserved, so the budget holds even if a prompt is denser than the bound assumed), and a reply that fails,
times out or is cancelled releases it, leaving no row. Every source (the Parrot API's chats, /v1, and the chat
replies of people whose account joined a course) is charged this one way. A reservation whose call died with
its process lapses after `gateway_reservation_ttl` seconds, when the account next runs short.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Table,
    Update,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningDelete, ReturningUpdate

from oasst.config import Settings
from oasst.db.models import GatewayAccount, GatewayCharge
from oasst.gateway.errors import ACCESS_DENIED, GatewayError

BYTES_PER_TOKEN = 2  # the bound's assumption: common tokenizers take at least two UTF-8 bytes a token
TEMPLATE_TOKENS = 8  # what a chat template may add around each message (role markers, separators)
BUDGET_REACHED = "Account has reached its budget"


def cost_bound(texts: Iterable[str], max_tokens: int) -> int:
    """The most a call can cost: a bound on the prompt's tokens plus the tokens it may generate."""
    prompt = sum(math.ceil(len(text.encode()) / BYTES_PER_TOKEN) + TEMPLATE_TOKENS for text in texts)
    return prompt + TEMPLATE_TOKENS + max_tokens


# The statements of every call, built once on the tables (building one costs as much CPU as running it, and
# the ORM's bulk path as much again). On PostgreSQL each pair that touches a charge and its account runs as
# one statement (a data-modifying WITH): one round trip instead of two, on the path of every metered call.
_ACCOUNT = cast(Table, GatewayAccount.__table__)
_CHARGE_ROW = cast(Table, GatewayCharge.__table__)
_CHARGE_PARAMETERS = ("source", "prompt_tokens", "inference_message_id")
_HOLD = (
    update(_ACCOUNT)
    .where(
        _ACCOUNT.c.id == bindparam("account_id"),
        _ACCOUNT.c.api_key_hash == bindparam("key_hash"),
        _ACCOUNT.c.active,
        _ACCOUNT.c.usage + _ACCOUNT.c.reserved + bindparam("tokens", type_=BigInteger) <= _ACCOUNT.c.budget,
    )
    .values(reserved=_ACCOUNT.c.reserved + bindparam("tokens", type_=BigInteger))
    .returning(_ACCOUNT.c.id)
)
# The reserved charge row. Its parameters go to the hold too, where a name that is a column of the account
# would join the SET clause (Core's rule): hence `at`, not `created_at`.
_CHARGE_VALUES = {
    "state": literal("reserved"),
    "reserved_tokens": bindparam("tokens", type_=BigInteger),
    "completion_tokens": literal(0, BigInteger),
    "charged_tokens": literal(0, BigInteger),
    **{name: bindparam(name, type_=_CHARGE_ROW.c[name].type) for name in _CHARGE_PARAMETERS},
    "created_at": bindparam("at", type_=_CHARGE_ROW.c.created_at.type),
}
_RESERVED_CHARGE = insert(_CHARGE_ROW).values(account_id=bindparam("account_id"), **_CHARGE_VALUES)
_held = _HOLD.cte("held")
_HOLD_AND_CHARGE = insert(_CHARGE_ROW).from_select(
    ["account_id", *_CHARGE_VALUES], select(_held.c.id, *_CHARGE_VALUES.values())
)
# The reply's charge settles to the worker's counts, or when it counted no prompt, to the estimate made at
# reservation (SET sees the row as it was); never to more than was reserved.
_PROMPT = func.coalesce(bindparam("prompt_tokens", type_=BigInteger), _CHARGE_ROW.c.prompt_tokens)
_SPENT = _PROMPT + bindparam("completion_tokens", type_=BigInteger)
_REPLY_RESERVED = (
    _CHARGE_ROW.c.inference_message_id == bindparam("reply_id"),
    _CHARGE_ROW.c.state == "reserved",
)
_SETTLE_REPLY = (
    update(_CHARGE_ROW)
    .where(*_REPLY_RESERVED)
    .values(
        state="settled",
        prompt_tokens=_PROMPT,
        completion_tokens=bindparam("completion_tokens", type_=BigInteger),
        charged_tokens=case(
            (_CHARGE_ROW.c.reserved_tokens > _SPENT, _SPENT), else_=_CHARGE_ROW.c.reserved_tokens
        ),
        day=bindparam("day"),
    )
    .returning(_CHARGE_ROW.c.account_id, _CHARGE_ROW.c.reserved_tokens, _CHARGE_ROW.c.charged_tokens)
)
_RELEASE_REPLY = (
    delete(_CHARGE_ROW)
    .where(*_REPLY_RESERVED)
    .returning(
        _CHARGE_ROW.c.account_id,
        _CHARGE_ROW.c.reserved_tokens,
        literal(0, BigInteger).label("charged_tokens"),
    )
)


def _account_charge(account_id: Any, charged: Any, reserved: Any) -> Update:
    """Move a charge's tokens on its account: `charged` onto the usage, `reserved` off the reservations."""
    return (
        update(_ACCOUNT)
        .where(_ACCOUNT.c.id == account_id)
        .values(usage=_ACCOUNT.c.usage + charged, reserved=_ACCOUNT.c.reserved - reserved)
    )


_CHARGE = _account_charge(
    bindparam("account_id"), bindparam("charged_tokens", type_=BigInteger), bindparam("reserved_tokens")
)


def _then_charge(charge_statement: ReturningDelete | ReturningUpdate, name: str) -> Update:
    """`charge_statement` (returning account_id, reserved_tokens, charged_tokens) and its account's move as
    one PostgreSQL statement."""
    done = charge_statement.cte(name)
    return _account_charge(done.c.account_id, done.c.charged_tokens, done.c.reserved_tokens)


_SETTLE_AND_CHARGE = _then_charge(_SETTLE_REPLY, "settled")
_RELEASE_AND_CHARGE = _then_charge(_RELEASE_REPLY, "released")


def _on_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _hold(session: AsyncSession, params: dict[str, Any]) -> bool:
    """Hold the tokens and add the reserved charge row, if the account can pay; True if it could."""
    if _on_postgres(session):
        return bool((await session.execute(_HOLD_AND_CHARGE, params)).rowcount)  # type: ignore[attr-defined]
    if (await session.execute(_HOLD, params)).first() is None:
        return False
    await session.execute(_RESERVED_CHARGE, params)
    return True


async def _charge_after(
    session: AsyncSession, single: Update, pair: ReturningDelete | ReturningUpdate, params: dict[str, Any]
) -> None:
    """Run a charge statement and move its tokens on the account (`single`: both in one, on PostgreSQL)."""
    if _on_postgres(session):
        await session.execute(single, params)
        return
    done = (await session.execute(pair, params)).first()
    if done is not None:
        charge = {
            "account_id": done.account_id,
            "charged_tokens": done.charged_tokens,
            "reserved_tokens": done.reserved_tokens,
        }
        await session.execute(_CHARGE, charge)


async def reserve(
    session: AsyncSession,
    settings: Settings,
    account_id: int,
    key_hash: str,
    tokens: int,
    source: str,
    *,
    reply_id: uuid.UUID,
    prompt_estimate: int = 0,
) -> None:
    """Hold `tokens` of the budget of the account that `key_hash` opens, or refuse: 400 when it cannot pay,
    401 when it is inactive or its key changed (the same statement checks the key, so a key remembered from
    an earlier call is never trusted beyond it). A chat reply's reservation names its message and carries
    its prompt's estimated tokens (see settle_reply)."""
    params = {
        "account_id": account_id,
        "key_hash": key_hash,
        "tokens": tokens,
        "source": source,
        "prompt_tokens": prompt_estimate,
        "inference_message_id": reply_id,
        "at": datetime.now(UTC),
    }
    held = await _hold(session, params)
    if not held and await _sweep(session, settings, account_id):
        held = await _hold(session, params)
    if held:
        return
    account = await session.get(GatewayAccount, account_id, populate_existing=True)
    if account is None or not account.active or account.api_key_hash != key_hash:
        raise GatewayError(ACCESS_DENIED, 401)
    if account.usage >= account.budget:
        raise GatewayError(BUDGET_REACHED)
    left = account.budget - account.usage - account.reserved
    raise GatewayError(
        f"Not enough budget left for this request: it may use up to {tokens} tokens and {max(left, 0)} "
        f"are free ({account.reserved} are held by requests in progress). Lower `max_tokens` or wait."
    )


async def reserve_reply(
    session: AsyncSession,
    settings: Settings,
    key_hash: str,
    reply_id: uuid.UUID,
    tokens: int,
    prompt_estimate: int,
) -> None:
    """Hold the bound of chat reply `reply_id` on the budget of the account that `key_hash` opens (the key
    its person joined with); refused as reserve() refuses. Settled or released by the reply's message id."""
    account_id = await session.scalar(
        select(GatewayAccount.id).where(GatewayAccount.api_key_hash == key_hash)
    )
    if account_id is None:
        raise GatewayError(ACCESS_DENIED, 401)
    await reserve(
        session,
        settings,
        account_id,
        key_hash,
        tokens,
        "inference",
        reply_id=reply_id,
        prompt_estimate=prompt_estimate,
    )


async def settle_reply(
    session: AsyncSession, reply_id: uuid.UUID, prompt_tokens: int | None, completion_tokens: int
) -> None:
    """Settle the reservation of a finished reply, if it has one: to the worker's counts, or when the worker
    counted no prompt, to the estimate made at reservation. A reply whose reservation lapsed (it ran past the
    TTL while its account ran short) is not charged: its tokens went back to the account."""
    params = {
        "reply_id": reply_id,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "day": datetime.now(UTC).date(),
    }
    await _charge_after(session, _SETTLE_AND_CHARGE, _SETTLE_REPLY, params)


async def release_reply(session: AsyncSession, reply_id: uuid.UUID) -> None:
    """Give back the reservation of a reply that failed, timed out, was cancelled or never ran: it costs
    nothing and leaves no row."""
    await _charge_after(session, _RELEASE_AND_CHARGE, _RELEASE_REPLY, {"reply_id": reply_id})


async def _unreserve(session: AsyncSession, account_id: int, tokens: int) -> None:
    charge = {"account_id": account_id, "charged_tokens": 0, "reserved_tokens": tokens}
    await session.execute(_CHARGE, charge)


async def _give_back(session: AsyncSession, account_id: int, charge_id: int, tokens: int) -> bool:
    deleted = await session.execute(
        delete(GatewayCharge)
        .where(GatewayCharge.id == charge_id, GatewayCharge.state == "reserved")
        .execution_options(synchronize_session=False)
    )
    if not deleted.rowcount:  # type: ignore[attr-defined]
        return False  # settled, or lapsed already
    await _unreserve(session, account_id, tokens)
    return True


async def _sweep(session: AsyncSession, settings: Settings, account_id: int) -> bool:
    """Release the account's reservations older than the TTL (their calls died); True if any was."""
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.gateway_reservation_ttl)
    stale = await session.execute(
        select(GatewayCharge.id, GatewayCharge.reserved_tokens).where(
            GatewayCharge.account_id == account_id,
            GatewayCharge.state == "reserved",
            GatewayCharge.created_at < cutoff,
        )
    )
    released = [await _give_back(session, account_id, row.id, row.reserved_tokens) for row in stale.all()]
    return any(released)
