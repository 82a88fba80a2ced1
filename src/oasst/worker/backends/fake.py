"""A deterministic backend for tests: it echoes the last user turn back, word by word."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

from oasst.protocol.inference import ModelConfig
from oasst.worker.backends.base import Backend, Finish, Generation, Token

_WORDS = re.compile(r"\S+\s*|\s+")


def fake_reply(generation: Generation) -> str:
    """The text the fake backend writes for `generation` (tests compare against it)."""
    last = next((turn.content for turn in reversed(generation.turns) if turn.role == "user"), "")
    return f"You said: {last}"


class FakeBackend(Backend):
    """Streams `fake_reply` one word a token; `token_delay` paces it, `stall_after` hangs after that many
    tokens (so tests can kill a worker before or during a stream)."""

    def __init__(
        self, model: ModelConfig, *, token_delay: float = 0.0, stall_after: int | None = None
    ) -> None:
        super().__init__(model)
        self.token_delay = token_delay
        self.stall_after = stall_after

    async def generate(self, generation: Generation) -> AsyncGenerator[Token | Finish, None]:
        words = _WORDS.findall(fake_reply(generation))
        for index, word in enumerate(words):
            if index == self.stall_after:
                await asyncio.Event().wait()  # hangs until the worker goes away
            if index >= generation.sampling.max_new_tokens:
                yield Finish("length")
                return
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            yield Token(word, token_id=index)
        yield Finish("eos_token")
