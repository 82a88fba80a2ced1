"""Admins manage local accounts (roles, enabling and disabling) and the gateway's course accounts (budgets,
keys shown once, deactivation) in the browser; nobody else may."""

from __future__ import annotations

import re

import httpx
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


KEY = re.compile(r'<input id="gateway-key" value="([^"]+)" readonly')


def _budget(visitor: WebUser, key: str) -> httpx.Response:
    return visitor.client.get("/api/chats/budget", headers={"Authorization": f"Bearer {key}"})


def test_an_admin_manages_gateway_accounts(visitor: WebUser, web_settings: Settings) -> None:
    _accounts(web_settings, ("root", "admin"), ("mia", "moderator"))
    visitor.sign_in("root", PASSWORD)
    assert "No accounts here." in visitor.get("/admin/gateway").text

    created = visitor.post("/admin/gateway", {"name": "cs-101 <team>", "course": "CS-101", "budget": "500"})
    assert created.status_code == 200
    assert "cs-101 &lt;team&gt;" in created.text and "<team>" not in created.text
    match = KEY.search(created.text)
    assert match, created.text
    key = match.group(1)
    assert _budget(visitor, key).json() == {"usage": 0, "limit": 500}

    listing = visitor.get("/admin/gateway").text
    assert 'data-gateway-account="cs-101 &lt;team&gt;"' in listing
    assert key not in listing  # shown once, on the answer that made it
    account_id = re.search(r'action="/admin/gateway/(\d+)/budget"', listing).group(1)  # type: ignore[union-attr]

    visitor.post(f"/admin/gateway/{account_id}/budget", {"budget": "2000"})
    assert _budget(visitor, key).json()["limit"] == 2000
    assert visitor.post(f"/admin/gateway/{account_id}/budget", {"budget": "-1"}).status_code == 400

    rotated = visitor.post(f"/admin/gateway/{account_id}/rotate")
    new_key = KEY.search(rotated.text).group(1)  # type: ignore[union-attr]
    assert new_key != key
    assert _budget(visitor, key).status_code == 401
    assert _budget(visitor, new_key).status_code == 200

    taken = visitor.post("/admin/gateway", {"name": "cs-101 <team>", "course": "CS-101"})
    assert taken.status_code == 400 and "already exists" in taken.text
    assert visitor.post("/admin/gateway/999/rotate").status_code == 400  # the gateway's own "does not exist"

    visitor.post(f"/admin/gateway/{account_id}/deactivate")
    assert _budget(visitor, new_key).status_code == 401
    assert "No accounts here." in visitor.get("/admin/gateway").text
    assert 'data-gateway-account="cs-101 &lt;team&gt;"' in visitor.get("/admin/gateway?inactive=1").text

    forged = visitor.client.post("/admin/gateway", data={"name": "x", "course": "y"})
    assert forged.status_code == 403

    visitor.sign_in("mia", PASSWORD)
    assert visitor.client.get("/admin/gateway").status_code == 403
    assert visitor.post("/admin/gateway", {"name": "x", "course": "y"}).status_code == 403
    assert visitor.post(f"/admin/gateway/{account_id}/rotate").status_code == 403
