"""Clients of the inference API: `InferenceClient` (sync) and `AsyncInferenceClient` over one call core.

They sign in (debug, local account, or as a trusted frontend), manage chats and messages, read the token
stream, vote, report and choose drafts. A server that serves the inference API alone (`oasst serve --only
inference`) has it at the root: pass `prefix=""`.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx
from pydantic import TypeAdapter

from oasst.client._http import DEFAULT_TIMEOUT, Call, build_request, model, no_content
from oasst.protocol import inference as wire

T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)

PREFIX = "/inference"


class InferenceApiError(Exception):
    """An answer with status >= 300, with the server's `detail` text."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


_EVENT = TypeAdapter[wire.ResponseEvent](wire.ResponseEvent)
_CONFIGS = TypeAdapter(list[wire.ModelConfigInfo])
_TOKEN_PAIR = TypeAdapter(wire.TokenPair)
_TOKEN = TypeAdapter(wire.Token)
_STRING = TypeAdapter(str)
_STRINGS = TypeAdapter(list[str])
_CHAT = TypeAdapter(wire.ChatRead)
_CHATS = TypeAdapter(wire.ListChatsResponse)
_MESSAGE = TypeAdapter(wire.MessageRead)
_USER = TypeAdapter(wire.InferenceUserRead)


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 300:
        try:
            detail = str(response.json().get("detail", response.text))
        except (ValueError, AttributeError):
            detail = response.text
        raise InferenceApiError(response.status_code, detail)
    return response


def _finish(call: Call[T], response: httpx.Response) -> T:
    return call.parse(_check(response))


def _event(line: str) -> wire.ResponseEvent | None:
    """The event of an SSE `data:` line (None for comments, pings and other fields)."""
    if not line.startswith("data:"):
        return None
    return _EVENT.validate_json(line.removeprefix("data:").strip())


def _ends(event: wire.ResponseEvent) -> bool:
    return event.event_type in ("message", "error")


def _body(payload: wire.WireModel) -> Any:
    return payload.model_dump(mode="json")


def _message_path(chat_id: uuid.UUID, message_id: uuid.UUID, tail: str = "") -> str:
    return f"/chats/{chat_id}/messages/{message_id}{tail}"


# --- the calls, described once for both clients -------------------------------------------------------------


def _login_debug(username: str) -> Call[wire.TokenPair]:
    return Call("GET", "/auth/callback/debug", model(_TOKEN_PAIR), params={"code": username})


def _login_local(username: str, password: str) -> Call[wire.TokenPair]:
    body = _body(wire.LocalLoginRequest(username=username, password=password))
    return Call("POST", "/auth/login/local", model(_TOKEN_PAIR), json=body)


def _register_local(username: str, password: str, display_name: str | None) -> Call[wire.TokenPair]:
    request = wire.LocalRegisterRequest(username=username, password=password, display_name=display_name)
    return Call("POST", "/auth/register/local", model(_TOKEN_PAIR), json=_body(request))


def _refresh(refresh_token: str) -> Call[wire.Token]:
    return Call("GET", "/auth/refresh", model(_TOKEN), headers={"Refresh": refresh_token})


_CHECK = Call("GET", "/auth/check", model(_STRING))
_PROVIDERS = Call("GET", "/auth/providers", model(_STRINGS))
_TRUSTED = Call("POST", "/auth/trusted", model(_USER))
_DELETE_ACCOUNT = Call("DELETE", "/account/", no_content)
_MODEL_CONFIGS = Call("GET", "/configs/model_configs", model(_CONFIGS))
_CREATE_CHAT = Call("POST", "/chats", model(_CHAT), json={})


def _list_chats(
    include_hidden: bool, limit: int, after: str | None, before: str | None
) -> Call[wire.ListChatsResponse]:
    params = {"include_hidden": str(include_hidden).lower(), "limit": str(limit)}
    params |= {name: value for name, value in (("after", after), ("before", before)) if value is not None}
    return Call("GET", "/chats", model(_CHATS), params=params)


def _get_chat(chat_id: uuid.UUID) -> Call[wire.ChatRead]:
    return Call("GET", f"/chats/{chat_id}", model(_CHAT))


def _update_chat(chat_id: uuid.UUID, update: wire.ChatUpdateRequest) -> Call[None]:
    return Call("PUT", f"/chats/{chat_id}", no_content, json=_body(update))


def _delete_chat(chat_id: uuid.UUID) -> Call[None]:
    return Call("DELETE", f"/chats/{chat_id}", no_content)


def _prompter_message(
    chat_id: uuid.UUID, content: str, parent_id: uuid.UUID | None
) -> Call[wire.MessageRead]:
    body = _body(wire.CreatePrompterMessageRequest(content=content, parent_id=parent_id))
    return Call("POST", f"/chats/{chat_id}/prompter_message", model(_MESSAGE), json=body)


def _assistant_message(
    chat_id: uuid.UUID, parent_id: uuid.UUID, model_name: str, sampling: wire.SamplingParameters | None
) -> Call[wire.MessageRead]:
    request = wire.CreateAssistantMessageRequest(
        parent_id=parent_id,
        model_config_name=model_name,
        sampling_parameters=sampling or wire.SamplingParameters(),
    )
    return Call("POST", f"/chats/{chat_id}/assistant_message", model(_MESSAGE), json=_body(request))


def _get_message(chat_id: uuid.UUID, message_id: uuid.UUID) -> Call[wire.MessageRead]:
    return Call("GET", _message_path(chat_id, message_id), model(_MESSAGE))


def _vote(chat_id: uuid.UUID, message_id: uuid.UUID, score: int) -> Call[None]:
    # Sent as given: the server answers a score other than -1, 0 or 1 with a 422.
    return Call("POST", _message_path(chat_id, message_id, "/votes"), no_content, json={"score": score})


def _report(chat_id: uuid.UUID, message_id: uuid.UUID, report_type: str, reason: str) -> Call[None]:
    body = {"report_type": report_type, "reason": reason}
    return Call("POST", _message_path(chat_id, message_id, "/reports"), no_content, json=body)


def _message_eval(chat_id: uuid.UUID, selected_id: uuid.UUID, inferior_ids: list[uuid.UUID]) -> Call[None]:
    body = _body(wire.MessageEvalRequest(inferior_message_ids=inferior_ids))
    return Call("POST", _message_path(chat_id, selected_id, "/message_evals"), no_content, json=body)


def _events_path(chat_id: uuid.UUID, message_id: uuid.UUID) -> str:
    return _message_path(chat_id, message_id, "/events")


# --- what both clients hold: the base URL, the credentials -------------------------------------------------


def _options(base_url: str, prefix: str, timeout: float | None, transport: object) -> dict[str, Any]:
    options: dict[str, Any] = {
        "base_url": base_url.rstrip("/") + prefix,
        "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
    }
    if transport is not None:
        options["transport"] = transport
    return options


class _Credentials(Generic[H]):
    """The sign-in state both clients keep in their HTTP client's headers."""

    _http: H
    refresh_token: str | None = None

    def use_token(self, token: str) -> None:
        """Call as the user of this access token."""
        self._http.headers["Authorization"] = f"Bearer {token}"

    def use_trusted_client(self, token: wire.TrustedClientToken) -> None:
        """Call as a trusted frontend (its API key) on behalf of `token.user_id`; wins over a bearer token."""
        self._http.headers["TrustedClient"] = base64.b64encode(token.model_dump_json().encode()).decode()

    def _signed_in(self, pair: wire.TokenPair) -> str:
        self.refresh_token = pair.refresh_token.access_token
        self.use_token(pair.access_token.access_token)
        return pair.access_token.access_token

    def _refresh_call(self, refresh_token: str | None) -> Call[wire.Token]:
        token = refresh_token or self.refresh_token
        if token is None:
            raise ValueError("no refresh token: sign in first or pass one")
        return _refresh(token)


class InferenceClient(_Credentials[httpx.Client]):
    """Synchronous client of one oasst server's inference API."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        prefix: str = PREFIX,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(**_options(base_url, prefix, timeout, transport))
        if token:
            self.use_token(token)

    def _run(self, call: Call[T]) -> T:
        return _finish(call, self._http.send(build_request(self._http, call)))

    def login_debug(self, username: str) -> str:
        """Sign in through the debug provider (servers with OASST_ALLOW_DEBUG_AUTH=true); keeps the token."""
        return self._signed_in(self._run(_login_debug(username)))

    def login_local(self, username: str, password: str) -> str:
        """Sign in with a local account; keeps the access and refresh tokens."""
        return self._signed_in(self._run(_login_local(username, password)))

    def register_local(self, username: str, password: str, display_name: str | None = None) -> str:
        """Create a local account (servers with OASST_ALLOW_REGISTRATION=true) and sign in with it."""
        return self._signed_in(self._run(_register_local(username, password, display_name)))

    def refresh(self, refresh_token: str | None = None) -> str:
        """A new access token from the refresh token (the one of the last sign-in unless given); kept."""
        token = self._run(self._refresh_call(refresh_token)).access_token
        self.use_token(token)
        return token

    def check(self) -> str:
        """The signed-in user's id."""
        return self._run(_CHECK)

    def providers(self) -> list[str]:
        return self._run(_PROVIDERS)

    def ensure_trusted_user(self) -> wire.InferenceUserRead:
        """As a trusted client: create the user it speaks for, if missing."""
        return self._run(_TRUSTED)

    def delete_account(self) -> None:
        """Delete the signed-in user's account (chats are kept, anonymised)."""
        self._run(_DELETE_ACCOUNT)

    def model_configs(self) -> list[wire.ModelConfigInfo]:
        """The models connected workers serve, with their sampling presets."""
        return self._run(_MODEL_CONFIGS)

    def create_chat(self) -> wire.ChatRead:
        return self._run(_CREATE_CHAT)

    def list_chats(
        self,
        *,
        include_hidden: bool = False,
        limit: int = 10,
        after: str | None = None,
        before: str | None = None,
    ) -> wire.ListChatsResponse:
        """A page of chats, newest first; pass a page's `next` as `after` for the older ones."""
        return self._run(_list_chats(include_hidden, limit, after, before))

    def get_chat(self, chat_id: uuid.UUID) -> wire.ChatRead:
        return self._run(_get_chat(chat_id))

    def update_chat(self, chat_id: uuid.UUID, update: wire.ChatUpdateRequest) -> None:
        """Change what `update` sets (title, hidden, allow_data_use, active thread tail)."""
        self._run(_update_chat(chat_id, update))

    def delete_chat(self, chat_id: uuid.UUID) -> None:
        self._run(_delete_chat(chat_id))

    def prompter_message(
        self, chat_id: uuid.UUID, content: str, parent_id: uuid.UUID | None
    ) -> wire.MessageRead:
        return self._run(_prompter_message(chat_id, content, parent_id))

    def assistant_message(
        self,
        chat_id: uuid.UUID,
        parent_id: uuid.UUID,
        model: str,
        sampling: wire.SamplingParameters | None = None,
    ) -> wire.MessageRead:
        """Ask for a reply from `model`; read it with `events`."""
        return self._run(_assistant_message(chat_id, parent_id, model, sampling))

    def get_message(self, chat_id: uuid.UUID, message_id: uuid.UUID) -> wire.MessageRead:
        return self._run(_get_message(chat_id, message_id))

    def vote(self, chat_id: uuid.UUID, message_id: uuid.UUID, score: int) -> None:
        """Thumbs up (1), down (-1) or neither (0) on an assistant message."""
        self._run(_vote(chat_id, message_id, score))

    def report(self, chat_id: uuid.UUID, message_id: uuid.UUID, report_type: str, reason: str = "") -> None:
        """Report an assistant message as spam, offensive, or with feedback."""
        self._run(_report(chat_id, message_id, report_type, reason))

    def message_eval(self, chat_id: uuid.UUID, selected_id: uuid.UUID, inferior_ids: list[uuid.UUID]) -> None:
        """Say which draft was best, over the other drafts of the same prompt."""
        self._run(_message_eval(chat_id, selected_id, inferior_ids))

    def events(self, chat_id: uuid.UUID, message_id: uuid.UUID) -> Iterator[wire.ResponseEvent]:
        """The server-sent events of an assistant message, until its final message or error."""
        with self._http.stream("GET", _events_path(chat_id, message_id), timeout=None) as response:
            if response.status_code >= 300:
                response.read()
                _check(response)
            for line in response.iter_lines():
                event = _event(line)
                if event is not None:
                    yield event
                    if _ends(event):
                        return

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncInferenceClient(_Credentials[httpx.AsyncClient]):
    """Asynchronous client of one oasst server's inference API (the same calls as `InferenceClient`)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        prefix: str = PREFIX,
        timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(**_options(base_url, prefix, timeout, transport))
        if token:
            self.use_token(token)

    async def _run(self, call: Call[T]) -> T:
        return _finish(call, await self._http.send(build_request(self._http, call)))

    async def login_debug(self, username: str) -> str:
        """Sign in through the debug provider (servers with OASST_ALLOW_DEBUG_AUTH=true); keeps the token."""
        return self._signed_in(await self._run(_login_debug(username)))

    async def login_local(self, username: str, password: str) -> str:
        """Sign in with a local account; keeps the access and refresh tokens."""
        return self._signed_in(await self._run(_login_local(username, password)))

    async def register_local(self, username: str, password: str, display_name: str | None = None) -> str:
        """Create a local account (servers with OASST_ALLOW_REGISTRATION=true) and sign in with it."""
        return self._signed_in(await self._run(_register_local(username, password, display_name)))

    async def refresh(self, refresh_token: str | None = None) -> str:
        """A new access token from the refresh token (the one of the last sign-in unless given); kept."""
        token = (await self._run(self._refresh_call(refresh_token))).access_token
        self.use_token(token)
        return token

    async def check(self) -> str:
        """The signed-in user's id."""
        return await self._run(_CHECK)

    async def providers(self) -> list[str]:
        return await self._run(_PROVIDERS)

    async def ensure_trusted_user(self) -> wire.InferenceUserRead:
        """As a trusted client: create the user it speaks for, if missing."""
        return await self._run(_TRUSTED)

    async def delete_account(self) -> None:
        """Delete the signed-in user's account (chats are kept, anonymised)."""
        await self._run(_DELETE_ACCOUNT)

    async def model_configs(self) -> list[wire.ModelConfigInfo]:
        """The models connected workers serve, with their sampling presets."""
        return await self._run(_MODEL_CONFIGS)

    async def create_chat(self) -> wire.ChatRead:
        return await self._run(_CREATE_CHAT)

    async def list_chats(
        self,
        *,
        include_hidden: bool = False,
        limit: int = 10,
        after: str | None = None,
        before: str | None = None,
    ) -> wire.ListChatsResponse:
        """A page of chats, newest first; pass a page's `next` as `after` for the older ones."""
        return await self._run(_list_chats(include_hidden, limit, after, before))

    async def get_chat(self, chat_id: uuid.UUID) -> wire.ChatRead:
        return await self._run(_get_chat(chat_id))

    async def update_chat(self, chat_id: uuid.UUID, update: wire.ChatUpdateRequest) -> None:
        """Change what `update` sets (title, hidden, allow_data_use, active thread tail)."""
        await self._run(_update_chat(chat_id, update))

    async def delete_chat(self, chat_id: uuid.UUID) -> None:
        await self._run(_delete_chat(chat_id))

    async def prompter_message(
        self, chat_id: uuid.UUID, content: str, parent_id: uuid.UUID | None
    ) -> wire.MessageRead:
        return await self._run(_prompter_message(chat_id, content, parent_id))

    async def assistant_message(
        self,
        chat_id: uuid.UUID,
        parent_id: uuid.UUID,
        model: str,
        sampling: wire.SamplingParameters | None = None,
    ) -> wire.MessageRead:
        """Ask for a reply from `model`; read it with `events`."""
        return await self._run(_assistant_message(chat_id, parent_id, model, sampling))

    async def get_message(self, chat_id: uuid.UUID, message_id: uuid.UUID) -> wire.MessageRead:
        return await self._run(_get_message(chat_id, message_id))

    async def vote(self, chat_id: uuid.UUID, message_id: uuid.UUID, score: int) -> None:
        """Thumbs up (1), down (-1) or neither (0) on an assistant message."""
        await self._run(_vote(chat_id, message_id, score))

    async def report(
        self, chat_id: uuid.UUID, message_id: uuid.UUID, report_type: str, reason: str = ""
    ) -> None:
        """Report an assistant message as spam, offensive, or with feedback."""
        await self._run(_report(chat_id, message_id, report_type, reason))

    async def message_eval(
        self, chat_id: uuid.UUID, selected_id: uuid.UUID, inferior_ids: list[uuid.UUID]
    ) -> None:
        """Say which draft was best, over the other drafts of the same prompt."""
        await self._run(_message_eval(chat_id, selected_id, inferior_ids))

    async def events(self, chat_id: uuid.UUID, message_id: uuid.UUID) -> AsyncIterator[wire.ResponseEvent]:
        """The server-sent events of an assistant message, until its final message or error."""
        async with self._http.stream("GET", _events_path(chat_id, message_id), timeout=None) as response:
            if response.status_code >= 300:
                await response.aread()
                _check(response)
            async for line in response.aiter_lines():
                event = _event(line)
                if event is not None:
                    yield event
                    if _ends(event):
                        return

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
