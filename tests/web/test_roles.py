"""Roles of people who sign in with Discord, GitHub or Google: admins give and take them on Admin → OAuth
sign-ins, the change takes effect at the person's next request, and ADMIN_USERS / MODERATOR_USERS give the
first ones; nobody else may change a role."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.accounts import service as accounts
from oasst.config import Settings
from oasst.db.models import User
from tests.live import serve
from tests.web.flow import WebUser, in_transaction
from tests.web.providers import FakeProviders, Person

PASSWORD = "correct horse battery"
NELLY = Person("80351110224678912", "nelly")
OCTOCAT = Person("583231", "octocat")
ADA = Person("110169484474386276334", "Ada Lovelace")
ROW = re.compile(
    r'<tr data-person="([0-9a-f-]{36})" data-role="(\w+)">\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*'
    r"<td>([^<]*)</td>"
)

Browsers = Callable[[str], WebUser]


@dataclass(frozen=True)
class Row:
    """A person on the admins' list."""

    id: str
    role: str
    provider: str
    account_id: str


def people(admin: WebUser, search: str = "") -> dict[str, Row]:
    """The admins' list of OAuth sign-ins, by display name."""
    page = admin.get(f"/admin/people?q={search}" if search else "/admin/people")
    assert page.status_code == 200, page.text
    return {
        html.unescape(name): Row(row_id, role, provider, account_id)
        for row_id, role, name, provider, account_id in ROW.findall(page.text)
    }


def local_admin(settings: Settings) -> None:
    """A local account `root` with the role admin."""
    in_transaction(settings, lambda session: accounts.register(session, "root", PASSWORD, "Root", "admin"))


def contributor_id(settings: Settings, auth_method: str, username: str) -> str:
    async def read(session: AsyncSession) -> str:
        row = await session.scalar(
            select(User).where(User.auth_method == auth_method, User.username == username)
        )
        assert row is not None
        return str(row.id)

    result: str = in_transaction(settings, read)
    return result


def test_an_admin_makes_an_oauth_person_a_moderator_and_takes_it_back_at_once(
    fake: FakeProviders, oauth_settings: Callable[..., Settings], browsers: Browsers
) -> None:
    settings = oauth_settings()
    local_admin(settings)
    with serve(settings) as site:
        nelly, root = browsers(site), browsers(site)
        fake.sign_in(nelly, "discord", NELLY)
        assert nelly.get("/moderation").status_code == 403
        root.sign_in("root", PASSWORD)
        listed = people(root)["nelly"]
        assert (listed.role, listed.provider, listed.account_id) == ("user", "Discord", NELLY.id)

        promoted = root.post(f"/admin/people/{listed.id}", {"role": "moderator"})
        assert promoted.status_code == 200 and promoted.url.path == "/admin/people"
        assert people(root)["nelly"].role == "moderator"
        # Nelly's session, started as a volunteer, is a moderator's from her next request on.
        moderation = nelly.get("/moderation")
        assert moderation.status_code == 200
        assert 'title="moderator"' in moderation.text

        # The moderator page of her contributions leads admins (only) to her role.
        user_page = f"/moderation/users/{contributor_id(settings, 'discord', NELLY.id)}"
        seen_by_admin = root.get(user_page).text
        assert 'data-web-role="moderator"' in seen_by_admin
        assert f'href="/admin/people?q={NELLY.id}"' in seen_by_admin
        assert list(people(root, NELLY.id)) == ["nelly"]
        assert "data-web-role" not in nelly.get(user_page).text

        assert root.post(f"/admin/people/{listed.id}", {"role": "user"}).status_code == 200
        assert nelly.get("/moderation").status_code == 403
        assert nelly.get(user_page).status_code == 403


def test_only_admins_change_roles_and_only_with_the_form_s_token(
    fake: FakeProviders, oauth_settings: Callable[..., Settings], browsers: Browsers
) -> None:
    settings = oauth_settings()
    local_admin(settings)
    with serve(settings) as site:
        nelly, octocat, root = browsers(site), browsers(site), browsers(site)
        fake.sign_in(nelly, "discord", NELLY)
        fake.sign_in(octocat, "github", OCTOCAT)
        root.sign_in("root", PASSWORD)
        listed = people(root)
        assert listed["octocat"].provider == "GitHub"
        assert root.post(f"/admin/people/{listed['nelly'].id}", {"role": "moderator"}).status_code == 200
        assert nelly.get("/moderation").status_code == 200

        # A moderator may not grant admin or moderator, to herself or anyone, nor see the list; nor may
        # a volunteer.
        for person in (nelly, octocat):
            assert person.get("/admin/people").status_code == 403
            for target, role in (("nelly", "admin"), ("octocat", "moderator"), ("octocat", "admin")):
                refused = person.post(f"/admin/people/{listed[target].id}", {"role": role})
                assert refused.status_code == 403, (target, role)
        assert nelly.get("/admin/api_clients").status_code == 403

        # An admin's change needs the form's token; bad input is a clear error page.
        octocat_id = listed["octocat"].id
        forged = root.client.post(f"/admin/people/{octocat_id}", data={"role": "admin"})
        assert forged.status_code == 403 and "did not come from this site" in forged.text
        unknown_role = root.post(f"/admin/people/{octocat_id}", {"role": "emperor"})
        assert unknown_role.status_code == 422 and "Unknown role" in unknown_role.text
        nobody = root.post("/admin/people/00000000-0000-4000-8000-000000000000", {"role": "admin"})
        assert nobody.status_code == 404 and "no such person" in nobody.text
        assert root.post("/admin/people/not-an-id", {"role": "admin"}).status_code == 400
        assert root.post(f"/admin/people/{octocat_id}", {"role": "a" * 17}).status_code == 400
        assert root.get("/admin/people?q=" + "x" * 129).status_code == 400

        roles = {name: row.role for name, row in people(root).items()}
        assert roles == {"nelly": "moderator", "octocat": "user"}
        assert octocat.get("/moderation").status_code == 403


def test_the_settings_make_the_first_admin_who_cannot_demote_themselves(
    fake: FakeProviders, oauth_settings: Callable[..., Settings], browsers: Browsers
) -> None:
    settings = oauth_settings(admin_users=f" github:{OCTOCAT.id} ", moderator_users=f"google:{ADA.id}")
    with serve(settings) as site:
        ada, octocat = browsers(site), browsers(site)
        fake.sign_in(ada, "google", ADA)
        assert ada.get("/moderation").status_code == 200
        assert ada.get("/admin/people").status_code == 403
        fake.sign_in(octocat, "github", OCTOCAT)
        listed = people(octocat)
        page = octocat.get("/admin/people").text
        assert 'data-configured="admin"' in page and 'data-configured="moderator"' in page
        assert {name: row.role for name, row in listed.items()} == {
            "octocat": "admin",
            "Ada Lovelace": "moderator",
        }

        own = octocat.post(f"/admin/people/{listed['octocat'].id}", {"role": "user"})
        assert own.status_code == 400 and "You cannot change your own role" in own.text
        below = octocat.post(f"/admin/people/{listed['Ada Lovelace'].id}", {"role": "user"})
        assert below.status_code == 400 and "give this person a higher role" in below.text
        assert (
            octocat.post(f"/admin/people/{listed['Ada Lovelace'].id}", {"role": "admin"}).status_code == 200
        )
        assert ada.get("/admin/people").status_code == 200
        assert people(octocat)["octocat"].role == "admin"

    # The settings only raise a role, they store none: without them octocat is a volunteer again, while
    # the role an admin gave Ada stays.
    with serve(oauth_settings()) as site:
        ada, octocat = browsers(site), browsers(site)
        fake.sign_in(octocat, "github", OCTOCAT)
        assert octocat.get("/moderation").status_code == 403
        fake.sign_in(ada, "google", ADA)
        assert {name: row.role for name, row in people(ada).items()} == {
            "Ada Lovelace": "admin",
            "octocat": "user",
        }


def test_a_deleted_account_leaves_the_list(
    fake: FakeProviders, oauth_settings: Callable[..., Settings], browsers: Browsers
) -> None:
    settings = oauth_settings(admin_users=f"github:{OCTOCAT.id}")
    with serve(settings) as site:
        nelly, octocat = browsers(site), browsers(site)
        fake.sign_in(nelly, "discord", NELLY)
        fake.sign_in(octocat, "github", OCTOCAT)
        assert (
            octocat.post(f"/admin/people/{people(octocat)['nelly'].id}", {"role": "moderator"}).status_code
            == 200
        )
        nelly.get("/account/delete")
        deleted = nelly.post("/account/delete", {"confirm": "true"})
        assert deleted.status_code == 200 and deleted.url.path == "/account/deleted"
        assert list(people(octocat)) == ["octocat"]
        # Signing in again is a new start, as a volunteer.
        fake.sign_in(nelly, "discord", NELLY)
        assert people(octocat)["nelly"].role == "user"
        assert nelly.get("/moderation").status_code == 403


@pytest.mark.parametrize("listed", ["gitlab:1", "github", "github:", f"discord:{'9' * 129}"])
def test_a_bad_entry_in_the_settings_stops_the_start(listed: str) -> None:
    with pytest.raises(ValidationError, match="PROVIDER:ACCOUNT_ID"):
        Settings(_env_file=None, admin_users=listed)  # type: ignore[call-arg]
