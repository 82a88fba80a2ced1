"""Routes of the OpenAI-compatible API (mounted at /v1): models, chat completions, completions. Every refusal,
bad input included, answers in OpenAI's error shape."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from oasst.collection.auth.service import KeyCache
from oasst.collection.deps import RngDep, SettingsDep
from oasst.config import Settings
from oasst.gateway import service as gateway_service
from oasst.inference.deps import RuntimeDep
from oasst.openai_api import service
from oasst.openai_api.service import SSE_HEADERS, Meter, OpenAIError
from oasst.protocol.openai import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    ErrorBody,
    ErrorResponse,
    ModelCard,
    ModelList,
)


def _error_response(error: OpenAIError) -> JSONResponse:
    return JSONResponse(error.body.model_dump(mode="json"), status_code=error.status, headers=error.headers)


def _bad_input(error: RequestValidationError) -> JSONResponse:
    first = error.errors()[0] if error.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    message = "; ".join(
        f"{'.'.join(str(part) for part in item.get('loc', ()) if part != 'body')}: {item.get('msg')}"
        for item in error.errors()
    )
    body = ErrorBody(
        message=message or "Invalid request.",
        type="invalid_request_error",
        param=".".join(location) or None,
        code=str(first.get("type")) if first.get("type") else None,
    )
    return JSONResponse(ErrorResponse(error=body).model_dump(mode="json"), status_code=400)


class OpenAIRoute(APIRoute):
    """Renders OpenAIError and request validation errors (as 400, like OpenAI) in OpenAI's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except OpenAIError as error:
                return _error_response(error)
            except RequestValidationError as error:
                return _bad_input(error)

        return route_handler


_bearer = HTTPBearer(auto_error=False)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _caller(
    request: Request, settings: Settings, credentials: Credentials, keys: KeyCache[int] | None
) -> Meter | None:
    """The operator (OASST_BOOTSTRAP_API_KEY, not metered), or a gateway account whose budget pays."""
    key = credentials.credentials if credentials else None
    try:
        service.authenticate(settings.bootstrap_api_key, key)
    except OpenAIError:
        meter = await gateway_service.account_meter(request.app.state.sessions, settings, keys, key)
        if meter is None:
            raise
        return meter
    return None


async def _known(request: Request, settings: SettingsDep, credentials: Credentials) -> None:
    """Any caller, its key looked up afresh: these routes reserve nothing that would check it again."""
    await _caller(request, settings, credentials, None)


async def _payer(request: Request, settings: SettingsDep, credentials: Credentials) -> Meter | None:
    """The caller of a completion: a gateway key seen lately is trusted as far as the reservation, which
    checks it again (so a rotated key or a deactivated account is refused at once all the same)."""
    return await _caller(request, settings, credentials, request.app.state.account_keys)


MeterDep = Annotated[Meter | None, Depends(_payer)]
router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)


@router.get("/models", dependencies=[Depends(_known)])
async def list_models(runtime: RuntimeDep) -> ModelList:
    return service.list_models(runtime.workers.models())


@router.get("/models/{model:path}", dependencies=[Depends(_known)])
async def get_model(model: Annotated[str, Path(max_length=200)], runtime: RuntimeDep) -> ModelCard:
    return service.get_model(runtime.workers.models(), model)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, runtime: RuntimeDep, rng: RngDep, meter: MeterDep
) -> Response:
    result = await service.chat_completion(runtime, body, rng, meter)
    if isinstance(result, ChatCompletion):
        return JSONResponse(result.model_dump(mode="json"))
    return StreamingResponse(result, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/completions", response_model=None)
async def completions(body: CompletionRequest, runtime: RuntimeDep, rng: RngDep, meter: MeterDep) -> Response:
    result = await service.completion(runtime, body, rng, meter)
    if isinstance(result, Completion):
        return JSONResponse(result.model_dump(mode="json"))
    return StreamingResponse(result, media_type="text/event-stream", headers=SSE_HEADERS)


def build_router() -> APIRouter:
    """Everything under /v1."""
    return router
