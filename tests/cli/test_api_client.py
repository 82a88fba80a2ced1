"""`oasst api-client create` mints a working key once; a server without any key says how to get one."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from oasst.app import create_app
from oasst.cli.main import app as cli
from oasst.config import Settings


def test_created_key_works_and_is_trusted_only_when_asked(
    make_settings: Callable[..., Settings], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OASST_DATABASE_URL", database_url)
    runner = CliRunner()
    trusted = runner.invoke(cli, ["api-client", "create", "website", "--trusted"])
    plain = runner.invoke(cli, ["api-client", "create", "discord bot"])
    assert trusted.exit_code == plain.exit_code == 0, trusted.output + plain.output
    trusted_key, plain_key = trusted.output.strip().splitlines()[-1], plain.output.strip().splitlines()[-1]
    assert len(trusted_key) == len(plain_key) == 64 and trusted_key != plain_key

    with TestClient(create_app(make_settings(bootstrap_api_key=None))) as client:
        stats = "/api/v1/stats/"  # a trusted-only route
        assert client.get(stats, headers={"X-API-Key": trusted_key}).status_code == 200
        refused = client.get(stats, headers={"X-API-Key": plain_key})
        assert refused.status_code == 403 and refused.json()["error_code"] == 2
        assert client.get(stats, params={"api_key": trusted_key}).status_code == 200


def test_server_without_clients_says_how_to_create_one(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), TestClient(create_app(make_settings(bootstrap_api_key=None))):
        pass
    assert "oasst api-client create" in caplog.text
