"""The request core shared by the sync and async clients: a call is described once, only the send differs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from oasst.protocol.collection import ErrorCode, ErrorResponse

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0


class OasstApiError(Exception):
    """An answer with status >= 300: the HTTP status and the body's `{error_code, message}`.

    422 validation errors and bodies that are not an Open-Assistant error carry error_code 0 and the raw text.
    """

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(f"{status} [{error_code}] {message}")
        self.status = status
        self.error_code = error_code
        self.message = message

    @property
    def code(self) -> ErrorCode | None:
        """The error code as an `ErrorCode`, or None when this server sent one we do not know."""
        try:
            return ErrorCode(self.error_code)
        except ValueError:
            return None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: what to send and how to read a successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


def no_content(_response: httpx.Response) -> None:
    """Parse a 204 (or any body we do not need) to None."""
    return None


def model(adapter: TypeAdapter[T]) -> Callable[[httpx.Response], T]:
    """Parse the JSON body with a pydantic TypeAdapter."""

    def parse(response: httpx.Response) -> T:
        return adapter.validate_json(response.content)

    return parse


def raise_for_error(response: httpx.Response) -> None:
    """Turn any status >= 300 into an `OasstApiError`, as the upstream clients do."""
    if response.status_code < 300:
        return
    text = response.text
    if response.status_code != 422:
        try:
            body = ErrorResponse.model_validate_json(text)
        except ValidationError:
            pass
        else:
            raise OasstApiError(response.status_code, body.error_code, body.message)
    raise OasstApiError(response.status_code, int(ErrorCode.GENERIC_ERROR), text)


def client_options(
    base_url: str,
    api_key: str,
    timeout: float | None,
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
) -> dict[str, Any]:
    """Keyword arguments for `httpx.Client` / `httpx.AsyncClient`: base URL, key header, timeout."""
    options: dict[str, Any] = {
        "base_url": base_url.rstrip("/"),
        "headers": {"X-API-Key": api_key},
        "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
    }
    if transport is not None:
        options["transport"] = transport
    return options


def build_request(http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
    return http.build_request(
        call.method, call.path, json=call.json, params=dict(call.params), headers=dict(call.headers)
    )


def finish(call: Call[T], response: httpx.Response) -> T:
    """Check the status, then parse the answer of `call`."""
    raise_for_error(response)
    return call.parse(response)
