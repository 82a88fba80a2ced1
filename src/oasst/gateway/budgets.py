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

from sqlalchemy import BigInteger, bindparam, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

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


# The statements of every call, built once (building one costs as much CPU as running it).
_HOLD = (
    update(GatewayAccount)
    .where(
        GatewayAccount.id == bindparam("account_id"),
        GatewayAccount.api_key_hash == bindparam("key_hash"),
        GatewayAccount.active,
        GatewayAccount.usage + GatewayAccount.reserved + bindparam("tokens") <= GatewayAccount.budget,
    )
    .values(reserved=GatewayAccount.reserved + bindparam("tokens"))
    .execution_options(synchronize_session=False)
)
_RESERVED_CHARGE = insert(GatewayCharge).values(
    state="reserved",
    **{
        name: bindparam(name)
        for name in (
            "account_id",
            "source",
            "reserved_tokens",
            "prompt_tokens",
            "created_at",
            "inference_message_id",
        )
    },
)
# The reply's charge settles to the worker's counts, or when it counted no prompt, to the estimate made at
# reservation (SET sees the row as it was); never to more than was reserved.
_PROMPT = func.coalesce(bindparam("prompt_tokens", type_=BigInteger), GatewayCharge.prompt_tokens)
_SPENT = _PROMPT + bindparam("completion_tokens", type_=BigInteger)
_SETTLE_REPLY = (
    update(GatewayCharge)
    .where(GatewayCharge.inference_message_id == bindparam("reply_id"), GatewayCharge.state == "reserved")
    .values(
        state="settled",
        prompt_tokens=_PROMPT,
        completion_tokens=bindparam("completion_tokens"),
        charged_tokens=case(
            (GatewayCharge.reserved_tokens > _SPENT, _SPENT), else_=GatewayCharge.reserved_tokens
        ),
        day=bindparam("day"),
    )
    .returning(GatewayCharge.account_id, GatewayCharge.reserved_tokens, GatewayCharge.charged_tokens)
    .execution_options(synchronize_session=False)
)
_RELEASE_REPLY = (
    delete(GatewayCharge)
    .where(GatewayCharge.inference_message_id == bindparam("reply_id"), GatewayCharge.state == "reserved")
    .returning(GatewayCharge.account_id, GatewayCharge.reserved_tokens)
    .execution_options(synchronize_session=False)
)
_CHARGE = (
    update(GatewayAccount)
    .where(GatewayAccount.id == bindparam("account_id"))
    .values(
        usage=GatewayAccount.usage + bindparam("charged_tokens"),
        reserved=GatewayAccount.reserved - bindparam("reserved_tokens"),
    )
    .execution_options(synchronize_session=False)
)


async def _hold(session: AsyncSession, account_id: int, key_hash: str, tokens: int) -> bool:
    params = {"account_id": account_id, "key_hash": key_hash, "tokens": tokens}
    result = await session.execute(_HOLD, params)
    return bool(result.rowcount)  # type: ignore[attr-defined]


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
    held = await _hold(session, account_id, key_hash, tokens)
    if not held and await _sweep(session, settings, account_id):
        held = await _hold(session, account_id, key_hash, tokens)
    if not held:
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
    charge = {
        "account_id": account_id,
        "source": source,
        "reserved_tokens": tokens,
        "prompt_tokens": prompt_estimate,
        "created_at": datetime.now(UTC),
        "inference_message_id": reply_id,
    }
    await session.execute(_RESERVED_CHARGE, charge)


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
    settled = (await session.execute(_SETTLE_REPLY, params)).first()
    if settled is not None:
        charge = {
            "account_id": settled.account_id,
            "charged_tokens": settled.charged_tokens,
            "reserved_tokens": settled.reserved_tokens,
        }
        await session.execute(_CHARGE, charge)


async def release_reply(session: AsyncSession, reply_id: uuid.UUID) -> None:
    """Give back the reservation of a reply that failed, timed out, was cancelled or never ran: it costs
    nothing and leaves no row."""
    released = (await session.execute(_RELEASE_REPLY, {"reply_id": reply_id})).first()
    if released is not None:
        await _unreserve(session, released.account_id, released.reserved_tokens)


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
