"""Local accounts: registration rules, constant-time sign-in, scrypt hashes that carry their parameters,
roles, and the `oasst accounts` commands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from oasst.accounts import service
from oasst.cli.main import app as cli
from oasst.db.models import LocalAccount
from oasst.db.session import create_engine, sessionmaker, transaction
from oasst.errors import OasstError
from oasst.protocol.collection import ErrorCode

PASSWORD = "correct horse battery"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield sessionmaker(engine)
    await engine.dispose()


async def _register(sessions: async_sessionmaker[AsyncSession], username: str, **extra: str) -> LocalAccount:
    async with transaction(sessions) as session:
        return await service.register(session, username, extra.pop("password", PASSWORD), **extra)


async def _authenticate(
    sessions: async_sessionmaker[AsyncSession], username: str, password: str
) -> LocalAccount | None:
    async with transaction(sessions) as session:
        return await service.authenticate(session, username, password)


@pytest.mark.anyio
async def test_an_account_signs_in_with_its_password_in_any_case(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    account = await _register(sessions, "Alice")
    assert (account.username, account.display_name, account.role, account.enabled) == (
        "alice",
        "Alice",
        "user",
        True,
    )
    assert PASSWORD not in account.password_hash
    scheme, n, r, p, _salt, _key = account.password_hash.split("$")
    assert (scheme, int(n), int(r), int(p)) == (
        "scrypt",
        service.SCRYPT_N,
        service.SCRYPT_R,
        service.SCRYPT_P,
    )

    signed_in = await _authenticate(sessions, "ALICE", PASSWORD)
    assert signed_in is not None and signed_in.id == account.id
    assert await _authenticate(sessions, "alice", PASSWORD + "!") is None
    assert await _authenticate(sessions, "nobody", PASSWORD) is None
    async with transaction(sessions) as session:
        await service.set_enabled(session, "alice", False)
    assert await _authenticate(sessions, "alice", PASSWORD) is None


def test_the_same_password_hashes_differently_each_time() -> None:
    first, second = service.hash_password(PASSWORD), service.hash_password(PASSWORD)
    assert first != second
    assert service.verify_password(PASSWORD, first) and service.verify_password(PASSWORD, second)
    assert not service.verify_password("wrong password", first)
    assert not service.verify_password(PASSWORD, "md5$abc")
    assert not service.verify_password(PASSWORD, "garbage")


@pytest.mark.anyio
async def test_a_hash_with_older_parameters_still_works_and_is_renewed(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SCRYPT_N", 2**12)
    old = await _register(sessions, "bob")
    assert old.password_hash.startswith("scrypt$4096$")
    monkeypatch.undo()
    signed_in = await _authenticate(sessions, "bob", PASSWORD)
    assert signed_in is not None
    assert signed_in.password_hash.startswith(f"scrypt${service.SCRYPT_N}$")
    assert await _authenticate(sessions, "bob", PASSWORD) is not None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("username", "password", "role", "code"),
    [
        ("ALICE", PASSWORD, "user", ErrorCode.ACCOUNT_USERNAME_TAKEN),
        ("al", PASSWORD, "user", ErrorCode.ACCOUNT_USERNAME_INVALID),
        ("a" * 33, PASSWORD, "user", ErrorCode.ACCOUNT_USERNAME_INVALID),
        ("no spaces", PASSWORD, "user", ErrorCode.ACCOUNT_USERNAME_INVALID),
        ("_leading", PASSWORD, "user", ErrorCode.ACCOUNT_USERNAME_INVALID),
        ("carol", "short", "user", ErrorCode.ACCOUNT_PASSWORD_INVALID),
        ("carol", "x" * 257, "user", ErrorCode.ACCOUNT_PASSWORD_INVALID),
        ("carolina", "Carolina", "user", ErrorCode.ACCOUNT_PASSWORD_INVALID),
        ("carol", PASSWORD, "root", ErrorCode.ACCOUNT_ROLE_INVALID),
    ],
)
async def test_registration_refuses_bad_input_with_a_clear_code(
    sessions: async_sessionmaker[AsyncSession], username: str, password: str, role: str, code: ErrorCode
) -> None:
    await _register(sessions, "alice")
    with pytest.raises(OasstError) as refused:
        await _register(sessions, username, password=password, role=role)
    assert refused.value.code == code
    assert refused.value.status == (409 if code == ErrorCode.ACCOUNT_USERNAME_TAKEN else 422)


@pytest.mark.anyio
async def test_one_of_two_simultaneous_registrations_of_a_name_wins(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    results = await asyncio.gather(
        _register(sessions, "dave"), _register(sessions, "Dave"), return_exceptions=True
    )
    created = [result for result in results if isinstance(result, LocalAccount)]
    refused = [result for result in results if isinstance(result, OasstError)]
    assert len(created) == 1 and len(refused) == 1
    assert refused[0].code == ErrorCode.ACCOUNT_USERNAME_TAKEN


@pytest.mark.anyio
async def test_roles_and_passwords_change(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _register(sessions, "erin")
    async with transaction(sessions) as session:
        assert (await service.set_role(session, "Erin", "moderator")).role == "moderator"
        await service.set_password(session, "erin", "a new password")
        with pytest.raises(OasstError) as missing:
            await service.set_role(session, "frank", "admin")
        assert (missing.value.status, missing.value.code) == (404, ErrorCode.ACCOUNT_NOT_FOUND)
        with pytest.raises(OasstError):
            await service.set_password(session, "erin", "short")
    assert await _authenticate(sessions, "erin", PASSWORD) is None
    account = await _authenticate(sessions, "erin", "a new password")
    assert account is not None and account.role == "moderator"


def test_the_accounts_commands(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OASST_DATABASE_URL", database_url)
    runner = CliRunner()
    created = runner.invoke(
        cli, ["accounts", "create", "Grace", "--role", "admin", "--password-stdin"], input=f"{PASSWORD}\n"
    )
    assert created.exit_code == 0, created.output
    assert "created grace (admin)" in created.output
    prompted = runner.invoke(cli, ["accounts", "create", "heidi"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output

    again = runner.invoke(cli, ["accounts", "create", "GRACE", "--password-stdin"], input=f"{PASSWORD}\n")
    assert again.exit_code == 1 and "taken" in again.output
    weak = runner.invoke(cli, ["accounts", "create", "ivan", "--password-stdin"], input="short\n")
    assert weak.exit_code == 1 and "at least 8" in weak.output

    assert runner.invoke(cli, ["accounts", "set-role", "heidi", "moderator"]).exit_code == 0
    assert runner.invoke(cli, ["accounts", "set-role", "heidi", "god"]).exit_code == 1
    assert runner.invoke(cli, ["accounts", "disable", "grace"]).exit_code == 0
    listed = runner.invoke(cli, ["accounts", "list"])
    assert listed.exit_code == 0
    rows = [line.split()[:3] for line in listed.output.strip().splitlines()]
    assert rows == [["grace", "admin", "disabled"], ["heidi", "moderator", "enabled"]]
