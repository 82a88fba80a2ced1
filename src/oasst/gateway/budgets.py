"""Token budgets that hold under concurrency.

Before a call, its upper bound is reserved with one conditional UPDATE (`usage + reserved + cost <= budget`,
atomic on PostgreSQL and SQLite alike) and a `reserved` charge row; after it, the charge settles to the real
usage (never more than was reserved, so the budget holds even if a prompt is denser than the bound assumed);
a failed call releases the reservation and leaves no row. A reservation whose call died with its process
lapses after `gateway_reservation_ttl` seconds, when the account next runs short. A chat reply's reservation
is found by the reply's message id: it settles when the worker finishes the reply, in the same transaction.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
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


@dataclass(frozen=True)
class Reservation:
    account_id: int
    charge_id: int
    tokens: int
    source: str


@dataclass(frozen=True)
class Balance:
    """An account's tokens after a settlement."""

    usage: int
    budget: int


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
_RESERVED_CHARGE = (
    insert(GatewayCharge)
    .values(
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
    .returning(GatewayCharge.id)
)
_MARK_SETTLED = (
    update(GatewayCharge)
    .where(GatewayCharge.id == bindparam("charge_id"), GatewayCharge.state == "reserved")
    .values(
        state="settled",
        prompt_tokens=bindparam("prompt_tokens"),
        completion_tokens=bindparam("completion_tokens"),
        charged_tokens=bindparam("charged_tokens"),
        day=bindparam("day"),
    )
    .execution_options(synchronize_session=False)
)
_CHARGE = (
    update(GatewayAccount)
    .where(GatewayAccount.id == bindparam("account_id"))
    .values(
        usage=GatewayAccount.usage + bindparam("charged_tokens"),
        reserved=GatewayAccount.reserved - bindparam("reserved_tokens"),
    )
    .returning(GatewayAccount.usage, GatewayAccount.budget)
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
    reply_id: uuid.UUID | None = None,
    prompt_estimate: int = 0,
) -> Reservation:
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
    charge_id = await session.scalar(_RESERVED_CHARGE, charge)
    assert charge_id is not None
    return Reservation(account_id, charge_id, tokens, source)


async def reserve_reply(
    session: AsyncSession,
    settings: Settings,
    key_hash: str,
    reply_id: uuid.UUID,
    tokens: int,
    prompt_estimate: int,
) -> Reservation:
    """Hold the bound of chat reply `reply_id` on the budget of the account that `key_hash` opens (the key
    its person joined with); refused as reserve() refuses. Settled or released by the reply's message id."""
    account_id = await session.scalar(
        select(GatewayAccount.id).where(GatewayAccount.api_key_hash == key_hash)
    )
    if account_id is None:
        raise GatewayError(ACCESS_DENIED, 401)
    return await reserve(
        session,
        settings,
        account_id,
        key_hash,
        tokens,
        "inference",
        reply_id=reply_id,
        prompt_estimate=prompt_estimate,
    )


async def settle(
    session: AsyncSession, reservation: Reservation, prompt_tokens: int, completion_tokens: int
) -> Balance:
    """Turn the reservation into the call's real cost (at most the reservation) and return the balance."""
    charged = min(prompt_tokens + completion_tokens, reservation.tokens)
    counts = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "charged_tokens": charged,
        "day": datetime.now(UTC).date(),
    }
    marked = await session.execute(_MARK_SETTLED, {"charge_id": reservation.charge_id, **counts})
    if not marked.rowcount:  # type: ignore[attr-defined]
        return await _settle_lapsed(session, reservation, {"state": "settled", **counts})
    params = {
        "account_id": reservation.account_id,
        "charged_tokens": charged,
        "reserved_tokens": reservation.tokens,
    }
    row = (await session.execute(_CHARGE, params)).one()
    return Balance(row.usage, row.budget)


async def _settle_lapsed(session: AsyncSession, reservation: Reservation, counts: dict[str, Any]) -> Balance:
    """The reservation lapsed during a very long call (its tokens went back): under the account's row lock,
    charge what still fits in the budget, and record that."""
    account = await session.scalar(
        select(GatewayAccount)
        .where(GatewayAccount.id == reservation.account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert account is not None
    fits = max(0, min(counts["charged_tokens"], account.budget - account.usage - account.reserved))
    account.usage += fits
    session.add(
        GatewayCharge(
            account_id=account.id,
            source=reservation.source,
            reserved_tokens=0,
            created_at=datetime.now(UTC),
            **{**counts, "charged_tokens": fits},
        )
    )
    await session.flush()
    return Balance(account.usage, account.budget)


async def release(session: AsyncSession, reservation: Reservation) -> None:
    """Give the reservation back: the call failed, so it costs nothing and leaves no row."""
    await _give_back(session, reservation.account_id, reservation.charge_id, reservation.tokens)


async def _reply_reservation(session: AsyncSession, reply_id: uuid.UUID) -> tuple[Reservation, int] | None:
    """The reservation held for chat reply `reply_id` and its prompt estimate, locked (a settlement and a
    release of the same reply run one after the other), or None if there is none (any more)."""
    row = (
        await session.execute(
            select(
                GatewayCharge.id,
                GatewayCharge.account_id,
                GatewayCharge.reserved_tokens,
                GatewayCharge.source,
                GatewayCharge.prompt_tokens,
            )
            .where(GatewayCharge.inference_message_id == reply_id, GatewayCharge.state == "reserved")
            .with_for_update()
        )
    ).first()
    if row is None:
        return None
    return Reservation(row.account_id, row.id, row.reserved_tokens, row.source), row.prompt_tokens


async def settle_reply(
    session: AsyncSession, reply_id: uuid.UUID, prompt_tokens: int | None, completion_tokens: int
) -> Balance | None:
    """Settle the reservation of a finished chat reply, if it has one: to the worker's counts, or when the
    worker counted no prompt, to the estimate made at reservation. A reply whose reservation lapsed (it ran
    past the TTL while its account ran short) is not charged: nothing says any more whose it was."""
    found = await _reply_reservation(session, reply_id)
    if found is None:
        return None
    reservation, estimate = found
    return await settle(
        session, reservation, estimate if prompt_tokens is None else prompt_tokens, completion_tokens
    )


async def release_reply(session: AsyncSession, reply_id: uuid.UUID) -> None:
    """Give back the reservation of a chat reply that failed, timed out, was cancelled or never ran."""
    found = await _reply_reservation(session, reply_id)
    if found is not None:
        await release(session, found[0])


async def _give_back(session: AsyncSession, account_id: int, charge_id: int, tokens: int) -> bool:
    deleted = await session.execute(
        delete(GatewayCharge)
        .where(GatewayCharge.id == charge_id, GatewayCharge.state == "reserved")
        .execution_options(synchronize_session=False)
    )
    if not deleted.rowcount:  # type: ignore[attr-defined]
        return False  # settled, or lapsed already
    await session.execute(
        update(GatewayAccount)
        .where(GatewayAccount.id == account_id)
        .values(reserved=GatewayAccount.reserved - tokens)
        .execution_options(synchronize_session=False)
    )
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
