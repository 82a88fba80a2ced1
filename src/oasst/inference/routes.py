"""Routes of the inference API (mounted at /inference): auth, chats and messages, the SSE stream, model
configs, worker keys and the worker websocket."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, WebSocket
from fastapi.responses import RedirectResponse, StreamingResponse

from oasst.collection.deps import RngDep, SettingsDep
from oasst.inference import service
from oasst.inference.deps import AdminDep, RuntimeDep, TrustedClientHeader, UnitOfWorkDep, UserDep
from oasst.inference.schemas import Refused
from oasst.inference.workers import WorkerConnection, handshake
from oasst.protocol.inference import (
    ChatListRead,
    ChatRead,
    ChatUpdateRequest,
    CreateAssistantMessageRequest,
    CreateChatRequest,
    CreatePrompterMessageRequest,
    CreateWorkerRequest,
    InferenceUserRead,
    ListChatsResponse,
    LocalLoginRequest,
    LocalRegisterRequest,
    MessageEvalRequest,
    MessageRead,
    ModelConfigInfo,
    ReportRequest,
    Token,
    TokenPair,
    VoteRequest,
    WorkerRead,
)

auth_router = APIRouter(prefix="/auth", tags=["inference auth"])
chats_router = APIRouter(prefix="/chats", tags=["chats"])
configs_router = APIRouter(prefix="/configs", tags=["configs"])
admin_router = APIRouter(prefix="/admin", tags=["inference admin"])
account_router = APIRouter(prefix="/account", tags=["inference auth"])
workers_router = APIRouter(prefix="/workers", tags=["workers"])


# --- auth ---------------------------------------------------------------------------------------------------


@auth_router.get("/check")
async def check(user: UserDep) -> str:
    return user.id


@auth_router.get("/providers")
async def providers(settings: SettingsDep) -> list[str]:
    return service.providers(settings)


@auth_router.get("/refresh")
async def refresh(
    unit: UnitOfWorkDep, runtime: RuntimeDep, refresh: Annotated[str, Header(max_length=4096)]
) -> Token:
    return await service.refresh_access_token(unit.session, runtime.settings, runtime.secret, refresh)


@auth_router.get("/login/debug")
async def login_debug(
    request: Request,
    username: Annotated[str, Query(max_length=128)],
    state: Annotated[str, Query(max_length=1024)] = "{}",
) -> RedirectResponse:
    callback = request.url_for("callback_debug").include_query_params(code=username, state=state)
    return RedirectResponse(str(callback), status_code=302)


@auth_router.get("/callback/debug", name="callback_debug")
async def callback_debug(
    unit: UnitOfWorkDep, runtime: RuntimeDep, code: Annotated[str, Query(max_length=128)] = ""
) -> TokenPair:
    return await service.debug_login(unit.session, runtime.settings, runtime.secret, code)


@auth_router.post("/login/local")
async def login_local(body: LocalLoginRequest, unit: UnitOfWorkDep, runtime: RuntimeDep) -> TokenPair:
    return await service.local_login(unit.session, runtime.settings, runtime.secret, body)


@auth_router.post("/register/local")
async def register_local(body: LocalRegisterRequest, unit: UnitOfWorkDep, runtime: RuntimeDep) -> TokenPair:
    return await service.register_local(unit.session, runtime.settings, runtime.secret, body)


@auth_router.post("/trusted")
async def trusted(
    request: Request, unit: UnitOfWorkDep, trusted_client: TrustedClientHeader = None
) -> InferenceUserRead:
    return await service.ensure_trusted_user(unit.session, request.app.state.api_clients, trusted_client)


@account_router.delete("/")
async def delete_account(unit: UnitOfWorkDep, user: UserDep) -> Response:
    await service.delete_user(unit.session, user)
    return Response(status_code=200)


# --- chats and messages -------------------------------------------------------------------------------------


@chats_router.get("")
async def list_chats(
    unit: UnitOfWorkDep,
    user: UserDep,
    include_hidden: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    after: Annotated[str | None, Query(max_length=128)] = None,
    before: Annotated[str | None, Query(max_length=128)] = None,
) -> ListChatsResponse:
    return await service.list_chats(
        unit.session, user, include_hidden=include_hidden, limit=limit, after=after, before=before
    )


@chats_router.post("")
async def create_chat(
    unit: UnitOfWorkDep, user: UserDep, _body: CreateChatRequest | None = None
) -> ChatListRead:
    return await service.create_chat(unit.session, user)


@chats_router.get("/{chat_id}")
async def get_chat(chat_id: uuid.UUID, unit: UnitOfWorkDep, user: UserDep) -> ChatRead:
    return await service.get_chat(unit.session, user, chat_id)


@chats_router.put("/hide_all")
async def hide_all_chats(unit: UnitOfWorkDep, user: UserDep) -> None:
    """Hide every chat of the user (declared before PUT /{chat_id}, which shadows it upstream)."""
    await service.hide_all_chats(unit.session, user)


@chats_router.put("/{chat_id}")
async def update_chat(
    chat_id: uuid.UUID, body: ChatUpdateRequest, unit: UnitOfWorkDep, user: UserDep
) -> None:
    await service.update_chat(unit.session, user, chat_id, body)


@chats_router.delete("/{chat_id}")
async def delete_chat(chat_id: uuid.UUID, unit: UnitOfWorkDep, user: UserDep) -> Response:
    await service.delete_chat(unit.session, user, chat_id)
    return Response(status_code=200)


@chats_router.post("/{chat_id}/prompter_message")
async def create_prompter_message(
    chat_id: uuid.UUID,
    body: CreatePrompterMessageRequest,
    unit: UnitOfWorkDep,
    user: UserDep,
    settings: SettingsDep,
) -> MessageRead:
    return await service.add_prompter_message(unit.session, settings, user, chat_id, body)


@chats_router.post("/{chat_id}/assistant_message")
async def create_assistant_message(
    chat_id: uuid.UUID,
    body: CreateAssistantMessageRequest,
    unit: UnitOfWorkDep,
    user: UserDep,
    runtime: RuntimeDep,
    rng: RngDep,
) -> MessageRead:
    try:
        queued = await service.add_assistant_message(
            unit.session, runtime.settings, runtime.queue, runtime.workers.models(), user, chat_id, body, rng
        )
    except Refused as refusal:
        runtime.refused(refusal.reason)
        raise

    unit.after_commit.append(lambda: runtime.enqueue(queued))
    return queued.message


@chats_router.get("/{chat_id}/messages/{message_id}")
async def get_message(
    chat_id: uuid.UUID, message_id: uuid.UUID, unit: UnitOfWorkDep, user: UserDep
) -> MessageRead:
    return await service.get_message(unit.session, user, chat_id, message_id)


@chats_router.get("/{chat_id}/messages/{message_id}/events", response_model=None)
async def message_events(
    chat_id: uuid.UUID, message_id: uuid.UUID, unit: UnitOfWorkDep, user: UserDep, runtime: RuntimeDep
) -> Response:
    message = await service.stream_target(unit.session, runtime.streams, user, chat_id, message_id)
    if message is None:
        return Response(status_code=204)
    stream = service.events(message, runtime.settings, runtime.queue, runtime.streams, runtime.transaction)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


@chats_router.post("/{chat_id}/messages/{message_id}/votes")
async def vote(
    chat_id: uuid.UUID, message_id: uuid.UUID, body: VoteRequest, unit: UnitOfWorkDep, user: UserDep
) -> Response:
    await service.vote(unit.session, user, chat_id, message_id, body.score)
    return Response(status_code=200)


@chats_router.post("/{chat_id}/messages/{message_id}/reports")
async def report(
    chat_id: uuid.UUID, message_id: uuid.UUID, body: ReportRequest, unit: UnitOfWorkDep, user: UserDep
) -> Response:
    await service.report(unit.session, user, chat_id, message_id, body)
    return Response(status_code=200)


@chats_router.post("/{chat_id}/messages/{message_id}/message_evals")
async def message_eval(
    chat_id: uuid.UUID, message_id: uuid.UUID, body: MessageEvalRequest, unit: UnitOfWorkDep, user: UserDep
) -> Response:
    await service.evaluate(unit.session, user, chat_id, message_id, body.inferior_message_ids)
    return Response(status_code=200)


# --- configs, worker keys, the worker websocket -------------------------------------------------------------


@configs_router.get("/model_configs")
async def model_configs(runtime: RuntimeDep) -> list[ModelConfigInfo]:
    return service.model_configs(runtime.workers.models())


@admin_router.put("/workers")
async def create_worker(body: CreateWorkerRequest, unit: UnitOfWorkDep, _admin: AdminDep) -> WorkerRead:
    return await service.create_worker(unit.session, body.name, body.trusted)


@admin_router.get("/workers")
async def list_workers(unit: UnitOfWorkDep, _admin: AdminDep) -> list[WorkerRead]:
    return await service.list_workers(unit.session)


@admin_router.delete("/workers/{worker_id}")
async def delete_worker(worker_id: uuid.UUID, unit: UnitOfWorkDep, _admin: AdminDep) -> Response:
    await service.delete_worker(unit.session, worker_id)
    return Response(status_code=200)


UserIdPath = Annotated[str, Path(max_length=128)]


@admin_router.delete("/refresh_tokens/{user_id}")
async def revoke_refresh_tokens(user_id: UserIdPath, unit: UnitOfWorkDep, _admin: AdminDep) -> Response:
    await service.revoke_refresh_tokens(unit.session, user_id)
    return Response(status_code=200)


@admin_router.delete("/users/{user_id}")
async def delete_user(user_id: UserIdPath, unit: UnitOfWorkDep, _admin: AdminDep) -> Response:
    await service.delete_user_by_id(unit.session, user_id)
    return Response(status_code=200)


@workers_router.websocket("/work")
async def work(websocket: WebSocket) -> None:
    runtime = websocket.app.state.inference
    accepted = await handshake(websocket, runtime.transaction)
    if accepted is None:
        return
    worker_id, info = accepted
    connection = WorkerConnection(
        websocket,
        worker_id,
        info,
        settings=runtime.settings,
        transaction=runtime.transaction,
        queue=runtime.queue,
        streams=runtime.streams,
        registry=runtime.workers,
    )
    await connection.run()


def build_router(prefix: str = "/inference") -> APIRouter:
    """Everything of the inference API, under `prefix` (empty: at the root, as upstream serves it)."""
    router = APIRouter(prefix=prefix)
    for part in (auth_router, account_router, chats_router, configs_router, admin_router, workers_router):
        router.include_router(part)
    return router
