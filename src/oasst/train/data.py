"""Training data from OASST exports: threads for SFT, ranked pairs for reward models and DPO, prompts for PPO,
a split by tree, extra instruction datasets, and the prompt formats the worker serves with.

Exports are read by the collection's export reader (nested trees, our message lists and the flat Hugging Face
oasst1/oasst2 rows), so a bad line is reported as `file:line: reason`. Nothing here imports torch.
"""

from __future__ import annotations

import enum
import gzip
import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oasst.collection.export.reader import Failure, Reader, ReadTree
from oasst.worker.prompts import ASSISTANT, END_OF_TEXT, Turn, oasst_text

READY = "ready_for_export"


class DataError(ValueError):
    """A training file or option that cannot be used; file problems name `file:line`."""


@dataclass
class Node:
    """One kept message of a tree; `children` are sorted best rank first."""

    id: str
    role: str
    text: str
    rank: int | None
    children: list[Node] = field(default_factory=list)


@dataclass
class Tree:
    id: str
    lang: str | None
    root: Node


@dataclass(frozen=True)
class Filters:
    """Which trees and messages count. Rejected (review_result false) and deleted messages never do."""

    langs: frozenset[str] | None = None  # the prompt's language; None: every language
    include_unreviewed: bool = False  # messages without a review result (an accepted one has `true`)
    tree_states: frozenset[str] | None = frozenset({READY})  # None: any state; trees without one pass


@dataclass(frozen=True)
class Pair:
    """Two sibling assistant replies to the same thread, the better-ranked one chosen."""

    context: tuple[Turn, ...]
    chosen: str
    rejected: str


Conversation = tuple[Turn, ...]  # ends with an assistant turn


def read_trees(paths: Iterable[Path], filters: Filters = Filters()) -> list[Tree]:
    """Every tree of the files that passes `filters`, with only its accepted messages."""
    trees: list[Tree] = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        for item in Reader(path):
            if isinstance(item, Failure):
                raise DataError(str(item))
            tree = _tree(item, filters)
            if tree is not None:
                trees.append(tree)
    return trees


def _tree(read: ReadTree, filters: Filters) -> Tree | None:
    if filters.tree_states is not None and read.state is not None and read.state not in filters.tree_states:
        return None
    roots = [i for i, r in enumerate(read.nodes) if r.parent is None]
    if len(roots) != 1:
        raise DataError(f"{read.file}:{read.line}: a tree needs one root message, found {len(roots)}")
    children: dict[str, list[int]] = {}
    for index, r in enumerate(read.nodes):
        if r.parent is not None:
            children.setdefault(r.parent, []).append(index)

    def kept(index: int) -> Node | None:
        message = read.nodes[index].node
        accepted = message.review_result or (message.review_result is None and filters.include_unreviewed)
        if message.deleted or not accepted or message.role not in ("prompter", "assistant"):
            return None
        order = sorted(
            children.get(message.message_id, []),
            key=lambda i: (read.nodes[i].node.rank is None, read.nodes[i].node.rank or 0, i),
        )
        below = [node for node in map(kept, order) if node is not None]
        return Node(message.message_id, message.role, message.text, message.rank, below)

    root_message = read.nodes[roots[0]].node
    if filters.langs is not None and root_message.lang not in filters.langs:
        return None
    root = kept(roots[0])
    if root is None or root.role != "prompter":
        return None
    return Tree(root_message.message_tree_id or root_message.message_id, root_message.lang, root)


def _turn(node: Node) -> Turn:
    return Turn("user" if node.role == "prompter" else "assistant", node.text)


def _walk(tree: Tree, all_paths: bool) -> Iterator[list[Node]]:
    """Every root-to-node path, depth first; only the best-ranked child at each step unless `all_paths`."""
    stack: list[list[Node]] = [[tree.root]]
    while stack:
        path = stack.pop()
        yield path
        below = path[-1].children if all_paths else path[-1].children[:1]
        stack.extend([*path, child] for child in reversed(below))


def conversations(trees: Iterable[Tree], all_paths: bool = False) -> list[Conversation]:
    """Threads that end in an assistant reply: along the best-ranked path, or every path."""
    return [
        tuple(map(_turn, path))
        for tree in trees
        for path in _walk(tree, all_paths)
        if path[-1].role == "assistant"
    ]


def pairs(trees: Iterable[Tree]) -> list[Pair]:
    """Preference pairs from the ranks of sibling assistant replies (every better/worse combination)."""
    found: list[Pair] = []
    for tree in trees:
        for path in _walk(tree, all_paths=True):
            ranked = [c for c in path[-1].children if c.role == "assistant" and c.rank is not None]
            context = tuple(map(_turn, path))
            found.extend(
                Pair(context, better.text, worse.text)
                for i, better in enumerate(ranked)
                for worse in ranked[i + 1 :]
                if better.rank is not None and worse.rank is not None and better.rank < worse.rank
            )
    return found


def prompts(trees: Iterable[Tree]) -> list[tuple[Turn, ...]]:
    """Distinct threads ending in a prompter message with an accepted assistant reply (for PPO and eval)."""
    seen: dict[tuple[Turn, ...], None] = {}
    for conversation in conversations(trees):
        seen.setdefault(conversation[:-1])
    return list(seen)


def in_validation(tree_id: str, fraction: float, seed: int) -> bool:
    """Whether a tree is held out: a hash of the seed and the tree id, so a tree never straddles the split."""
    digest = hashlib.sha256(f"{seed}:{tree_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split(trees: list[Tree], fraction: float, seed: int) -> tuple[list[Tree], list[Tree]]:
    """(train, validation) by tree."""
    if not 0 <= fraction < 1:
        raise DataError(f"the validation fraction must be in [0, 1), not {fraction}")
    held = [in_validation(tree.id, fraction, seed) for tree in trees]
    return [t for t, h in zip(trees, held, strict=True) if not h], [
        t for t, h in zip(trees, held, strict=True) if h
    ]


class PromptFormat(enum.StrEnum):
    """How a thread becomes text: the Open-Assistant special tokens, or the tokenizer's chat template."""

    oasst = "oasst"
    chat_template = "chat-template"


# The Open-Assistant format as a chat template, so that any server applying the template matches training.
OASST_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}<|system|>{% elif m['role'] == 'user' %}<|prompter|>"
    "{% else %}<|assistant|>{% endif %}{{ m['content'] }}<|endoftext|>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


class Formatter:
    """Renders threads as the prompt a model continues and the completion it should write."""

    def __init__(self, format: PromptFormat, tokenizer: Any = None) -> None:
        if format is PromptFormat.chat_template and not getattr(tokenizer, "chat_template", None):
            raise DataError("the tokenizer has no chat template: use the oasst prompt format")
        self.format = format
        self.tokenizer = tokenizer

    def _template(self, turns: Iterable[Turn], generation: bool) -> str:
        messages = [{"role": t.role, "content": t.content} for t in turns]
        text: str = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation
        )
        return text

    def prompt(self, context: Iterable[Turn]) -> str:
        """The thread up to the point where the assistant starts writing."""
        if self.format is PromptFormat.oasst:
            return oasst_text(list(context)) + ASSISTANT
        return self._template(context, generation=True)

    def completion(self, context: tuple[Turn, ...], reply: str) -> str:
        """The reply with the end-of-turn marker that follows it."""
        if self.format is PromptFormat.oasst:
            return reply + END_OF_TEXT
        prompt = self._template(context, generation=True)
        full = self._template((*context, Turn("assistant", reply)), generation=False)
        if not full.startswith(prompt):
            raise DataError("the chat template does not render a reply as a continuation of its prompt")
        return full[len(prompt) :]

    def sft_records(self, conversations: Iterable[Conversation]) -> list[dict[str, str]]:
        return [
            {"prompt": self.prompt(c[:-1]), "completion": self.completion(c[:-1], c[-1].content)}
            for c in conversations
        ]

    def preference_records(self, pairs: Iterable[Pair]) -> list[dict[str, str]]:
        return [
            {
                "prompt": self.prompt(p.context),
                "chosen": self.completion(p.context, p.chosen),
                "rejected": self.completion(p.context, p.rejected),
            }
            for p in pairs
        ]


@dataclass(frozen=True)
class ExtraDataset:
    """An instruction dataset mixed into SFT: each example counted `weight` times (0.5: half of them)."""

    path: Path
    weight: float = 1.0

    @classmethod
    def parse(cls, spec: str) -> ExtraDataset:
        """`PATH` or `PATH:WEIGHT`."""
        path, _, weight = spec.rpartition(":")
        if not path or not weight.replace(".", "", 1).isdigit():
            return cls(Path(spec))
        return cls(Path(path), float(weight))


_ROLES = {"system": "system", "user": "user", "prompter": "user", "assistant": "assistant"}


def _instruction(where: str, obj: Any) -> Conversation:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: not a JSON object")
    if "messages" in obj:
        messages = obj["messages"]
        if not isinstance(messages, list) or not messages:
            raise DataError(f"{where}: messages must be a non-empty list")
        turns = []
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if role not in _ROLES or not isinstance(content, str):
                raise DataError(f"{where}: messages.{i} needs a role (system, user, assistant) and a content")
            turns.append(Turn(_ROLES[role], content))  # type: ignore[arg-type]
        if turns[-1].role != "assistant":
            raise DataError(f"{where}: the last message must be the assistant's")
        return tuple(turns)
    if isinstance(obj.get("prompt"), str) and isinstance(obj.get("response"), str):
        system = [Turn("system", obj["system"])] if isinstance(obj.get("system"), str) else []
        return (*system, Turn("user", obj["prompt"]), Turn("assistant", obj["response"]))
    raise DataError(f"{where}: expected prompt and response strings, or a messages list")


def read_instructions(path: Path) -> list[Conversation]:
    """A jsonl or jsonl.gz file of {prompt, response[, system]} or {messages: [{role, content}]} lines."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    compressed = path.read_bytes()[:2] == b"\x1f\x8b"
    found: list[Conversation] = []
    with gzip.open(path, "rt", encoding="utf-8") if compressed else path.open(encoding="utf-8") as lines:
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as error:
                raise DataError(f"{path}:{lineno}: invalid JSON: {error}") from None
            found.append(_instruction(f"{path}:{lineno}", obj))
    return found


def mix(base: list[Conversation], extras: Iterable[ExtraDataset], seed: int) -> list[Conversation]:
    """`base` plus each extra dataset repeated by its weight (the fraction sampled), shuffled with `seed`."""
    rng = random.Random(seed)
    mixed = list(base)
    for extra in extras:
        examples = read_instructions(extra.path)
        whole, fraction = divmod(extra.weight, 1)
        mixed.extend(examples * int(whole))
        mixed.extend(rng.sample(examples, round(fraction * len(examples))))
    rng.shuffle(mixed)
    return mixed
