"""Routes of the Parrot-compatible course gateway (mounted at /api, beside the collection API's /api/v1):
accounts and users for the admin token, chats for account keys. Every refusal is `{"error": message}`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from oasst.collection.deps import RngDep, SessionDep, SettingsDep
from oasst.gateway import service
from oasst.gateway.deps import AccountDep, AdminDep, TokenDep
from oasst.gateway.errors import GatewayError
from oasst.gateway.schemas import (
    AccountCreate,
    AccountUpdate,
    ChatCreate,
    MessageCreate,
    UserCreate,
    clean_string,
)
from oasst.inference.deps import RuntimeDep

Id = Annotated[int, Path(ge=0, le=2**31 - 1)]
Filter = Annotated[str | None, Query(max_length=200)]


def _validation_message(error: RequestValidationError) -> str:
    """One readable line: which field is wrong and why (Parrot says what its JSON schema validator said)."""
    messages = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            return "The request body is not valid JSON"
        where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path"))
        messages.append(f"`{where}`: {item.get('msg')}" if where else f"The request body: {item.get('msg')}")
    return "; ".join(messages) or "Invalid request"


async def _read_body(request: Request, limit: int) -> None:
    """Read the body once, refusing it past `limit` bytes before it is all in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise GatewayError(f"The request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise GatewayError(f"The request body is larger than {limit} bytes")
    request._body = bytes(body)  # FastAPI reads the body from here


class ParrotRoute(APIRoute):
    """Renders GatewayError and bad input (400) as Parrot does: `{"error": message}`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                if request.method in ("POST", "PUT"):
                    await _read_body(request, request.app.state.settings.gateway_max_body_bytes)
                return await handler(request)
            except GatewayError as error:
                return JSONResponse({"error": error.message}, status_code=error.status)
            except RequestValidationError as error:
                return JSONResponse({"error": _validation_message(error)}, status_code=400)

        return route_handler


router = APIRouter(prefix="/api", tags=["gateway"], route_class=ParrotRoute)


def _json(body: BaseModel | list[Any] | dict[str, Any], status: int = 200) -> JSONResponse:
    if isinstance(body, BaseModel):
        return JSONResponse(body.model_dump(mode="json"), status_code=status)
    if isinstance(body, list):
        return JSONResponse([item.model_dump(mode="json") for item in body], status_code=status)
    return JSONResponse(body, status_code=status)


def _clean(value: str | None) -> str | None:
    return None if value is None else str(clean_string(value))


# --- accounts and users (admin token) ----------------------------------------------------------------------


@router.get("/accounts")
async def list_accounts(
    _admin: AdminDep, session: SessionDep, active: Filter = "true", usage: Filter = None, name: Filter = None
) -> JSONResponse:
    return _json(await service.list_accounts(session, active or "", usage, _clean(name)))


@router.post("/accounts")
async def create_account(
    body: AccountCreate, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    return _json(await service.create_account(session, settings, body), 201)


@router.put("/accounts/{account_id}")
async def update_account(
    account_id: Id, body: AccountUpdate, _admin: AdminDep, session: SessionDep
) -> JSONResponse:
    return _json(await service.update_account(session, account_id, body))


@router.delete("/accounts/{account_id}")
async def delete_account(account_id: Id, _admin: AdminDep, session: SessionDep) -> JSONResponse:
    return _json(await service.delete_account(session, account_id))


@router.post("/accounts/{account_id}/rotate_key")
async def rotate_key(account_id: Id, _admin: AdminDep, session: SessionDep) -> JSONResponse:
    """A new key for the account (oasst addition: keys are stored hashed, so a lost one is replaced)."""
    return _json(await service.rotate_key(session, account_id))


@router.get("/accounts/{account_id}/num_chats")
async def num_chats(account_id: Id, _admin: AdminDep, session: SessionDep) -> JSONResponse:
    return _json(await service.num_chats(session, account_id))


@router.get("/users")
async def list_users(_admin: AdminDep, session: SessionDep) -> JSONResponse:
    return _json(await service.list_users(session))


@router.post("/users")
async def create_user(body: UserCreate, _admin: AdminDep, session: SessionDep) -> JSONResponse:
    return _json(await service.create_user(session, body), 201)


@router.get("/usage")
async def usage(
    _admin: AdminDep,
    session: SessionDep,
    since: date | None = None,
    until: date | None = None,
    account: Filter = None,
) -> JSONResponse:
    """Charged tokens per account and UTC day (oasst addition; `oasst gateway usage` prints the same)."""
    return _json(await service.usage_report(session, since, until, account))


# --- chats (account keys) -----------------------------------------------------------------------------------


@router.get("/chats")
async def list_chats(caller: AccountDep, session: SessionDep, name: Filter = None) -> JSONResponse:
    return _json(await service.list_chats(session, caller.account_id, _clean(name)))


@router.post("/chats")
async def create_chat(body: ChatCreate, caller: AccountDep, session: SessionDep) -> JSONResponse:
    return _json(await service.create_chat(session, caller.account_id, body), 201)


@router.get("/chats/budget")
async def budget(caller: AccountDep, session: SessionDep) -> JSONResponse:
    return _json(await service.budget(session, caller.account_id))


@router.get("/chats/{chat_id}/messages")
async def list_messages(chat_id: Id, caller: AccountDep, session: SessionDep) -> JSONResponse:
    return _json(await service.list_messages(session, caller.account_id, chat_id))


@router.post("/chats/{chat_id}/messages")
async def ask(
    request: Request, chat_id: Id, body: MessageCreate, token: TokenDep, runtime: RuntimeDep, rng: RngDep
) -> JSONResponse:
    """Send a message; the server prepends the chat's history. Runs its own short transactions around the
    model call (the key is checked in the first), so no connection is held while the worker answers."""
    keys = request.app.state.account_keys
    return _json(await service.ask(runtime, rng, keys, token, chat_id, body), 201)


@router.get("/chats/{chat_id}/num_messages")
async def num_messages(chat_id: Id, caller: AccountDep, session: SessionDep) -> JSONResponse:
    return _json(await service.num_messages(session, caller.account_id, chat_id))


def build_router() -> APIRouter:
    """Everything of the gateway under /api."""
    return router
