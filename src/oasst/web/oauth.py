"""Sign-in on the web UI through OAuth providers (Discord, GitHub, Google): off to the provider and back."""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass, field, replace
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import Path, Query
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from oasst.accounts.service import MAX_DISPLAY_NAME
from oasst.collection.deps import SessionDep
from oasst.config import OAuthEndpoints, OAuthProvider, Settings
from oasst.errors import OasstError
from oasst.protocol.collection import ErrorCode
from oasst.web import service
from oasst.web.deps import Page, PageDep, safe_next, sign_in_rate_limited
from oasst.web.i18n import N_
from oasst.web.sessions import OAuthPending

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0)
MAX_ACCOUNT_ID = 128  # the frontend id is at most 200 characters, "github:" included


@dataclass(frozen=True)
class Provider:
    """An OAuth provider: where people sign in, where the code becomes a token, where to ask who signed in,
    which fields of that answer hold the account id and the name; and this site's credentials there."""

    name: OAuthProvider
    title: str
    scope: str
    authorize: str
    token: str
    userinfo: str
    id_field: str
    name_field: str
    client_id: str = ""
    client_secret: str = field(default="", repr=False)


PROVIDERS = {
    provider.name: provider
    for provider in (
        Provider(
            "discord",
            "Discord",
            "identify",
            "https://discord.com/oauth2/authorize",
            "https://discord.com/api/oauth2/token",
            "https://discord.com/api/users/@me",
            "id",
            "username",
        ),
        Provider(
            "github",
            "GitHub",
            "read:user",
            "https://github.com/login/oauth/authorize",
            "https://github.com/login/oauth/access_token",
            "https://api.github.com/user",
            "id",
            "login",
        ),
        # OpenID Connect's userinfo: `sub` is the id the People API calls `people/{id}`, as upstream keys it.
        Provider(
            "google",
            "Google",
            "openid profile",
            "https://accounts.google.com/o/oauth2/v2/auth",
            "https://oauth2.googleapis.com/token",
            "https://openidconnect.googleapis.com/v1/userinfo",
            "sub",
            "name",
        ),
    )
}


def offered(settings: Settings) -> dict[str, Provider]:
    """The providers of this site: those whose client id is set, with their endpoints as configured."""
    credentials = {
        "discord": (settings.auth_discord_client_id, settings.auth_discord_client_secret),
        "github": (settings.auth_github_client_id, settings.auth_github_client_secret),
        "google": (settings.auth_google_client_id, settings.auth_google_client_secret),
    }
    providers: dict[str, Provider] = {}
    for name, provider in PROVIDERS.items():
        client_id, client_secret = credentials[name]
        if client_id:
            endpoints = settings.oauth_endpoints.get(name, OAuthEndpoints()).model_dump(exclude_none=True)
            providers[name] = replace(provider, client_id=client_id, client_secret=client_secret, **endpoints)
    return providers


@dataclass(frozen=True)
class Identity:
    """Who signed in, as the provider says."""

    account_id: str
    name: str


def _object(answer: httpx.Response) -> dict[str, Any]:
    """The JSON object of a successful answer; an httpx.HTTPStatusError or a ValueError otherwise."""
    answer.raise_for_status()
    data = answer.json()
    if not isinstance(data, dict):
        raise ValueError(f"{answer.request.url} answered no JSON object")
    return data


async def identify(provider: Provider, code: str, redirect_uri: str) -> Identity | None:
    """Swap the callback's code for a token and ask the provider whose it is; None if it will not say."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
    }
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, headers={"Accept": "application/json"}) as http:
            answer = _object(await http.post(provider.token, data=form))
            token = answer.get("access_token")
            if not isinstance(token, str) or not token:  # GitHub says "no" with a 200 and an `error`
                raise ValueError(f"no access token ({answer.get('error', 'and no error')})")
            profile = _object(await http.get(provider.userinfo, headers={"Authorization": f"Bearer {token}"}))
    except (httpx.HTTPError, ValueError) as error:
        log.warning("sign-in with %s failed: %s", provider.title, error)
        return None
    raw_id, raw_name = profile.get(provider.id_field), profile.get(provider.name_field)
    account_id = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else ""
    if not 0 < len(account_id) <= MAX_ACCOUNT_ID:
        log.warning("sign-in with %s failed: no usable %r in the profile", provider.title, provider.id_field)
        return None
    name = raw_name.strip() if isinstance(raw_name, str) else ""
    return Identity(account_id, (name or account_id)[:MAX_DISPLAY_NAME])


# --- the pages ---------------------------------------------------------------------------------------------

ProviderName = Annotated[str, Path(max_length=16)]
Param = Annotated[str | None, Query(max_length=2048)]


def _provider(page: Page, name: str) -> Provider:
    provider = offered(page.settings).get(name)
    if provider is None:  # unknown, or not configured on this site
        raise HTTPException(404)
    return provider


def _redirect_uri(page: Page, provider: Provider) -> str:
    """The callback's absolute URL, as the provider must have it registered."""
    return f"{str(page.request.base_url).rstrip('/')}/signin/{provider.name}/callback"


def _refused(page: Page, status: int, message: str, provider: Provider) -> OasstError:
    """An error page that names the provider, in the page's language."""
    text = page.gettext(message) % {"provider": provider.title}
    return OasstError(text, ErrorCode.GENERIC_ERROR, status)


async def start(
    page: PageDep, provider: ProviderName, next: Annotated[str, Query(max_length=2000)] = "/"
) -> Response:
    """Off to the provider's sign-in, with a fresh `state` kept in the session for the callback."""
    chosen = _provider(page, provider)
    state = secrets.token_urlsafe(24)
    page.session.start_oauth(OAuthPending(chosen.name, state, safe_next(next)))
    query = {
        "client_id": chosen.client_id,
        "redirect_uri": _redirect_uri(page, chosen),
        "response_type": "code",
        "scope": chosen.scope,
        "state": state,
    }
    return RedirectResponse(f"{chosen.authorize}?{urlencode(query)}", status_code=302)


async def callback(
    page: PageDep,
    session: SessionDep,
    provider: ProviderName,
    code: Param = None,
    state: Param = None,
    error: Param = None,
) -> Response:
    """Back from the provider: check the state, learn who signed in, sign them in as that frontend user."""
    chosen = _provider(page, provider)
    if await sign_in_rate_limited(page.request):
        raise OasstError(
            N_("Too many sign-in attempts. Please wait a few minutes."), ErrorCode.GENERIC_ERROR, 429
        )
    pending = page.session.take_oauth()
    if (
        pending is None
        or pending.provider != chosen.name
        or state is None
        or not hmac.compare_digest(pending.state.encode(), state.encode())
    ):
        raise OasstError(
            N_("This sign-in did not start here or has expired. Please sign in again."),
            ErrorCode.GENERIC_ERROR,
            400,
        )
    if error is not None or not code:
        raise _refused(page, 401, N_("%(provider)s did not sign you in."), chosen)
    identity = await identify(chosen, code, _redirect_uri(page, chosen))
    if identity is None:
        message = N_("%(provider)s did not confirm who you are. Please try again later.")
        raise _refused(page, 502, message, chosen)
    user = await service.oauth_sign_in(
        session, page.settings, chosen.name, identity.account_id, identity.name
    )
    await service.contributor(session, page.client, user)
    page.session.sign_in(user)
    return page.redirect(pending.next)
