"""Reservations whose call died with its process lapse after the TTL, when the account next runs short; a
reply that comes back after its reservation lapsed is not charged (its tokens went back to the account)."""

from __future__ import annotations

import asyncio
import uuid
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
    dead_reply, live_reply = uuid.uuid4(), uuid.uuid4()

    async def run() -> None:
        engine = create_engine(gateway_settings.effective_database_url)
        sessions = sessionmaker(engine)

        async def reserve(reply_id: uuid.UUID) -> None:
            async with transaction(sessions) as session:
                await budgets.reserve(
                    session,
                    gateway_settings,
                    account_id,
                    key_hash,
                    60,
                    "v1",
                    reply_id=reply_id,
                    prompt_estimate=7,
                )

        await reserve(dead_reply)
        try:
            await reserve(live_reply)
        except GatewayError as error:
            assert error.message.startswith("Not enough budget left") and "60 are held" in error.message
        else:
            raise AssertionError("a second reservation fitted into a budget already held")

        # Past the TTL the held tokens are given back, and the new call gets them.
        long_ago = datetime.now(UTC) - timedelta(seconds=gateway_settings.gateway_reservation_ttl + 1)
        async with transaction(sessions) as session:
            await session.execute(update(GatewayCharge).values(created_at=long_ago))
        await reserve(live_reply)
        assert [charge.inference_message_id for charge in ledger.charges()] == [live_reply]

        # The dead call answers after all: its tokens went back to the account, so it is charged nothing.
        async with transaction(sessions) as session:
            await budgets.settle_reply(session, dead_reply, 30, 20)
        assert ledger.account(account_id).usage == 0
        # The live one: the worker counted no prompt, so the estimate made at reservation stands in for it.
        async with transaction(sessions) as session:
            await budgets.settle_reply(session, live_reply, None, 5)
            await budgets.settle_reply(session, live_reply, None, 5)  # settled once only
        await engine.dispose()

    asyncio.run(run())
    account = ledger.account(account_id)
    assert (account.usage, account.reserved) == (12, 0)
    assert [(c.state, c.reserved_tokens, c.prompt_tokens, c.charged_tokens) for c in ledger.charges()] == [
        ("settled", 60, 7, 12)
    ]
