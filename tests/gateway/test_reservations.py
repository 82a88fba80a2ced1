"""Reservations whose call died with its process lapse after the TTL, when the account next runs short; a call
that comes back after its reservation lapsed is charged only what still fits in the budget."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from oasst.collection.auth.service import hash_key
from oasst.config import Settings
from oasst.db.models import GatewayCharge
from oasst.db.session import create_engine, sessionmaker, transaction
from oasst.gateway import budgets
from oasst.gateway.errors import GatewayError
from tests.gateway.conftest import Gateway, Ledger


def test_a_dead_calls_reservation_lapses(
    gateway: Gateway, gateway_settings: Settings, ledger: Ledger
) -> None:
    account_id, key = gateway.new_account(budget=100)
    key_hash = hash_key(key)

    async def run() -> None:
        engine = create_engine(gateway_settings.effective_database_url)
        sessions = sessionmaker(engine)
        async with transaction(sessions) as session:
            dead = await budgets.reserve(session, gateway_settings, account_id, key_hash, 60, "v1")
        try:
            async with transaction(sessions) as session:
                await budgets.reserve(session, gateway_settings, account_id, key_hash, 60, "v1")
        except GatewayError as error:
            assert error.message.startswith("Not enough budget left") and "60 are held" in error.message
        else:
            raise AssertionError("a second reservation fitted into a budget already held")

        # Past the TTL the held tokens are given back, and the new call gets them.
        long_ago = datetime.now(UTC) - timedelta(seconds=gateway_settings.gateway_reservation_ttl + 1)
        async with transaction(sessions) as session:
            await session.execute(update(GatewayCharge).values(created_at=long_ago))
        async with transaction(sessions) as session:
            live = await budgets.reserve(session, gateway_settings, account_id, key_hash, 60, "v1")
        assert [charge.id for charge in ledger.charges()] == [live.charge_id]

        # The dead call answers after all: 50 tokens, of which 40 still fit beside the live reservation.
        async with transaction(sessions) as session:
            late = await budgets.settle(session, dead, 30, 20)
        assert (late.usage, late.budget) == (40, 100)
        async with transaction(sessions) as session:
            done = await budgets.settle(session, live, 10, 5)
        assert done.usage == 55
        await engine.dispose()

    asyncio.run(run())
    account = ledger.account(account_id)
    assert (account.usage, account.reserved) == (55, 0)
    assert [(c.state, c.reserved_tokens, c.charged_tokens) for c in ledger.charges()] == [
        ("settled", 60, 15),
        ("settled", 0, 40),
    ]
