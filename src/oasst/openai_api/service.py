"""The OpenAI-compatible API's work: key check, models, and completions run through the inference queue.

A request becomes what the worker protocol already carries: a hidden chat of the operator user (see
`ensure_operator` in the inference service) with the request's turns and a pending assistant message, queued
for the model like any chat reply, so the same workers, re-queueing and timeouts apply. The rows stay (as
other chats do); the API itself never reads them back. Stop sequences are applied here, on the streamed text
(the worker protocol has no field for them). Counts: exact when the worker sends them (`usage` on its
generated_text, which a worker with the model's tokenizer does); otherwise completion tokens are the token
packets the worker sent and prompt tokens are estimated as one per four characters of the prompt, rounded up.
"""

from __future__ import annotations

import hmac
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import Chat, ChatMessage
from oasst.db.models.inference import uuid7
from oasst.inference import service as inference_service
from oasst.inference.deps import InferenceRuntime
from oasst.protocol.inference import (
    ErrorResponseEvent,
    MessageResponseEvent,
    MessageState,
    ModelConfig,
    SamplingParameters,
    TokenResponseEvent,
    WorkParameters,
)
from oasst.protocol.openai import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessageParam,
    Completion,
    CompletionChoice,
    CompletionRequest,
    Delta,
    ErrorBody,
    ErrorResponse,
    FinishReason,
    ModelCard,
    ModelList,
    SamplingRequest,
    Usage,
)
from oasst.worker.prompts import StopBuffer

DEFAULT_MAX_TOKENS = 1024
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class OpenAIError(Exception):
    """A refusal or failure rendered in OpenAI's error shape with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorResponse(error=ErrorBody(message=message, type=type_, param=param, code=code))
        self.headers = dict(headers) if headers else None


def authenticate(bootstrap_api_key: str | None, bearer: str | None) -> None:
    """Operators call with OASST_BOOTSTRAP_API_KEY as Bearer key; no key configured means no access."""
    if not bearer or not bootstrap_api_key:
        raise OpenAIError(401, "Missing or invalid API key.", code="invalid_api_key")
    if not hmac.compare_digest(bearer.encode(), bootstrap_api_key.encode()):
        raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")


def list_models(models: Mapping[str, ModelConfig]) -> ModelList:
    """The models the workers connected to this process serve."""
    return ModelList(data=[ModelCard(id=name) for name in sorted(models)])


def get_model(models: Mapping[str, ModelConfig], name: str) -> ModelCard:
    _model(models, name)
    return ModelCard(id=name)


def _model(models: Mapping[str, ModelConfig], name: str) -> ModelConfig:
    model = models.get(name)
    if model is None:
        raise OpenAIError(
            404, f"The model `{name}` does not exist or no worker serves it.", code="model_not_found"
        )
    return model


# --- turning a request into queued work ---------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """A request as the worker protocol carries it: a system prompt and the turns in order."""

    system: str | None
    turns: list[tuple[Literal["prompter", "assistant"], str]]

    def estimated_tokens(self) -> int:
        return inference_service.estimated_tokens([self.system or "", *(text for _, text in self.turns)])


@dataclass(frozen=True)
class Submitted:
    """A queued request: the assistant message whose stream carries its tokens."""

    message_id: uuid.UUID
    created_at: datetime
    model: str
    compat_hash: str
    prompt_tokens: int
    max_tokens: int
    stop: list[str]


@dataclass(frozen=True)
class Finished:
    reason: FinishReason
    completion_tokens: int
    prompt_tokens: int | None = None  # the worker's exact count; None: estimated from the prompt's length


class Meter(Protocol):
    """Charges the caller of a request (a gateway account; the operator key has none). It reserves the
    request's bound on the reply's message, in the transaction that stores the work; the worker connection
    settles that reservation to the reply's usage in the transaction that stores the reply, or releases it
    when the reply fails or times out (see the inference service's work lifecycle)."""

    async def reserve(
        self, session: AsyncSession, prompt: Prompt, max_tokens: int, reply_id: uuid.UUID
    ) -> None: ...


def _text(message: ChatMessageParam, index: int) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    parts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise OpenAIError(
                400, f"Only text content parts are supported (got `{part.type}`).", param=f"messages.{index}"
            )
        parts.append(part.text)
    return "".join(parts)


def chat_prompt(body: ChatCompletionRequest) -> Prompt:
    """System and developer messages join into the system prompt; user and assistant messages are turns."""
    systems: list[str] = []
    turns: list[tuple[Literal["prompter", "assistant"], str]] = []
    for index, message in enumerate(body.messages):
        text = _text(message, index)
        if message.role in ("system", "developer"):
            systems.append(text)
        elif message.role == "user":
            turns.append(("prompter", text))
        elif message.role == "assistant":
            turns.append(("assistant", text))
        else:
            raise OpenAIError(400, f"Messages of role `{message.role}` are not supported.", param="messages")
    if not turns or turns[-1][0] != "prompter":
        raise OpenAIError(400, "The last message must be a user message.", param="messages")
    return Prompt("\n\n".join(systems) if systems else None, turns)


def _check_common(body: SamplingRequest) -> None:
    if body.n not in (None, 1):
        raise OpenAIError(400, "Only n=1 is supported.", param="n")


def _sampling(
    body: SamplingRequest, max_tokens: int | None, rng: random.Random
) -> tuple[SamplingParameters, bool, int]:
    """(sampling parameters, do_sample, seed); a temperature or top_p of 0 means greedy decoding."""
    greedy = body.temperature == 0 or body.top_p == 0
    sampling = SamplingParameters(
        temperature=None if greedy else body.temperature,
        top_p=None if greedy else body.top_p,
        max_new_tokens=max_tokens or DEFAULT_MAX_TOKENS,
    )
    seed = body.seed % 2**64 if body.seed is not None else rng.randint(0, 2**64 - 2)
    return sampling, not greedy, seed


@dataclass(frozen=True)
class Work:
    """A checked request, ready to be stored and queued."""

    model: ModelConfig
    name: str
    operator: str  # the user owning the request's chat (see InferenceRuntime.operator_id)
    prompt: Prompt
    parameters: WorkParameters
    stop: list[str]


async def prepare(
    runtime: InferenceRuntime,
    body: SamplingRequest,
    prompt: Prompt,
    max_tokens: int | None,
    rng: random.Random,
) -> Work:
    """Check the request against the served models, the limits and the queue's room (no database work)."""
    _check_common(body)
    try:
        model = _model(runtime.workers.models(), body.model)
    except OpenAIError:
        runtime.refused("no_worker")
        raise
    limit = runtime.settings.message_max_length
    if len(prompt.system or "") > limit or any(len(text) > limit for _, text in prompt.turns):
        raise OpenAIError(
            400, f"A message is longer than {limit} characters.", code="context_length_exceeded"
        )
    if not await runtime.queue.has_room(model.compat_hash):
        runtime.refused("queue_full")
        raise OpenAIError(
            429,
            "The server is currently busy. Please try again later.",
            type_="rate_limit_error",
            code="queue_full",
            headers={"Retry-After": "10"},
        )
    sampling, do_sample, seed = _sampling(body, max_tokens, rng)
    try:
        parameters = WorkParameters(
            model=model,
            sampling_parameters=sampling,
            do_sample=do_sample,
            seed=seed,
            system_prompt=prompt.system,
        )
    except ValidationError as error:  # the work parameters' own limits (a system prompt of 4096 characters)
        raise OpenAIError(400, f"The request exceeds a limit of the worker protocol: {error}") from error
    return Work(model, body.model, runtime.operator_id, prompt, parameters, body.stop_sequences())


async def stage(session: AsyncSession, work: Work, meter: Meter | None = None) -> Submitted:
    """In the caller's transaction: store the request as a hidden chat of the operator user with a pending
    assistant message, and reserve its cost with the meter. Queue it with `dispatch` once committed."""
    max_tokens = work.parameters.sampling_parameters.max_new_tokens
    now = datetime.now(UTC)
    chat = Chat(
        id=uuid7(),
        user_id=work.operator,
        created_at=now,
        modified_at=now,
        title="OpenAI-compatible API",
        hidden=True,
        allow_data_use=False,
    )
    session.add(chat)
    parent: uuid.UUID | None = None
    for role, text in work.prompt.turns:
        state = MessageState.manual if role == "prompter" else MessageState.complete
        turn = ChatMessage(
            id=uuid7(),
            chat_id=chat.id,
            parent_id=parent,
            role=role,
            content=text,
            state=state,
            created_at=now,
        )
        session.add(turn)
        parent = turn.id
    stub = ChatMessage(
        id=uuid7(),
        chat_id=chat.id,
        parent_id=parent,
        role="assistant",
        state=MessageState.pending,
        created_at=now,
        work_parameters=work.parameters.model_dump(mode="json"),
        worker_compat_hash=work.model.compat_hash,
    )
    session.add(stub)
    chat.active_thread_tail_message_id = stub.id
    await session.flush()
    if meter is not None:  # last: the account's row stays locked only until the commit that follows
        await meter.reserve(session, work.prompt, max_tokens, stub.id)
    return Submitted(
        stub.id,
        now,
        work.name,
        work.model.compat_hash,
        work.prompt.estimated_tokens(),
        max_tokens,
        work.stop,
    )


async def dispatch(runtime: InferenceRuntime, submitted: Submitted) -> None:
    """Queue a committed request for the workers."""
    await runtime.queue.put(submitted.compat_hash, str(submitted.message_id), force=True)


async def submit(
    runtime: InferenceRuntime,
    body: SamplingRequest,
    prompt: Prompt,
    max_tokens: int | None,
    rng: random.Random,
    meter: Meter | None = None,
) -> Submitted:
    """Check the request, then reserve its cost, store it and queue it."""
    work = await prepare(runtime, body, prompt, max_tokens, rng)
    async with runtime.transaction() as session:
        submitted = await stage(session, work, meter)
    await dispatch(runtime, submitted)
    return submitted


# --- reading the worker's tokens back -----------------------------------------------------------------------


def _worker_failure(event: ErrorResponseEvent) -> OpenAIError:
    if event.error == "Timeout":
        return OpenAIError(504, "No worker answered in time.", type_="server_error", code="timeout")
    return OpenAIError(
        502, f"The model worker failed: {event.error}", type_="server_error", code="worker_error"
    )


async def generate(runtime: InferenceRuntime, submitted: Submitted) -> AsyncIterator[str | Finished | None]:
    """Text pieces as they stream, cut at the first stop sequence, then one Finished; None when idle (for
    keep-alives). A worker error or a timeout raises OpenAIError."""
    settings = runtime.settings
    message_id = str(submitted.message_id)
    buffer = StopBuffer(submitted.stop)
    packets = 0
    watchdog = inference_service.Watchdog(
        submitted.message_id, submitted.created_at, settings, runtime.streams, runtime.transaction
    )
    async for batch in runtime.streams.listen(message_id, settings.pending_event_interval):
        if not batch:
            if not await watchdog.idle():
                yield None
            continue
        watchdog.saw_event()
        pieces: list[str] = []  # the batch's text goes out as one piece
        finished: Finished | None = None
        failure: OpenAIError | None = None
        for event in batch:
            if isinstance(event, TokenResponseEvent):
                packets += 1
                pieces.append(buffer.push(event.text))
                if buffer.stopped:
                    finished = Finished("stop", packets)
            elif isinstance(event, MessageResponseEvent):
                pieces.append(buffer.flush())
                # The stream does not carry the worker's finish reason: a reply that used its whole token
                # budget is taken to have been cut by it.
                usage = event.usage
                completion = usage.completion_tokens if usage is not None else packets
                reason: FinishReason = "length" if completion >= submitted.max_tokens else "stop"
                finished = Finished(reason, completion, usage.prompt_tokens if usage is not None else None)
            elif isinstance(event, ErrorResponseEvent):
                failure = _worker_failure(event)
            if finished is not None or failure is not None:
                break
        text = "".join(pieces)
        if text:
            yield text
        if failure is not None:
            raise failure
        if finished is not None:
            yield finished
            return


def usage_of(submitted: Submitted, finished: Finished) -> Usage:
    """What the request used: the worker's exact counts when it sent them, else the estimates."""
    prompt_tokens = submitted.prompt_tokens if finished.prompt_tokens is None else finished.prompt_tokens
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=finished.completion_tokens,
        total_tokens=prompt_tokens + finished.completion_tokens,
    )


async def collect(runtime: InferenceRuntime, submitted: Submitted) -> tuple[str, Finished]:
    pieces: list[str] = []
    async for item in generate(runtime, submitted):
        if isinstance(item, Finished):
            return "".join(pieces), item
        if item is not None:
            pieces.append(item)
    raise OpenAIError(502, "The stream ended early.", type_="server_error")  # listen() never ends by itself


def _sse(chunk: BaseModel) -> str:
    return f"data: {chunk.model_dump_json()}\n\n"


def _sse_error(error: OpenAIError) -> str:
    return _sse(error.body)


def _include_usage(body: SamplingRequest) -> bool:
    return body.stream_options is not None and body.stream_options.include_usage


# --- chat completions ---------------------------------------------------------------------------------------


async def chat_completion(
    runtime: InferenceRuntime, body: ChatCompletionRequest, rng: random.Random, meter: Meter | None = None
) -> ChatCompletion | AsyncIterator[str]:
    """One ChatCompletion, or with `stream` its SSE frames."""
    if body.logprobs:
        raise OpenAIError(400, "logprobs are not supported.", param="logprobs")
    if body.tools:
        raise OpenAIError(400, "tools are not supported.", param="tools")
    prompt = chat_prompt(body)
    submitted = await submit(runtime, body, prompt, body.max_completion_tokens or body.max_tokens, rng, meter)
    completion_id = f"chatcmpl-{submitted.message_id.hex}"
    created = int(time.time())
    if body.stream:
        return _chat_stream(runtime, submitted, completion_id, created, _include_usage(body))
    text, finished = await collect(runtime, submitted)
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=submitted.model,
        choices=[ChatChoice(message=AssistantMessage(content=text), finish_reason=finished.reason)],
        usage=usage_of(submitted, finished),
    )


async def _chat_stream(
    runtime: InferenceRuntime, submitted: Submitted, completion_id: str, created: int, include_usage: bool
) -> AsyncIterator[str]:
    """A role chunk, content chunks, the finish chunk, then usage: on a chunk of its own (empty choices) when
    `stream_options.include_usage` asks, as OpenAI does, else on the finish chunk; usage always comes last."""

    def chunk(choices: list[ChatChunkChoice], usage: Usage | None = None) -> str:
        return _sse(
            ChatCompletionChunk(
                id=completion_id, created=created, model=submitted.model, choices=choices, usage=usage
            )
        )

    yield chunk([ChatChunkChoice(delta=Delta(role="assistant", content=""))])
    async for line in _stream_lines(
        runtime,
        submitted,
        include_usage,
        chunk,
        lambda text: ChatChunkChoice(delta=Delta(content=text)),
        lambda reason: ChatChunkChoice(delta=Delta(), finish_reason=reason),
    ):
        yield line


# --- completions --------------------------------------------------------------------------------------------


def completion_prompt(body: CompletionRequest) -> Prompt:
    """The prompt goes to the worker as one user turn (the protocol carries chat threads, not raw text)."""
    if body.logprobs:
        raise OpenAIError(400, "logprobs are not supported.", param="logprobs")
    if body.suffix:
        raise OpenAIError(400, "suffix is not supported.", param="suffix")
    return Prompt(None, [("prompter", body.prompt if isinstance(body.prompt, str) else body.prompt[0])])


async def completion(
    runtime: InferenceRuntime, body: CompletionRequest, rng: random.Random, meter: Meter | None = None
) -> Completion | AsyncIterator[str]:
    """One Completion, or with `stream` its SSE frames."""
    prompt = completion_prompt(body)
    submitted = await submit(runtime, body, prompt, body.max_tokens, rng, meter)
    completion_id = f"cmpl-{submitted.message_id.hex}"
    created = int(time.time())
    echo = prompt.turns[0][1] if body.echo else ""
    if body.stream:
        return _completion_stream(runtime, submitted, completion_id, created, echo, _include_usage(body))
    generated, finished = await collect(runtime, submitted)
    return Completion(
        id=completion_id,
        created=created,
        model=submitted.model,
        choices=[CompletionChoice(text=echo + generated, finish_reason=finished.reason)],
        usage=usage_of(submitted, finished),
    )


async def _completion_stream(
    runtime: InferenceRuntime,
    submitted: Submitted,
    completion_id: str,
    created: int,
    echo: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    """Text chunks, the finish chunk, then usage, placed as in the chat stream."""

    def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> str:
        return _sse(
            Completion(id=completion_id, created=created, model=submitted.model, choices=choices, usage=usage)
        )

    if echo:
        yield chunk([CompletionChoice(text=echo)])
    async for line in _stream_lines(
        runtime,
        submitted,
        include_usage,
        chunk,
        lambda text: CompletionChoice(text=text),
        lambda reason: CompletionChoice(text="", finish_reason=reason),
    ):
        yield line


async def _stream_lines(
    runtime: InferenceRuntime,
    submitted: Submitted,
    include_usage: bool,
    chunk: Callable[..., str],
    text_choice: Callable[[str], Any],
    finish_choice: Callable[[Any], Any],
) -> AsyncIterator[str]:
    """The SSE lines of a streamed answer: keep-alives, text chunks, the finish chunk and usage, `[DONE]`.

    Usage rides on the finish chunk, or on a chunk of its own with empty choices when the client asked for
    `stream_options.include_usage`, as OpenAI does. A failure ends the stream with an error chunk.
    """
    try:
        async for item in generate(runtime, submitted):
            if item is None:
                yield ": keep-alive\n\n"
            elif isinstance(item, str):
                yield chunk([text_choice(item)])
            else:
                usage = usage_of(submitted, item)
                if include_usage:
                    yield chunk([finish_choice(item.reason)])
                    yield chunk([], usage)
                else:
                    yield chunk([finish_choice(item.reason)], usage)
                break
    except OpenAIError as error:
        yield _sse_error(error)
        return
    yield "data: [DONE]\n\n"
