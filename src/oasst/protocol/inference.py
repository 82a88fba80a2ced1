"""Wire models of the Open-Assistant inference API (/inference): chats, messages, sampling, auth, SSE."""

from __future__ import annotations

import enum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from oasst.protocol.collection import Timestamp

Title = Annotated[str, StringConstraints(max_length=100)]
ShortText = Annotated[str, StringConstraints(max_length=4096)]


class WireModel(BaseModel):
    """Unknown fields are ignored (as upstream's pydantic v1 did); `model_*` field names are allowed."""

    model_config = ConfigDict(
        extra="ignore", protected_namespaces=(), validate_by_name=True, serialize_by_alias=True
    )


class MessageState(enum.StrEnum):
    manual = "manual"
    pending = "pending"
    in_progress = "in_progress"
    complete = "complete"
    aborted_by_worker = "aborted_by_worker"
    cancelled = "cancelled"
    timeout = "timeout"


class ModelConfig(WireModel):
    """A model as workers serve it; workers with the same compat hash share one queue."""

    model_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    max_input_length: int = Field(512, ge=1)
    max_total_length: int = Field(1024, ge=2)
    quantized: bool = False

    @property
    def compat_hash(self) -> str:
        quantized = "q" if self.quantized else "f"
        return f"{self.model_id}-{self.max_total_length}-{self.max_input_length}-{quantized}"


class SamplingParameters(WireModel):
    """Sampling knobs (None leaves the backend's default); ranges are checked so a bad value is a 422."""

    top_k: int | None = Field(None, ge=1, le=1000)
    top_p: float | None = Field(None, gt=0, le=1)
    typical_p: float | None = Field(None, gt=0, le=1)
    temperature: float | None = Field(None, ge=0, le=2)
    repetition_penalty: float | None = Field(None, gt=0, le=10)
    max_new_tokens: int = Field(1024, ge=1, le=65536)


class WorkParameters(WireModel):
    """What a worker needs besides the thread: the model, the sampling and the instructions."""

    model: ModelConfig = Field(alias="model_config")
    sampling_parameters: SamplingParameters = Field(default_factory=SamplingParameters)
    do_sample: bool = True
    seed: int = Field(0, ge=0, le=2**64 - 1)
    system_prompt: ShortText | None = None
    user_profile: ShortText | None = None
    user_response_instructions: ShortText | None = None
    plugins: list[dict[str, object]] = Field(default_factory=list)
    plugin_max_depth: int = 4


class Report(WireModel):
    id: UUID
    report_type: Literal["spam", "offensive", "feedback"]
    reason: str


class MessageRead(WireModel):
    id: UUID
    parent_id: UUID | None = None
    content: str | None = None
    chat_id: UUID
    created_at: Timestamp
    role: Literal["prompter", "assistant"]
    state: MessageState
    score: int = 0
    reports: list[Report] = Field(default_factory=list)
    work_parameters: WorkParameters | None = None
    safe_content: str | None = None
    safety_level: int | None = None
    safety_label: str | None = None
    safety_rots: str | None = None
    used_plugin: dict[str, object] | None = None


class ChatListRead(WireModel):
    id: UUID
    created_at: Timestamp
    modified_at: Timestamp
    title: str | None = None
    hidden: bool = False
    allow_data_use: bool = True
    active_thread_tail_message_id: UUID | None = None


class ChatRead(ChatListRead):
    messages: list[MessageRead] = Field(default_factory=list)


class ListChatsResponse(WireModel):
    chats: list[ChatListRead]
    next: str | None = None
    prev: str | None = None


class CreateChatRequest(WireModel):
    """No fields: a chat starts empty."""


class ChatUpdateRequest(WireModel):
    """Null leaves a field as it is."""

    title: Title | None = None
    hidden: bool | None = None
    allow_data_use: bool | None = None
    active_thread_tail_message_id: UUID | None = None


class CreatePrompterMessageRequest(WireModel):
    parent_id: UUID | None = None
    content: Annotated[str, StringConstraints(min_length=1)]


class CreateAssistantMessageRequest(WireModel):
    parent_id: UUID
    model_config_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    sampling_parameters: SamplingParameters = Field(default_factory=SamplingParameters)
    system_prompt: ShortText | None = None
    user_profile: ShortText | None = None
    user_response_instructions: ShortText | None = None
    plugins: list[dict[str, object]] = Field(default_factory=list, max_length=0)
    used_plugin: dict[str, object] | None = None


class ParameterConfig(WireModel):
    name: str
    description: str = ""
    sampling_parameters: SamplingParameters


class ModelConfigInfo(WireModel):
    name: str
    description: str = ""
    parameter_configs: list[ParameterConfig]


class Token(WireModel):
    access_token: str
    token_type: Literal["bearer", "refresh"] = "bearer"


class TokenPair(WireModel):
    access_token: Token
    refresh_token: Token


class CreateWorkerRequest(WireModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    trusted: bool = False


class WorkerRead(WireModel):
    """A worker key; `api_key` is shown only when it is minted (it is stored hashed)."""

    id: UUID
    name: str
    api_key: str | None = None
    trusted: bool = False


class LocalLoginRequest(WireModel):
    """Sign-in with a local account (oasst's own; upstream has only OAuth and debug logins)."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class LocalRegisterRequest(LocalLoginRequest):
    display_name: Annotated[str, StringConstraints(max_length=256)] | None = None


class TrustedClientToken(WireModel):
    """What a trusted frontend (website, bot) puts, as base64 JSON, in the `TrustedClient` header."""

    api_key: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    client: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    provider_account_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    username: Annotated[str, StringConstraints(max_length=256)]


class InferenceUserRead(WireModel):
    """Upstream's DbUser as `POST /auth/trusted` returns it."""

    id: str
    provider: str
    provider_account_id: str
    display_name: str
    deleted: bool = False


class VoteRequest(WireModel):
    score: Literal[-1, 0, 1]


class ReportRequest(WireModel):
    report_type: Literal["spam", "offensive", "feedback"]
    reason: Annotated[str, StringConstraints(max_length=4096)] = ""


class MessageEvalRequest(WireModel):
    """The drafts passed over in favour of the message the route names."""

    inferior_message_ids: list[UUID] = Field(default_factory=list, max_length=32)


# --- the SSE stream of an assistant message -----------------------------------------------------------------


class PendingResponseEvent(WireModel):
    event_type: Literal["pending"] = "pending"
    queue_position: int
    queue_size: int


class TokenResponseEvent(WireModel):
    event_type: Literal["token"] = "token"
    text: str


class ErrorResponseEvent(WireModel):
    event_type: Literal["error"] = "error"
    error: str
    message: MessageRead | None = None


class TokenUsage(WireModel):
    """Token counts a worker measured for one reply (an oasst extension: upstream sends and reads none)."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)


class MessageResponseEvent(WireModel):
    event_type: Literal["message"] = "message"
    message: MessageRead
    usage: TokenUsage | None = None  # the worker's exact counts, when it sent them


ResponseEvent = Annotated[
    PendingResponseEvent | TokenResponseEvent | ErrorResponseEvent | MessageResponseEvent,
    Field(discriminator="event_type"),
]
