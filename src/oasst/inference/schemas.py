"""Server-side shapes of the inference API: its typed error, token claims, chat cursors, sampling presets."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from fastapi import HTTPException

from oasst.protocol.inference import MessageState, SamplingParameters

# Upstream counts only manual, complete and aborted_by_worker as finished, so a stream opened on a cancelled
# or timed-out message sends `pending` forever; here those end too (the 204 of the events route).
FINISHED = frozenset(
    {
        MessageState.manual,
        MessageState.complete,
        MessageState.aborted_by_worker,
        MessageState.cancelled,
        MessageState.timeout,
    }
)


class InferenceError(HTTPException):
    """A refusal of the inference API, rendered as upstream's `{"detail": ...}` with its status."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, detail, dict(headers) if headers else None)


class Refused(InferenceError):
    """A request turned away for want of capacity, counted on /metrics by `reason`."""

    def __init__(
        self, status: int, detail: str, reason: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, detail, headers)
        self.reason = reason


def not_found(what: str) -> InferenceError:
    return InferenceError(404, f"{what} not found")


@dataclass(frozen=True)
class Claims:
    """What a signed access or refresh token says."""

    user_id: str
    exp: float
    type: Literal["access", "refresh"]


def encode_cursor(chat_id: uuid.UUID) -> str:
    return base64.b64encode(str(chat_id).encode()).decode()


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        return uuid.UUID(base64.b64decode(cursor, validate=True).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise InferenceError(400, "Invalid cursor") from error


def _preset(
    top_k: int | None = 50,
    top_p: float | None = 0.95,
    temperature: float = 0.75,
    repetition_penalty: float = 1.2,
    typical_p: float | None = None,
) -> SamplingParameters:
    return SamplingParameters(
        top_k=top_k,
        top_p=top_p,
        temperature=temperature,
        repetition_penalty=repetition_penalty,
        typical_p=typical_p,
        max_new_tokens=1024,
    )


# Upstream's presets, offered for every model, in upstream's order.
PRESETS: list[tuple[str, str, SamplingParameters]] = [
    ("k50", "Top-k sampling with k=50", _preset()),
    ("k50-Creative", "Top-k sampling with k=50 and higher temperature", _preset(temperature=0.85)),
    ("k50-Precise", "Top-k sampling with k=50 and low temperature", _preset(temperature=0.1)),
    ("k50-Original", "Top-k sampling with k=50 and highest temperature", _preset(temperature=0.9)),
    (
        "k50-Plugins",
        "Top-k sampling with k=50 and temperature=0.35",
        _preset(top_p=None, temperature=0.35, repetition_penalty=1 / 0.9),
    ),
    ("nucleus9", "Nucleus sampling with p=0.9", _preset(top_k=None, top_p=0.9, temperature=0.8)),
    (
        "typical2",
        "Typical sampling with p=0.2",
        _preset(top_k=None, top_p=None, temperature=0.8, typical_p=0.2),
    ),
    (
        "typical3",
        "Typical sampling with p=0.3",
        _preset(top_k=None, top_p=None, temperature=0.8, typical_p=0.3),
    ),
]
