"""Browser sessions in signed cookies: who is signed in, the CSRF token and the chosen language."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any, Literal

from oasst.config import Settings

COOKIE = "oasst_session"
SECRET_FILE = "web_secret"
SignInKind = Literal["local", "dev", "discord", "github", "google"]


@dataclass
class SignedIn:
    """The person behind a session: a local account (`id` is its uuid), a development sign-in (a name) or
    an account at an OAuth provider (`id` is the provider's account id)."""

    kind: SignInKind
    id: str
    name: str
    role: str


@dataclass
class OAuthPending:
    """An OAuth sign-in under way: the provider, the `state` it must send back, where to go afterwards."""

    provider: str
    state: str
    next: str


@dataclass
class WebSession:
    """What a browser carries between requests. `dirty` says the cookie must be written again."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user: SignedIn | None = None
    lang: str | None = None
    oauth: OAuthPending | None = None
    dirty: bool = False

    def sign_in(self, user: SignedIn) -> None:
        """Start a signed-in session with a fresh CSRF token (no token from before the sign-in survives)."""
        self.user, self.csrf, self.dirty = user, secrets.token_urlsafe(24), True

    def sign_out(self) -> None:
        self.user, self.csrf, self.dirty = None, secrets.token_urlsafe(24), True

    def set_lang(self, lang: str) -> None:
        self.lang, self.dirty = lang, True

    def start_oauth(self, pending: OAuthPending) -> None:
        self.oauth, self.dirty = pending, True

    def take_oauth(self) -> OAuthPending | None:
        """The OAuth sign-in under way, forgotten at once: its `state` is good for one callback."""
        pending, self.oauth = self.oauth, None
        self.dirty = self.dirty or pending is not None
        return pending

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, token or "")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_secret(settings: Settings) -> str:
    """The configured secret, or one drawn once and kept (mode 600) in the data dir."""
    if settings.web_session_secret:
        return settings.web_session_secret
    path = Path(settings.data_dir) / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret


class SessionCodec:
    """Turns a session into a signed cookie value and back; a bad or expired value reads as no session."""

    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self._key = hashlib.sha256(b"oasst web session\0" + secret.encode()).digest()
        self.max_age = max_age_seconds

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def dumps(self, session: WebSession) -> str:
        data: dict[str, Any] = {"c": session.csrf, "l": session.lang, "e": int(time.time()) + self.max_age}
        if session.user is not None:
            user = session.user
            data["u"] = [user.kind, user.id, user.name, user.role]
        if session.oauth is not None:
            data["o"] = [session.oauth.provider, session.oauth.state, session.oauth.next]
        payload = _b64(json.dumps(data, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def loads(self, value: str | None) -> WebSession | None:
        if not value or "." not in value:
            return None
        payload, signature = value.rsplit(".", 1)
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            data = json.loads(_unb64(payload))
            if int(data["e"]) < time.time():
                return None
            user = SignedIn(*data["u"]) if data.get("u") else None
            oauth = OAuthPending(*data["o"]) if data.get("o") else None
            return WebSession(csrf=str(data["c"]), user=user, lang=data.get("l"), oauth=oauth)
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None

    def set_cookie_header(self, session: WebSession, *, secure: bool) -> str:
        """The Set-Cookie value: HttpOnly, SameSite=Lax, Secure over https."""
        cookie: SimpleCookie = SimpleCookie()
        cookie[COOKIE] = self.dumps(session)
        morsel = cookie[COOKIE]
        morsel["path"] = "/"
        morsel["max-age"] = self.max_age
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        if secure:
            morsel["secure"] = True
        return morsel.OutputString()


def read_cookie(header: str | None) -> str | None:
    """Our cookie's value from a Cookie header."""
    if not header:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(header)
    except CookieError:  # a malformed Cookie header is just no session
        return None
    morsel = cookie.get(COOKIE)
    return morsel.value if morsel else None
