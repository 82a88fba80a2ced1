"""A Python client of the inference API (/inference): sign in, chats, messages and the token stream."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import TypeAdapter

from oasst.client._http import DEFAULT_TIMEOUT
from oasst.protocol import inference as wire


class InferenceApiError(Exception):
    """An answer with status >= 300, with the server's `detail` text."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


_EVENT = TypeAdapter[wire.ResponseEvent](wire.ResponseEvent)
_CONFIGS = TypeAdapter(list[wire.ModelConfigInfo])


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 300:
        try:
            detail = str(response.json().get("detail", response.text))
        except ValueError:
            detail = response.text
        raise InferenceApiError(response.status_code, detail)
    return response


class InferenceClient:
    """Synchronous client of one oasst server's inference API, signed in with a bearer token."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        options: dict[str, Any] = {
            "base_url": base_url.rstrip("/") + "/inference",
            "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
        }
        if transport is not None:
            options["transport"] = transport
        self._http = httpx.Client(**options)
        if token:
            self.use_token(token)

    def use_token(self, token: str) -> None:
        self._http.headers["Authorization"] = f"Bearer {token}"

    def login_debug(self, username: str) -> str:
        """Sign in through the debug provider (servers with OASST_ALLOW_DEBUG_AUTH=true); keeps the token."""
        response = _check(self._http.get("/auth/callback/debug", params={"code": username}))
        token = wire.TokenPair.model_validate_json(response.content).access_token.access_token
        self.use_token(token)
        return token

    def model_configs(self) -> list[wire.ModelConfigInfo]:
        """The models connected workers serve, with their sampling presets."""
        return _CONFIGS.validate_json(_check(self._http.get("/configs/model_configs")).content)

    def create_chat(self) -> wire.ChatRead:
        response = _check(self._http.post("/chats", json={}))
        return wire.ChatRead.model_validate_json(response.content)

    def prompter_message(
        self, chat_id: uuid.UUID, content: str, parent_id: uuid.UUID | None
    ) -> wire.MessageRead:
        body = wire.CreatePrompterMessageRequest(content=content, parent_id=parent_id)
        return self._post_message(f"/chats/{chat_id}/prompter_message", body)

    def assistant_message(
        self,
        chat_id: uuid.UUID,
        parent_id: uuid.UUID,
        model: str,
        sampling: wire.SamplingParameters | None = None,
    ) -> wire.MessageRead:
        """Ask for a reply from `model`; read it with `events`."""
        body = wire.CreateAssistantMessageRequest(
            parent_id=parent_id,
            model_config_name=model,
            sampling_parameters=sampling or wire.SamplingParameters(),
        )
        return self._post_message(f"/chats/{chat_id}/assistant_message", body)

    def _post_message(self, path: str, body: wire.WireModel) -> wire.MessageRead:
        response = _check(self._http.post(path, json=body.model_dump(mode="json")))
        return wire.MessageRead.model_validate_json(response.content)

    def events(self, chat_id: uuid.UUID, message_id: uuid.UUID) -> Iterator[wire.ResponseEvent]:
        """The server-sent events of an assistant message, until its final message or error."""
        path = f"/chats/{chat_id}/messages/{message_id}/events"
        with self._http.stream("GET", path, timeout=None) as response:
            _check_stream(response)
            for line in response.iter_lines():
                if line.startswith("data:"):
                    event = _EVENT.validate_json(line.removeprefix("data:").strip())
                    yield event
                    if event.event_type in ("message", "error"):
                        return

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _check_stream(response: httpx.Response) -> None:
    if response.status_code >= 300:
        response.read()
        _check(response)
