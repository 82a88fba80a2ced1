"""The /api/v1 router: every collection domain's routes under one prefix."""

from __future__ import annotations

from fastapi import APIRouter

from oasst.collection.users.routes import router as users_router

API_V1 = "/api/v1"


def build_router() -> APIRouter:
    router = APIRouter(prefix=API_V1)
    router.include_router(users_router)
    return router
