"""Request dependencies of the pages: the browser session, rendering, sign-in and role gates, CSRF."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from oasst.collection.deps import SessionDep
from oasst.config import Settings
from oasst.db.models import ApiClient
from oasst.errors import OasstError
from oasst.protocol.collection import ErrorCode
from oasst.web import service
from oasst.web.i18n import environment, pick_lang, translations
from oasst.web.sessions import SignedIn, WebSession

MODERATOR_ROLES = ("moderator", "admin")


class SignInRequired(Exception):
    """Raised by pages that need a signed-in person; answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def web_session(request: Request) -> WebSession:
    """The browser session the session middleware put on the request (an empty one if it did not run)."""
    session: WebSession | None = getattr(request.state, "web_session", None)
    if session is None:
        session = request.state.web_session = WebSession()
    return session


def dev_sign_in_allowed(settings: Settings) -> bool:
    return settings.debug or settings.allow_debug_auth


async def sign_in_rate_limited(request: Request) -> bool:
    """Count a sign-in attempt of the client address; True when it is over the limit."""
    limiter = request.app.state.rate_limiter
    if limiter is None:
        return False
    settings: Settings = request.app.state.settings
    host = request.client.host if request.client else "unknown"
    wait = await limiter.hit(
        f"web:signin:{host}", settings.web_signin_attempts, settings.web_signin_window_minutes * 60
    )
    return wait is not None


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site: no scheme, no host, no `//` (an open redirect otherwise)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


class Page:
    """Renders templates for one request in its language, with what every page shows."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.session = web_session(request)
        self.settings: Settings = request.app.state.settings
        self.lang = pick_lang(self.session.lang, request.headers.get("accept-language"))

    @property
    def client(self) -> ApiClient:
        client: ApiClient = self.request.app.state.web_client
        return client

    def gettext(self, message: str) -> str:
        return translations(self.lang).gettext(message)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        user = self.session.user
        html = (
            environment(self.lang)
            .get_template(template)
            .render(
                path=self.request.url.path,
                full_path=self.request.url.path
                + (f"?{self.request.url.query}" if self.request.url.query else ""),
                user=user,
                is_moderator=user is not None and user.role in MODERATOR_ROLES,
                csrf_token=self.session.csrf,
                dev_sign_in=dev_sign_in_allowed(self.settings),
                registration=self.settings.local_auth and self.settings.allow_registration,
                password_sign_in=self.settings.local_auth,
                **context,
            )
        )
        return HTMLResponse(html, status_code=status)

    def redirect(self, target: str) -> RedirectResponse:
        """A 303 "see other" to `target` (after a post: a reload never posts twice; htmx follows it too)."""
        return RedirectResponse(target, status_code=303)


def _page(request: Request) -> Page:
    return Page(request)


PageDep = Annotated[Page, Depends(_page)]


async def _signed_in(page: PageDep, session: SessionDep) -> SignedIn:
    user = page.session.user
    if user is None:
        raise SignInRequired(page.request.url.path)
    current = await service.refresh(
        session, page.settings, user, dev_allowed=dev_sign_in_allowed(page.settings)
    )
    if current is None:
        page.session.sign_out()
        raise SignInRequired(page.request.url.path)
    if current != user:  # a new role or display name since sign-in: keep the cookie current
        page.session.user, page.session.dirty = current, True
    return current


SignedInDep = Annotated[SignedIn, Depends(_signed_in)]


async def _moderator(user: SignedInDep) -> SignedIn:
    if user.role not in MODERATOR_ROLES:
        raise OasstError("Only moderators and admins may open this page", ErrorCode.GENERIC_ERROR, 403)
    return user


ModeratorDep = Annotated[SignedIn, Depends(_moderator)]


async def _admin(user: SignedInDep) -> SignedIn:
    if user.role != "admin":
        raise OasstError("Only admins may open this page", ErrorCode.GENERIC_ERROR, 403)
    return user


AdminDep = Annotated[SignedIn, Depends(_admin)]


def sign_in_url(next_path: str) -> str:
    return f"/signin?next={quote(safe_next(next_path), safe='/')}"


async def check_csrf(request: Request) -> None:
    """Every state-changing request carries the session's token (a form field or the X-CSRF-Token header)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    token = request.headers.get("x-csrf-token")
    if token is None:
        form = await request.form()
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    if not web_session(request).check_csrf(token):
        raise OasstError(
            "The form has expired or did not come from this site: reload the page and try again.",
            ErrorCode.GENERIC_ERROR,
            403,
        )
