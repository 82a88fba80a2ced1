"""Wire models of the OpenAI-compatible API (/v1): models, chat completions, completions, chunks, errors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
StopSequence = Annotated[str, StringConstraints(min_length=1, max_length=200)]
FinishReason = Literal["stop", "length"]


class OpenAIModel(BaseModel):
    """Unknown fields are ignored, as OpenAI-compatible servers do with the SDK's newer options."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())


# --- requests -----------------------------------------------------------------------------------------------


class StreamOptions(OpenAIModel):
    include_usage: bool = False


class SamplingRequest(OpenAIModel):
    """What both completion routes take. Penalties, logit_bias and user are accepted and ignored."""

    model: ModelName
    max_tokens: int | None = Field(None, ge=1, le=65536)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: StopSequence | Annotated[list[StopSequence], Field(max_length=4)] | None = None
    seed: int | None = None
    n: int | None = Field(None, ge=1, le=128)
    stream: bool | None = False
    stream_options: StreamOptions | None = None

    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ContentPart(OpenAIModel):
    type: Annotated[str, StringConstraints(max_length=64)]
    text: str | None = None


class ChatMessageParam(OpenAIModel):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | Annotated[list[ContentPart], Field(max_length=256)] | None = None
    name: Annotated[str, StringConstraints(max_length=256)] | None = None


class ChatCompletionRequest(SamplingRequest):
    messages: Annotated[list[ChatMessageParam], Field(min_length=1, max_length=1000)]
    max_completion_tokens: int | None = Field(None, ge=1, le=65536)
    logprobs: bool | None = None
    tools: list[dict[str, object]] | None = None


class CompletionRequest(SamplingRequest):
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]
    echo: bool | None = False
    best_of: int | None = Field(None, ge=1, le=1)
    logprobs: int | None = None
    suffix: str | None = None


# --- responses ----------------------------------------------------------------------------------------------


class Usage(OpenAIModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(OpenAIModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(OpenAIModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(OpenAIModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class Delta(OpenAIModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(OpenAIModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(OpenAIModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChoice(OpenAIModel):
    index: int = 0
    text: str
    finish_reason: FinishReason | None = None
    logprobs: None = None


class Completion(OpenAIModel):
    """A completion, and (with `usage` left out until the end) each chunk of a streamed one."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(OpenAIModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "oasst"


class ModelList(OpenAIModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(OpenAIModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(OpenAIModel):
    """OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`."""

    error: ErrorBody
