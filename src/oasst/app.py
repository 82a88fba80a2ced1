"""The app factory: `create_app(settings)` mounts the APIs; the lifespan opens and closes what they use."""

from __future__ import annotations

import gc
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from redis.asyncio import Redis

from oasst import __version__
from oasst.collection.auth import service as auth_service
from oasst.collection.router import API_V1, build_router
from oasst.config import Settings
from oasst.db.models import ApiClient
from oasst.db.session import create_engine, sessionmaker, transaction
from oasst.errors import OasstError
from oasst.gateway.routes import build_router as build_gateway_router
from oasst.health import check as check_health
from oasst.inference.deps import InferenceRuntime
from oasst.inference.routes import build_router as build_inference_router
from oasst.jobs.scheduler import Scheduler
from oasst.metrics import install_metrics
from oasst.openai_api.routes import build_router as build_openai_router
from oasst.ratelimit import build_rate_limiter
from oasst.web import mount as web

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the whole server for `settings`; nothing is opened until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.effective_database_url, settings.database_pool_size)
        app.state.engine = engine
        app.state.sessions = sessionmaker(engine)
        async with transaction(app.state.sessions) as session:
            await auth_service.prepare_clients(session, settings.bootstrap_api_key)
            await web.start(app, session, settings)
        # One Redis client for the app (lazy: it connects on first use).
        app.state.redis = (
            Redis.from_url(settings.redis_url, socket_connect_timeout=5) if settings.redis_url else None
        )
        app.state.rate_limiter = build_rate_limiter(settings, app.state.redis)
        app.state.inference = InferenceRuntime(
            settings, app.state.sessions, app.state.redis, app.state.metrics
        )
        await app.state.inference.start()
        app.state.scheduler = Scheduler(app.state.sessions, settings) if settings.jobs_enabled else None
        if app.state.scheduler is not None:
            app.state.scheduler.start()
        # What start-up made lives as long as the process: keep it out of every garbage collection (a full
        # one over it took 150 ms of a request's time).
        gc.freeze()
        try:
            yield
        finally:
            await app.state.inference.close()
            if app.state.scheduler is not None:
                await app.state.scheduler.stop()
            if app.state.rate_limiter is not None:
                await app.state.rate_limiter.aclose()
            if app.state.redis is not None:
                await app.state.redis.aclose()
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
    app.state.rng = random.Random()
    app.state.api_clients = auth_service.KeyCache[ApiClient]()
    # Gateway account keys -> account ids: a /v1 call or an ask then reserves without a lookup first.
    app.state.account_keys = auth_service.KeyCache[int](ttl=60.0)

    @app.exception_handler(OasstError)
    async def _oasst_error(_request: Request, exc: OasstError) -> JSONResponse:
        return JSONResponse(
            {"error_code": int(exc.code), "message": exc.message}, status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"message": "INTERNAL_SERVER_ERROR", "error_code": 0}, status_code=500)

    @app.get("/health", include_in_schema=False)
    async def health(request: Request) -> Response:
        ok, checks = await check_health(request.app.state.engine, request.app.state.redis)
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "version": __version__, "checks": checks},
            status_code=200 if ok else 503,
        )

    app.state.metrics = install_metrics(app) if settings.enable_prom_metrics else None
    if settings.serve_only == "inference":  # the inference API alone, at upstream's paths (/chats, /auth...)
        app.include_router(build_inference_router(prefix=""))
        return app
    app.include_router(build_router())
    if settings.serve_only == "collection":
        return app
    app.include_router(build_inference_router())
    app.include_router(build_openai_router())
    app.include_router(build_gateway_router())
    web.install(app)
    return app
