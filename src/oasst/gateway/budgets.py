"""Token budgets that hold under concurrency.

Before a call, its upper bound is reserved with one conditional UPDATE (`usage + reserved + cost <= budget`,
atomic on PostgreSQL and SQLite alike) and a `reserved` charge row; after it, the charge settles to the real
usage (never more than was reserved, so the budget holds even if a prompt is denser than the bound assumed);
a failed call releases the reservation and leaves no row. A reservation whose call died with its process
lapses after `gateway_reservation_ttl` seconds, when the account next runs short.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, update
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


def _fits(tokens: int) -> ColumnElement[bool]:
    return GatewayAccount.usage + GatewayAccount.reserved + tokens <= GatewayAccount.budget


async def _hold(session: AsyncSession, account_id: int, tokens: int) -> bool:
    result = await session.execute(
        update(GatewayAccount)
        .where(GatewayAccount.id == account_id, GatewayAccount.active, _fits(tokens))
        .values(reserved=GatewayAccount.reserved + tokens)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def reserve(
    session: AsyncSession, settings: Settings, account_id: int, tokens: int, source: str
) -> Reservation:
    """Hold `tokens` of the account's budget, or refuse: 400 when it cannot pay, 401 when it is inactive."""
    held = await _hold(session, account_id, tokens)
    if not held and await _sweep(session, settings, account_id):
        held = await _hold(session, account_id, tokens)
    if not held:
        account = await session.get(GatewayAccount, account_id, populate_existing=True)
        if account is None or not account.active:
            raise GatewayError(ACCESS_DENIED, 401)
        if account.usage >= account.budget:
            raise GatewayError(BUDGET_REACHED)
        left = account.budget - account.usage - account.reserved
        raise GatewayError(
            f"Not enough budget left for this request: it may use up to {tokens} tokens and {max(left, 0)} "
            f"are free ({account.reserved} are held by requests in progress). Lower `max_tokens` or wait."
        )
    charge_id = await session.scalar(
        insert(GatewayCharge)
        .values(
            account_id=account_id,
            state="reserved",
            source=source,
            reserved_tokens=tokens,
            created_at=datetime.now(UTC),
        )
        .returning(GatewayCharge.id)
    )
    assert charge_id is not None
    return Reservation(account_id, charge_id, tokens, source)


async def settle(
    session: AsyncSession, reservation: Reservation, prompt_tokens: int, completion_tokens: int
) -> Balance:
    """Turn the reservation into the call's real cost (at most the reservation) and return the balance."""
    charged = min(prompt_tokens + completion_tokens, reservation.tokens)
    now = datetime.now(UTC)
    counts = {
        "state": "settled",
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "charged_tokens": charged,
        "day": now.date(),
    }
    marked = await session.execute(
        update(GatewayCharge)
        .where(GatewayCharge.id == reservation.charge_id, GatewayCharge.state == "reserved")
        .values(**counts)
        .execution_options(synchronize_session=False)
    )
    account = GatewayAccount
    if not marked.rowcount:  # type: ignore[attr-defined]
        return await _settle_lapsed(session, reservation, counts)
    row = (
        await session.execute(
            update(account)
            .where(account.id == reservation.account_id)
            .values(usage=account.usage + charged, reserved=account.reserved - reservation.tokens)
            .returning(account.usage, account.budget)
            .execution_options(synchronize_session=False)
        )
    ).one()
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
