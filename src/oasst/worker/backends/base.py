"""The one abstract class every model backend implements: stream tokens, then say why the stream ended."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Literal

from oasst.protocol.inference import MessageRead, ModelConfig, SamplingParameters, WorkParameters
from oasst.worker.prompts import Turn, chat_turns, oasst_prompt

FinishReason = Literal["length", "eos_token", "stop_sequence"]


@dataclass(frozen=True)
class Generation:
    """One request as a backend sees it: the formatted prompt, the same thread as chat turns, sampling."""

    prompt: str
    turns: list[Turn]
    sampling: SamplingParameters
    seed: int
    do_sample: bool
    stop: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, messages: list[MessageRead], parameters: WorkParameters, stop: list[str]) -> Generation:
        return cls(
            prompt=oasst_prompt(messages, parameters),
            turns=chat_turns(messages, parameters),
            sampling=parameters.sampling_parameters,
            seed=parameters.seed,
            do_sample=parameters.do_sample,
            stop=stop,
        )


@dataclass(frozen=True)
class Started:
    """A backend that counts tokens yields this first: the prompt's length in the model's tokens (after any
    truncation). The worker then reports exact counts; the completion count is the Tokens it consumed."""

    prompt_tokens: int


@dataclass(frozen=True)
class Token:
    text: str
    token_id: int = 0
    log_prob: float | None = None


@dataclass(frozen=True)
class Finish:
    reason: FinishReason


class BackendError(Exception):
    """The model could not answer this request (the worker reports it and goes on)."""


class Backend(ABC):
    """A model behind the worker. `generate` may yield one Started first, then yields Tokens (one per model
    token when it counts) and ends with exactly one Finish."""

    def __init__(self, model: ModelConfig) -> None:
        self.model = model

    async def start(self) -> None:  # noqa: B027 (optional hook)
        """Load or connect (the default needs nothing)."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what start() took."""

    @abstractmethod
    def generate(self, generation: Generation) -> AsyncGenerator[Started | Token | Finish, None]: ...
