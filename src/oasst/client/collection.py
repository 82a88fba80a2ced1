"""Clients of the data-collection API (/api/v1): `CollectionClient` (sync) and `AsyncCollectionClient`."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx
from pydantic import BaseModel, TypeAdapter

from oasst.client._http import Call, build_request, client_options, finish, model, no_content
from oasst.protocol.collection import (
    AnyInteraction,
    AnyTask,
    CreateFrontendUserRequest,
    FrontEndUser,
    TaskAck,
    TaskClose,
    TaskDone,
    TaskNAck,
    TaskRequest,
    TaskRequestType,
    User,
)

T = TypeVar("T")

API_V1 = "/api/v1"

_TASK: TypeAdapter[AnyTask] = TypeAdapter(AnyTask)
_TASK_DONE: TypeAdapter[TaskDone] = TypeAdapter(TaskDone)
_FRONTEND_USER: TypeAdapter[FrontEndUser] = TypeAdapter(FrontEndUser)
_AVAILABILITY: TypeAdapter[dict[str, int]] = TypeAdapter(dict[str, int])


def _body(payload: BaseModel) -> Any:
    return payload.model_dump(mode="json")


def _segment(value: str) -> str:
    return quote(value, safe="")


def user_header(user: User) -> dict[str, str]:
    """The `x-oasst-user` header naming the acting user (`auth_method:id`)."""
    return {"x-oasst-user": f"{user.auth_method}:{user.id}"}


# --- the calls, described once for both clients -------------------------------------------------------


def _upsert_user(request: CreateFrontendUserRequest | None, fields: dict[str, Any]) -> Call[FrontEndUser]:
    if request is None:
        request = CreateFrontendUserRequest(**fields)
    elif fields:
        raise TypeError("pass either a CreateFrontendUserRequest or keyword fields, not both")
    return Call("POST", f"{API_V1}/frontend_users/", model(_FRONTEND_USER), json=_body(request))


def _get_user(auth_method: str, username: str) -> Call[FrontEndUser]:
    path = f"{API_V1}/frontend_users/{_segment(auth_method)}/{_segment(username)}"
    return Call("GET", path, model(_FRONTEND_USER))


def _fetch_task(type: TaskRequestType | str, user: User, lang: str | None, collective: bool) -> Call[AnyTask]:
    request = TaskRequest(type=TaskRequestType(type), user=user, lang=lang, collective=collective)
    return Call("POST", f"{API_V1}/tasks/", model(_TASK), json=_body(request))


def _ack_task(task_id: UUID | str, message_id: str) -> Call[None]:
    body = _body(TaskAck(message_id=message_id))
    return Call("POST", f"{API_V1}/tasks/{task_id}/ack", no_content, json=body)


def _nack_task(task_id: UUID | str, reason: str | None, user: User) -> Call[None]:
    return Call(
        "POST",
        f"{API_V1}/tasks/{task_id}/nack",
        no_content,
        json=_body(TaskNAck(reason=reason)),
        headers=user_header(user),
    )


def _post_interaction(interaction: AnyInteraction) -> Call[TaskDone]:
    return Call("POST", f"{API_V1}/tasks/interaction", model(_TASK_DONE), json=_body(interaction))


def _availability(user: User, lang: str) -> Call[dict[str, int]]:
    return Call(
        "POST", f"{API_V1}/tasks/availability", model(_AVAILABILITY), json=_body(user), params={"lang": lang}
    )


def _close_task(message_id: str) -> Call[TaskDone]:
    body = _body(TaskClose(message_id=message_id))
    return Call("POST", f"{API_V1}/tasks/close", model(_TASK_DONE), json=body)


# --- the clients --------------------------------------------------------------------------------------


class CollectionClient:
    """Blocking client of /api/v1 for one API key. Use it as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(**client_options(base_url, api_key, timeout, transport))

    def _run(self, call: Call[T]) -> T:
        return finish(call, self._http.send(build_request(self._http, call)))

    def upsert_user(self, request: CreateFrontendUserRequest | None = None, /, **fields: Any) -> FrontEndUser:
        """Create the user, or update its flags (`POST /frontend_users/`); pass a request or its fields."""
        return self._run(_upsert_user(request, fields))

    def get_user(self, auth_method: str, username: str) -> FrontEndUser:
        """Look a user up by its frontend identity."""
        return self._run(_get_user(auth_method, username))

    def fetch_task(
        self, type: TaskRequestType | str, user: User, lang: str | None = None, collective: bool = False
    ) -> AnyTask:
        """Ask for the next task of `type` for `user`."""
        return self._run(_fetch_task(type, user, lang, collective))

    def fetch_random_task(self, user: User, lang: str | None = None, collective: bool = False) -> AnyTask:
        """Ask for a task of whatever type the server picks."""
        return self._run(_fetch_task(TaskRequestType.random, user, lang, collective))

    def ack_task(self, task_id: UUID | str, message_id: str) -> None:
        """Say the task was shown, binding the frontend's own `message_id` to it."""
        self._run(_ack_task(task_id, message_id))

    def nack_task(self, task_id: UUID | str, reason: str | None, user: User) -> None:
        """Refuse or skip the task on behalf of `user` (sent as the x-oasst-user header)."""
        self._run(_nack_task(task_id, reason, user))

    def post_interaction(self, interaction: AnyInteraction) -> TaskDone:
        """Send the user's answer to an acked task."""
        return self._run(_post_interaction(interaction))

    def availability(self, user: User, lang: str = "en") -> dict[str, int]:
        """How many tasks of each type `user` could get in `lang`."""
        return self._run(_availability(user, lang))

    def close_task(self, message_id: str) -> TaskDone:
        """Close a collective task, found by the frontend id bound on ack."""
        return self._run(_close_task(message_id))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncCollectionClient:
    """Async client of /api/v1 for one API key. Use it as an async context manager, or await `aclose()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(**client_options(base_url, api_key, timeout, transport))

    async def _run(self, call: Call[T]) -> T:
        return finish(call, await self._http.send(build_request(self._http, call)))

    async def upsert_user(
        self, request: CreateFrontendUserRequest | None = None, /, **fields: Any
    ) -> FrontEndUser:
        """Create the user, or update its flags (`POST /frontend_users/`); pass a request or its fields."""
        return await self._run(_upsert_user(request, fields))

    async def get_user(self, auth_method: str, username: str) -> FrontEndUser:
        """Look a user up by its frontend identity."""
        return await self._run(_get_user(auth_method, username))

    async def fetch_task(
        self, type: TaskRequestType | str, user: User, lang: str | None = None, collective: bool = False
    ) -> AnyTask:
        """Ask for the next task of `type` for `user`."""
        return await self._run(_fetch_task(type, user, lang, collective))

    async def fetch_random_task(
        self, user: User, lang: str | None = None, collective: bool = False
    ) -> AnyTask:
        """Ask for a task of whatever type the server picks."""
        return await self._run(_fetch_task(TaskRequestType.random, user, lang, collective))

    async def ack_task(self, task_id: UUID | str, message_id: str) -> None:
        """Say the task was shown, binding the frontend's own `message_id` to it."""
        await self._run(_ack_task(task_id, message_id))

    async def nack_task(self, task_id: UUID | str, reason: str | None, user: User) -> None:
        """Refuse or skip the task on behalf of `user` (sent as the x-oasst-user header)."""
        await self._run(_nack_task(task_id, reason, user))

    async def post_interaction(self, interaction: AnyInteraction) -> TaskDone:
        """Send the user's answer to an acked task."""
        return await self._run(_post_interaction(interaction))

    async def availability(self, user: User, lang: str = "en") -> dict[str, int]:
        """How many tasks of each type `user` could get in `lang`."""
        return await self._run(_availability(user, lang))

    async def close_task(self, message_id: str) -> TaskDone:
        """Close a collective task, found by the frontend id bound on ack."""
        return await self._run(_close_task(message_id))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
