"""OAuth sign-in on the web UI against stand-ins of Discord, GitHub and Google served on a local port."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.app import create_app
from oasst.config import Settings
from oasst.db.models import User
from tests.live import serve
from tests.web.flow import in_transaction
from tests.web.providers import SCOPES, FakeProviders, Person


def _frontend_users(settings: Settings) -> dict[tuple[str, str], str]:
    """(auth_method, username) -> display name of every frontend user."""

    async def read(session: AsyncSession) -> dict[tuple[str, str], str]:
        return {
            (row.auth_method, row.username): row.display_name for row in await session.scalars(select(User))
        }

    result: dict[tuple[str, str], str] = in_transaction(settings, read)
    return result


PEOPLE = {
    "discord": Person("80351110224678912", "nelly"),
    "github": Person("583231", "octocat"),
    "google": Person("110169484474386276334", "Ada Lovelace"),
}
# The collection protocol knows no "github": GitHub accounts are local users "github:ID".
IDENTITIES = {
    "discord": ("discord", "80351110224678912"),
    "github": ("local", "github:583231"),
    "google": ("google", "110169484474386276334"),
}


def test_each_provider_signs_a_person_in_and_knows_them_again(
    fake: FakeProviders, oauth_settings: Callable[..., Settings]
) -> None:
    settings = oauth_settings()
    with serve(settings) as site:
        for name, person in PEOPLE.items():
            fake.person[name] = person
            with httpx.Client(base_url=site, follow_redirects=True) as browser:
                page = browser.get(f"/signin/{name}", params={"next": "/profile"})
                assert page.status_code == 200, page.text
                assert page.url.path == "/profile"
                assert f"<h1>{person.name}</h1>" in page.text
                assert browser.get("/contribute").status_code == 200
                assert browser.get("/chat").status_code == 200
            assert fake.authorizations[-1]["redirect_uri"] == f"{site}/signin/{name}/callback"
        assert _frontend_users(settings) == {IDENTITIES[name]: person.name for name, person in PEOPLE.items()}

        # Again from other browsers, renamed at the provider meanwhile; an off-site `next` goes home instead.
        for name, person in PEOPLE.items():
            fake.person[name] = Person(person.id, f"{person.name} Renamed")
            with httpx.Client(base_url=site, follow_redirects=True) as browser:
                page = browser.get(f"/signin/{name}", params={"next": "https://evil.example/"})
                assert str(page.url) == f"{site}/"
                assert f'<span class="who" title="user">{person.name} Renamed</span>' in page.text
        # The same users, renamed at sign-in (the home page itself never looks them up).
        renamed = {IDENTITIES[name]: f"{person.name} Renamed" for name, person in PEOPLE.items()}
        assert _frontend_users(settings) == renamed


def test_a_callback_that_did_not_start_in_this_browser_is_refused(
    fake: FakeProviders, oauth_settings: Callable[..., Settings]
) -> None:
    settings = oauth_settings()
    fake.person["github"] = PEOPLE["github"]
    with serve(settings) as site, httpx.Client(base_url=site) as browser:
        to_provider = browser.get("/signin/github")
        assert to_provider.status_code == 302
        callback = httpx.URL(httpx.get(to_provider.headers["location"]).headers["location"])
        assert callback.path == "/signin/github/callback" and callback.params["code"]

        refused = browser.get(callback.copy_set_param("state", "forged"))
        assert refused.status_code == 400
        assert "did not start here" in refused.text
        assert browser.get(callback).status_code == 400  # the state was spent by the forged try
        with httpx.Client() as stranger:
            assert stranger.get(callback).status_code == 400
        assert browser.get("/profile").status_code == 303  # still not signed in
    assert _frontend_users(settings) == {}


def test_provider_failures_are_error_pages_and_sign_nobody_in(
    fake: FakeProviders, oauth_settings: Callable[..., Settings]
) -> None:
    with socket.socket() as closed:  # a port nobody listens on: the provider cannot be reached
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/token"
    endpoints = {name: fake.endpoints(name) for name in SCOPES}
    endpoints["google"]["token"] = dead
    settings = oauth_settings(oauth_endpoints=endpoints)
    fake.person.update(PEOPLE)
    with serve(settings) as site, httpx.Client(base_url=site, follow_redirects=True) as browser:
        fake.deny = True
        page = browser.get("/signin/discord")
        assert page.status_code == 401
        assert "Discord did not sign you in." in page.text

        fake.deny, fake.refuse_codes = False, True
        page = browser.get("/signin/github")
        assert page.status_code == 502
        assert "GitHub did not confirm who you are." in page.text

        fake.refuse_codes = False
        page = browser.get("/signin/google")
        assert page.status_code == 502
        assert "Google did not confirm who you are." in page.text
        assert browser.get("/profile", follow_redirects=False).status_code == 303
    assert _frontend_users(settings) == {}


def test_only_configured_providers_are_offered(
    fake: FakeProviders, oauth_settings: Callable[..., Settings]
) -> None:
    settings = oauth_settings(configured=("github",), local_auth=False)
    with TestClient(create_app(settings)) as client:
        page = client.get("/signin?next=/profile").text
        assert 'href="/signin/github?next=/profile"' in page
        assert "Sign in with GitHub" in page
        assert "/signin/discord" not in page and "/signin/google" not in page
        assert "Mit GitHub anmelden" in client.get("/signin", headers={"accept-language": "de"}).text

        to_github = client.get("/signin/github", follow_redirects=False)
        assert to_github.status_code == 302
        assert to_github.headers["location"].startswith(f"{fake.url}/github/authorize?")
        for path in ("/signin/discord", "/signin/google/callback?code=c&state=s", "/signin/nowhere"):
            assert client.get(path, follow_redirects=False).status_code == 404, path


def test_the_callback_counts_as_a_sign_in_attempt(
    fake: FakeProviders, oauth_settings: Callable[..., Settings]
) -> None:
    settings = oauth_settings(rate_limit=True, web_signin_attempts=2)
    with TestClient(create_app(settings)) as client:
        statuses = [client.get("/signin/github/callback?code=c&state=s").status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
