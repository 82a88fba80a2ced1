"""Prompt formats: the Open-Assistant special tokens (`<|prompter|>`, `<|assistant|>`, ...) and plain chat
turns for backends that apply the model's own template; stop sequences and the stop-aware token buffer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from oasst.protocol.inference import MessageRead, WorkParameters

PROMPTER = "<|prompter|>"
ASSISTANT = "<|assistant|>"
SYSTEM = "<|system|>"
END_OF_TEXT = "<|endoftext|>"
STOP_SEQUENCES = [PROMPTER, ASSISTANT, SYSTEM, END_OF_TEXT]

CUSTOM_INSTRUCTIONS = (
    "Use the user profile below only when the query is directly linked to it.\n"
    "User profile: {user_profile}\n"
    "How to respond: {user_response_instructions}"
)


@dataclass(frozen=True)
class Turn:
    role: Literal["system", "user", "assistant"]
    content: str


def system_text(parameters: WorkParameters) -> str | None:
    """The system turn: the system prompt, then custom instructions when a profile or rules exist."""
    if not (parameters.system_prompt or parameters.user_profile or parameters.user_response_instructions):
        return None
    text = parameters.system_prompt or ""
    if parameters.user_profile or parameters.user_response_instructions:
        text += "\n" + CUSTOM_INSTRUCTIONS.format(
            user_profile=parameters.user_profile or "",
            user_response_instructions=parameters.user_response_instructions or "",
        )
    return text


def chat_turns(messages: list[MessageRead], parameters: WorkParameters) -> list[Turn]:
    """The thread as chat turns (for a backend that applies the model's own chat template)."""
    turns: list[Turn] = []
    system = system_text(parameters)
    if system is not None:
        turns.append(Turn("system", system))
    for message in messages:
        turns.append(Turn("user" if message.role == "prompter" else "assistant", message.content or ""))
    return turns


TURN_TOKENS = {"system": SYSTEM, "user": PROMPTER, "assistant": ASSISTANT}


def oasst_text(turns: list[Turn], eos: str = END_OF_TEXT) -> str:
    """Turns in the Open-Assistant format, `<|prompter|>Q1<eos><|assistant|>A1<eos>...` (training uses it)."""
    return "".join(f"{TURN_TOKENS[turn.role]}{turn.content}{eos}" for turn in turns)


def oasst_prompt(messages: list[MessageRead], parameters: WorkParameters, eos: str = END_OF_TEXT) -> str:
    """`<|system|>SYS<eos><|prompter|>Q1<eos><|assistant|>A1<eos>...<|prompter|>Qn<eos><|assistant|>`."""
    return oasst_text(chat_turns(messages, parameters), eos) + ASSISTANT


class StopBuffer:
    """Holds back text that could start a stop sequence, so a stop sequence never reaches the user."""

    def __init__(self, stop: list[str]) -> None:
        self._stop = [sequence for sequence in stop if sequence]
        self._pending = ""
        self.stopped = False
        self.text = ""  # everything released so far

    def push(self, text: str) -> str:
        """Add generated text; returns what can be released now ("" while held back or once stopped)."""
        if self.stopped:
            return ""
        self._pending += text
        for sequence in self._stop:
            index = self._pending.find(sequence)
            if index >= 0:
                self.stopped = True
                return self._release(self._pending[:index])
        keep = max((self._overlap(sequence) for sequence in self._stop), default=0)
        return self._release(self._pending[: len(self._pending) - keep])

    def flush(self) -> str:
        return "" if self.stopped else self._release(self._pending)

    def _overlap(self, sequence: str) -> int:
        """Length of the longest end of the pending text that is a start of `sequence`."""
        for size in range(min(len(sequence) - 1, len(self._pending)), 0, -1):
            if sequence.startswith(self._pending[-size:]):
                return size
        return 0

    def _release(self, text: str) -> str:
        self._pending = self._pending[len(text) :]
        if self.stopped:
            self._pending = ""
        self.text += text
        return text
