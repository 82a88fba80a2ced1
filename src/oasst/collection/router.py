"""The /api/v1 router: every collection domain's routes under one prefix."""

from __future__ import annotations

from fastapi import APIRouter

from oasst.collection.admin.routes import moderation_router
from oasst.collection.admin.routes import router as admin_router
from oasst.collection.labels.routes import router as text_labels_router
from oasst.collection.messages.routes import frontend_messages_router, messages_router
from oasst.collection.stats.routes import leaderboards_router, stats_router, trollboards_router
from oasst.collection.tasks.routes import router as tasks_router
from oasst.collection.users.routes import router as frontend_users_router
from oasst.collection.users.routes import users_router

API_V1 = "/api/v1"


def build_router() -> APIRouter:
    router = APIRouter(prefix=API_V1)
    router.include_router(tasks_router)
    router.include_router(frontend_users_router)
    router.include_router(users_router)
    router.include_router(text_labels_router)
    router.include_router(messages_router)
    router.include_router(frontend_messages_router)
    router.include_router(stats_router)
    router.include_router(leaderboards_router)
    router.include_router(trollboards_router)
    router.include_router(admin_router)
    router.include_router(moderation_router)
    return router
