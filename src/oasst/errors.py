"""Typed domain errors: each carries its HTTP status and, on /api/v1, the Open-Assistant error code."""

from __future__ import annotations

from collections.abc import Mapping

from oasst.protocol.collection import ErrorCode


class OasstError(Exception):
    """A domain error the API renders as `{"error_code": code, "message": message}` with `status`.

    `headers` go out with the response (a 429 carries Retry-After).
    """

    def __init__(
        self,
        message: str,
        code: ErrorCode,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.headers = headers


def not_authorized() -> OasstError:
    return OasstError("Could not validate credentials", ErrorCode.API_CLIENT_NOT_AUTHORIZED, 403)


def forbidden() -> OasstError:
    return OasstError("Forbidden", ErrorCode.API_CLIENT_NOT_AUTHORIZED, 403)
