"""Routes of /api/v1/frontend_users used by every frontend to register its users."""

from __future__ import annotations

from fastapi import APIRouter

from oasst.collection.deps import ApiClientDep, SessionDep
from oasst.collection.users import repository, service
from oasst.errors import OasstError
from oasst.protocol import collection as wire
from oasst.protocol.collection import ErrorCode

router = APIRouter(prefix="/frontend_users", tags=["frontend_users"])


@router.post("/", response_model=wire.FrontEndUser)
async def create_frontend_user(
    body: wire.CreateFrontendUserRequest, session: SessionDep, client: ApiClientDep
) -> wire.FrontEndUser:
    return service.to_wire(await service.upsert(session, client, body))


@router.get("/{auth_method}/{username}", response_model=wire.FrontEndUser)
async def get_frontend_user(
    auth_method: str, username: str, session: SessionDep, client: ApiClientDep
) -> wire.FrontEndUser:
    user = await repository.by_identity(session, client.id, auth_method, username)
    if user is None:
        raise OasstError("User not found", ErrorCode.USER_NOT_FOUND, 404)
    return service.to_wire(user)
