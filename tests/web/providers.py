"""Stand-ins of Discord, GitHub and Google as far as signing in goes, served on a local port by the
`providers` fixture."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from httpx import Response as Page

from tests.web.flow import WebUser

SCOPES = {"discord": "identify", "github": "read:user", "google": "openid profile"}


@dataclass(frozen=True)
class Person:
    """Someone with an account at a provider: its id there and their name."""

    id: str
    name: str


def _profile(provider: str, person: Person) -> dict[str, Any]:
    """The userinfo answer in the provider's own shape."""
    if provider == "discord":
        return {"id": person.id, "username": person.name, "global_name": None, "discriminator": "0"}
    if provider == "github":
        return {"id": int(person.id), "login": person.name, "name": None, "type": "User"}
    return {"sub": person.id, "name": person.name, "given_name": person.name.split()[0]}


class FakeProviders:
    """The three providers as far as signing in goes: authorize (agreeing at once), token, userinfo."""

    def __init__(self) -> None:
        self.url = ""
        self.reset()
        self.app = FastAPI()
        self.app.add_api_route("/health", lambda: {"status": "ok"})
        self.app.add_api_route("/{provider}/authorize", self.authorize)
        self.app.add_api_route("/{provider}/token", self.token, methods=["POST"])
        self.app.add_api_route("/{provider}/userinfo", self.userinfo)

    def reset(self) -> None:
        self.person: dict[str, Person] = {}  # who signs in next at each provider
        self.deny = False  # the person says no at the provider
        self.refuse_codes = False  # the token endpoint refuses every code
        self.authorizations: list[dict[str, str]] = []
        self._codes: dict[str, tuple[str, Person, str]] = {}
        self._tokens: dict[str, tuple[str, Person]] = {}

    def endpoints(self, provider: str) -> dict[str, str]:
        return {step: f"{self.url}/{provider}/{step}" for step in ("authorize", "token", "userinfo")}

    async def authorize(self, provider: str, request: Request) -> Response:
        query = dict(request.query_params)
        self.authorizations.append(query)
        if (
            query.get("client_id") != f"{provider}-client"
            or query.get("scope") != SCOPES[provider]
            or query.get("response_type") != "code"
            or not query.get("state")
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if self.deny:
            answer = {"error": "access_denied", "state": query["state"]}
        else:
            code = secrets.token_urlsafe(8)
            self._codes[code] = (provider, self.person[provider], query["redirect_uri"])
            answer = {"code": code, "state": query["state"]}
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(answer)}", status_code=302)

    async def token(self, provider: str, request: Request) -> Response:
        form = await request.form()
        grant = self._codes.pop(str(form.get("code")), None)
        if (
            self.refuse_codes
            or grant is None
            or grant[0] != provider
            or form.get("redirect_uri") != grant[2]
            or form.get("client_id") != f"{provider}-client"
            or form.get("client_secret") != f"{provider}-secret"
            or form.get("grant_type") != "authorization_code"
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        token = secrets.token_urlsafe(16)
        self._tokens[token] = (provider, grant[1])
        return JSONResponse({"access_token": token, "token_type": "Bearer", "scope": SCOPES[provider]})

    async def userinfo(self, provider: str, authorization: str = Header("")) -> Response:
        grant = self._tokens.get(authorization.removeprefix("Bearer "))
        if grant is None or grant[0] != provider:
            return JSONResponse({"message": "401: Unauthorized"}, status_code=401)
        return JSONResponse(_profile(provider, grant[1]))

    def sign_in(self, browser: WebUser, provider: str, person: Person) -> Page:
        """Sign `browser` (on a live site) in afresh as `person` at `provider`; the page it ends on."""
        self.person[provider] = person
        browser.client.cookies.clear()
        page = browser.get(f"/signin/{provider}")
        assert page.status_code == 200 and page.url.path == "/", page.text
        return page
