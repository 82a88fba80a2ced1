"""Admins manage local accounts in the browser: roles, enabling and disabling; nobody else may."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.accounts import service as accounts
from oasst.config import Settings
from tests.web.flow import WebUser, in_transaction

PASSWORD = "correct horse battery"


def _accounts(settings: Settings, *names_and_roles: tuple[str, str]) -> None:
    async def make(session: AsyncSession) -> None:
        for name, role in names_and_roles:
            await accounts.register(session, name, PASSWORD, name.title(), role)

    in_transaction(settings, make)


def test_an_admin_changes_roles_and_disables_accounts(visitor: WebUser, web_settings: Settings) -> None:
    _accounts(web_settings, ("root", "admin"), ("bob", "user"), ("carol", "user"))
    visitor.sign_in("carol", PASSWORD)
    assert visitor.client.get("/profile").status_code == 200

    visitor.sign_in("root", PASSWORD)
    page = visitor.get("/admin/accounts").text
    assert 'data-account="bob"' in page and 'data-account="carol"' in page
    assert visitor.post("/admin/accounts/bob", {"role": "moderator"}).status_code == 200
    assert visitor.post("/admin/accounts/carol", {"enabled": "false"}).status_code == 200

    async def read(session: AsyncSession) -> tuple[str, bool]:
        bob = await accounts.get(session, "bob")
        carol = await accounts.get(session, "carol")
        return bob.role, carol.enabled

    assert in_transaction(web_settings, read) == ("moderator", False)
    refused = visitor.post("/admin/accounts/root", {"role": "user"})
    assert refused.status_code == 400 and "your own account" in refused.text
    assert visitor.post("/admin/accounts/nobody", {"role": "user"}).status_code == 404
    bad = visitor.post("/admin/accounts/bob", {"role": "emperor"})
    assert bad.status_code == 422 and "Unknown role" in bad.text

    # Bob, now a moderator, may halt trees but not manage accounts.
    visitor.sign_in("bob", PASSWORD)
    assert visitor.client.get("/admin/accounts").status_code == 403
    assert visitor.post("/admin/accounts/carol", {"enabled": "true"}).status_code == 403
    assert 'href="/admin/accounts"' not in visitor.get("/").text
