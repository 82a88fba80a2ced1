"""`oasst gateway`: accounts made and keys rotated from the command line, and usage per account and UTC day
as JSON and CSV (the same rows as the admin's GET /api/usage)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from oasst.cli.main import app as cli
from oasst.collection.auth.service import hash_key
from oasst.config import Settings
from oasst.db.models import GatewayCharge
from oasst.db.session import create_engine, sessionmaker, transaction
from oasst.gateway import budgets
from tests.gateway.conftest import Gateway, Ledger


def _spend(settings: Settings, account_id: int, key: str, calls: list[tuple[int, int]]) -> None:
    """Reserve and settle calls of (prompt, completion) tokens, as a chat would."""

    async def run() -> None:
        engine = create_engine(settings.effective_database_url)
        sessions = sessionmaker(engine)
        for prompt, completion in calls:
            reply_id = uuid.uuid4()
            async with transaction(sessions) as session:
                await budgets.reserve(
                    session, settings, account_id, hash_key(key), 100, "chat", reply_id=reply_id
                )
            async with transaction(sessions) as session:
                await budgets.settle_reply(session, reply_id, prompt, completion)
        await engine.dispose()

    asyncio.run(run())


def test_accounts_keys_and_usage_from_the_command_line(
    gateway: Gateway,
    gateway_settings: Settings,
    ledger: Ledger,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OASST_DATABASE_URL", database_url)
    runner = CliRunner()
    made = runner.invoke(
        cli, ["gateway", "create-account", "Team A", "--course", "CS-552", "--budget", "500"]
    )
    assert made.exit_code == 0, made.output
    account_id, key = made.output.strip().removeprefix("account ").split(": ")
    assert gateway.as_account(key, "GET", "/api/chats/budget").json() == {"usage": 0, "limit": 500}
    twin = runner.invoke(cli, ["gateway", "create-account", "Team A", "--course", "CS-552"])
    assert twin.exit_code == 1 and "Account with name Team A already exists" in twin.output

    rotated = runner.invoke(cli, ["gateway", "rotate-key", account_id])
    assert rotated.exit_code == 0
    assert gateway.as_account(key, "GET", "/api/chats").status_code == 401
    assert gateway.as_account(rotated.output.strip(), "GET", "/api/chats").status_code == 200

    other, other_key = gateway.new_account("Team B")
    _spend(gateway_settings, int(account_id), rotated.output.strip(), [(10, 5), (3, 2)])
    _spend(gateway_settings, other, other_key, [(7, 1)])
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    first = ledger.charges()[0].id
    with ledger.engine.begin() as conn:  # the first call counted for yesterday
        conn.execute(update(GatewayCharge).where(GatewayCharge.id == first).values(day=yesterday))

    expected = [
        {
            "account": "Team A",
            "day": yesterday.isoformat(),
            "requests": 1,
            "prompt_tokens": 10,
            "charged_tokens": 15,
        },
        {
            "account": "Team A",
            "day": today.isoformat(),
            "requests": 1,
            "prompt_tokens": 3,
            "charged_tokens": 5,
        },
        {
            "account": "Team B",
            "day": today.isoformat(),
            "requests": 1,
            "prompt_tokens": 7,
            "charged_tokens": 8,
        },
    ]
    report = runner.invoke(cli, ["gateway", "usage"])
    assert report.exit_code == 0, report.output
    rows = json.loads(report.output)
    assert [{key: row[key] for key in expected[0]} for row in rows] == expected
    assert rows[0]["course"] == "CS-552" and rows[0]["completion_tokens"] == 5
    assert gateway.admin("GET", "/api/usage").json() == rows

    as_csv = runner.invoke(cli, ["gateway", "usage", "--format", "csv", "--since", today.isoformat()])
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [(row["account"], row["charged_tokens"]) for row in parsed] == [("Team A", "5"), ("Team B", "8")]
    only_b = runner.invoke(cli, ["gateway", "usage", "--account", "Team B", "--until", yesterday.isoformat()])
    assert json.loads(only_b.output) == []
