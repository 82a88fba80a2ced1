"""Request dependencies of the Parrot API: who the Bearer token is (admin or account), checked in a short
transaction of its own so that a long ask holds no connection for it (an ask checks it in its first one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from oasst.db.session import transaction
from oasst.gateway import service
from oasst.gateway.errors import ACCESS_DENIED, GatewayError
from oasst.gateway.service import Caller

_bearer = HTTPBearer(auto_error=False)


async def _token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    return credentials.credentials if credentials is not None else None


TokenDep = Annotated[str | None, Depends(_token)]


async def _caller(request: Request, token: TokenDep) -> Caller:
    async with transaction(request.app.state.sessions) as session:
        return await service.caller(session, request.app.state.settings, token)


async def _admin(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if not caller.admin:
        raise GatewayError(ACCESS_DENIED, 403)
    return caller


async def _account(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    return service.as_account(caller)


AdminDep = Annotated[Caller, Depends(_admin)]
AccountDep = Annotated[Caller, Depends(_account)]
