"""Puts the web UI into the app: pages, static files, the session middleware and HTML error pages."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oasst.config import Settings
from oasst.errors import OasstError
from oasst.gateway.errors import GatewayError
from oasst.inference.schemas import InferenceError
from oasst.web import service
from oasst.web.deps import Page, SignInRequired, sign_in_url
from oasst.web.errors import core_text
from oasst.web.i18n import HERE, N_
from oasst.web.routes import build_router
from oasst.web.sessions import SessionCodec, WebSession, load_secret, read_cookie

log = logging.getLogger(__name__)

# Paths that belong to the APIs: their errors stay JSON and they carry no browser session.
API_PREFIXES = ("/api", "/inference", "/v1", "/docs", "/health", "/metrics", "/static")


# Every page: never cached (pages carry the session's CSRF token), never framed, scripts and styles from
# this site only (the pages have no inline script or style).
PAGE_HEADERS = {
    "cache-control": "private, no-store",
    "vary": "Cookie, Accept-Language",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def is_web_path(path: str) -> bool:
    return not any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)


class SessionMiddleware:
    """Reads the signed session cookie of page requests into `request.state` and writes it back if changed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_web_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        codec: SessionCodec = scope["app"].state.web_codec
        request = Request(scope)
        session = codec.loads(read_cookie(request.headers.get("cookie")))
        if session is None:
            session = WebSession(dirty=True)
        request.state.web_session = session
        secure = scope.get("scheme") == "https"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if session.dirty:
                    headers.append("set-cookie", codec.set_cookie_header(session, secure=secure))
                for name, value in PAGE_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_cookie)


TITLES = {
    400: N_("Bad request"),
    402: N_("Budget used up"),
    401: N_("Not signed in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Conflict"),
    429: N_("Too many requests"),
    451: N_("Terms not accepted"),
    500: N_("Server error"),
    503: N_("Unavailable"),
}
OTHER_TITLE = N_("Error")


def _error_page(request: Request, status: int, message: str) -> Response:
    """The error page, in the page's language (htmx is configured to swap error answers in too)."""
    page = Page(request)
    title = page.gettext(TITLES.get(status, OTHER_TITLE))
    return page.render(
        "error.html", status=status, status_code=status, title=title, message=page.gettext(message)
    )


def _html_for_web(app: FastAPI, kind: type[Exception], message: Callable[[Any], tuple[int, str]]) -> None:
    """Answer `kind` on page paths with an HTML error page, and leave the API paths to the old handler."""
    previous = app.exception_handlers[kind]

    async def handler(request: Request, exc: Any) -> Response:
        if not is_web_path(request.url.path):
            answer = previous(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        status, text = message(exc)
        return _error_page(request, status, text)

    app.add_exception_handler(kind, handler)


def _http_message(exc: HTTPException) -> tuple[int, str]:
    if isinstance(exc, InferenceError):  # the chat pages' refusals (a chat not found, a budget used up)
        return exc.status_code, core_text(exc)
    if exc.status_code == 404:
        return 404, N_("There is no such page.")
    return exc.status_code, str(exc.detail)


def _validation_message(_exc: RequestValidationError) -> tuple[int, str]:
    return 400, N_("Some input is missing, too long or invalid. Go back, check the form and try again.")


def _unexpected(exc: Exception) -> tuple[int, str]:
    log.exception("unhandled error on a page", exc_info=exc)
    return 500, N_("Something went wrong on our side. Please try again later.")


def install(app: FastAPI) -> None:
    """Mount the pages at `/` and the static files at `/static` (call after the API routers)."""
    from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler

    app.exception_handlers.setdefault(HTTPException, http_exception_handler)
    app.exception_handlers.setdefault(RequestValidationError, request_validation_exception_handler)
    _html_for_web(app, OasstError, lambda exc: (exc.status, core_text(exc)))
    _html_for_web(app, HTTPException, _http_message)
    _html_for_web(app, RequestValidationError, _validation_message)
    _html_for_web(app, Exception, _unexpected)

    async def sign_in_first(request: Request, exc: SignInRequired) -> Response:
        target = sign_in_url(exc.next_path)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    app.add_exception_handler(SignInRequired, sign_in_first)  # type: ignore[arg-type]

    # The gateway's API routes answer their own errors (as Parrot's `{"error": message}`); pages as pages.
    async def gateway_refusal(request: Request, exc: GatewayError) -> Response:
        if not is_web_path(request.url.path):
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        return _error_page(request, exc.status, exc.message)

    app.add_exception_handler(GatewayError, gateway_refusal)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(build_router())
    app.add_middleware(SessionMiddleware)
    app.state.web_mounted = True


async def start(app: FastAPI, session: AsyncSession, settings: Settings) -> None:
    """At start-up (if the UI is mounted): the session secret, and the built-in API client of the pages."""
    if not getattr(app.state, "web_mounted", False):
        return
    secret = await asyncio.to_thread(load_secret, settings)
    app.state.web_codec = SessionCodec(secret, settings.web_session_days * 86400)
    client = await service.ensure_client(session, secret)
    session.expunge(client)
    app.state.web_client = client
