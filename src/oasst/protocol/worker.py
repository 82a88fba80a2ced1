"""The worker protocol: packets on the websocket /inference/workers/work, discriminated by their type field.

Server to worker packets carry `request_type`, worker to server packets `response_type` (upstream's names, so
Open-Assistant workers can connect). The handshake is the headers `X-API-Key` and `X-Protocol-Version`, then
the worker's first frame, a `WorkerInfo`.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import uuid4

from pydantic import Field, TypeAdapter

from oasst.protocol.collection import Timestamp
from oasst.protocol.inference import MessageRead, ModelConfig, TokenUsage, WireModel, WorkParameters

PROTOCOL_VERSION = "1"
API_KEY_HEADER = "X-API-Key"
PROTOCOL_VERSION_HEADER = "X-Protocol-Version"
# Application close codes (4000-4999) mirroring the HTTP status of each refusal.
CLOSE_WRONG_API_KEY = 4401
CLOSE_UPGRADE_PROTOCOL = 4426
CLOSE_BAD_HANDSHAKE = 4400


def _new_id() -> str:
    return str(uuid4())


class GpuInfo(WireModel):
    name: str
    total_memory: int


class WorkerHardwareInfo(WireModel):
    uname_sysname: str = ""
    uname_release: str = ""
    uname_version: str = ""
    uname_machine: str = ""
    uname_processor: str = ""
    cpu_count_physical: int | None = None
    cpu_count_logical: int | None = None
    cpu_freq_max: float = 0
    cpu_freq_min: float = 0
    mem_total: int | None = None
    swap_total: int | None = None
    nvidia_driver_version: str | None = None
    gpus: list[GpuInfo] = Field(default_factory=list)


class WorkerConfig(WireModel):
    model: ModelConfig = Field(alias="model_config")
    max_parallel_requests: int = Field(1, ge=1, le=256)


class WorkerInfo(WireModel):
    """The worker's first frame: what it serves and on what."""

    config: WorkerConfig
    hardware_info: WorkerHardwareInfo = Field(default_factory=WorkerHardwareInfo)


class GpuMetricsInfo(WireModel):
    gpu_usage: float
    mem_usage: float


class WorkerMetricsInfo(WireModel):
    created_at: Timestamp | None = None
    cpu_usage: float = 0
    mem_usage: float = 0
    swap_usage: float = 0
    gpus: list[GpuMetricsInfo] | None = None


# --- server to worker ---------------------------------------------------------------------------------------


class Thread(WireModel):
    messages: list[MessageRead]


class SafetyParameters(WireModel):
    level: int = Field(0, ge=0, le=9)


class WorkRequest(WireModel):
    request_type: Literal["work"] = "work"
    id: str = Field(default_factory=_new_id)
    thread: Thread
    created_at: Timestamp
    parameters: WorkParameters
    safety_parameters: SafetyParameters = Field(default_factory=SafetyParameters)


class PingRequest(WireModel):
    request_type: Literal["ping"] = "ping"
    id: str = Field(default_factory=_new_id)


class ErrorRequest(WireModel):
    request_type: Literal["error"] = "error"
    id: str = Field(default_factory=_new_id)
    error: str


class TerminateRequest(WireModel):
    request_type: Literal["terminate"] = "terminate"
    id: str = Field(default_factory=_new_id)


class UpgradeProtocolRequest(WireModel):
    request_type: Literal["upgrade_protocol"] = "upgrade_protocol"
    id: str = Field(default_factory=_new_id)


class WrongApiKeyRequest(WireModel):
    request_type: Literal["wrong_api_key"] = "wrong_api_key"
    id: str = Field(default_factory=_new_id)


WorkerRequest = Annotated[
    WorkRequest | PingRequest | ErrorRequest | TerminateRequest | UpgradeProtocolRequest | WrongApiKeyRequest,
    Field(discriminator="request_type"),
]

# --- worker to server ---------------------------------------------------------------------------------------


class PongResponse(WireModel):
    response_type: Literal["pong"] = "pong"
    request_id: str | None = None
    metrics: WorkerMetricsInfo | None = None


class TokenResponse(WireModel):
    response_type: Literal["token"] = "token"
    request_id: str | None = None
    text: str
    log_prob: float | None = None
    token_id: int = 0


class GeneratedTextResponse(WireModel):
    response_type: Literal["generated_text"] = "generated_text"
    request_id: str | None = None
    text: str
    finish_reason: Literal["length", "eos_token", "stop_sequence"]
    metrics: WorkerMetricsInfo | None = None
    used_plugin: dict[str, object] | None = None
    usage: TokenUsage | None = None  # oasst extension: exact counts from a worker that has the tokenizer


class ErrorResponse(WireModel):
    response_type: Literal["error"] = "error"
    request_id: str | None = None
    error: str
    metrics: WorkerMetricsInfo | None = None


class GeneralErrorResponse(WireModel):
    """An error not tied to a request (upstream defines it but forgot it in its union; it is here)."""

    response_type: Literal["general_error"] = "general_error"
    request_id: str | None = None
    error: str
    metrics: WorkerMetricsInfo | None = None


WorkerResponse = Annotated[
    PongResponse | TokenResponse | GeneratedTextResponse | ErrorResponse | GeneralErrorResponse,
    Field(discriminator="response_type"),
]

worker_request_adapter: TypeAdapter[WorkerRequest] = TypeAdapter(WorkerRequest)
worker_response_adapter: TypeAdapter[WorkerResponse] = TypeAdapter(WorkerResponse)
