"""The gateway's one error: a status and the message rendered as Parrot's `{"error": message}`."""

from __future__ import annotations

ACCESS_DENIED = "Access Denied"


class GatewayError(Exception):
    """A refusal of the Parrot API; 400 unless a status is given."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
