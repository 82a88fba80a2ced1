"""The app factory: `create_app(settings)` mounts the APIs; the lifespan opens and closes what they use."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from oasst import __version__
from oasst.collection.auth import service as auth_service
from oasst.collection.router import API_V1, build_router
from oasst.config import Settings
from oasst.db.session import create_engine, sessionmaker, transaction
from oasst.errors import OasstError

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the whole server for `settings`; nothing is opened until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.effective_database_url, settings.database_pool_size)
        app.state.engine = engine
        app.state.sessions = sessionmaker(engine)
        if settings.bootstrap_api_key:
            async with transaction(app.state.sessions) as session:
                await auth_service.ensure_bootstrap_client(session, settings.bootstrap_api_key)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="oasst",
        version=__version__,
        lifespan=lifespan,
        openapi_url=f"{API_V1}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings

    @app.exception_handler(OasstError)
    async def _oasst_error(_request: Request, exc: OasstError) -> JSONResponse:
        return JSONResponse({"error_code": int(exc.code), "message": exc.message}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"message": "INTERNAL_SERVER_ERROR", "error_code": 0}, status_code=500)

    @app.get("/health", include_in_schema=False)
    async def health() -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    app.include_router(build_router())
    return app
