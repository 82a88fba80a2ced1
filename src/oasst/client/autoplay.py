"""Answers to tasks: interaction builders for frontends and the random player of `oasst contribute --auto`."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from uuid import UUID

from oasst.protocol.collection import (
    LABEL_TASK_TYPES,
    RANK_TASK_TYPES,
    AnyInteraction,
    AnyTask,
    AssistantReplyTask,
    InitialPromptTask,
    LabelAssistantReplyTask,
    LabelInitialPromptTask,
    LabelPrompterReplyTask,
    MessageRanking,
    PrompterReplyTask,
    RankAssistantRepliesTask,
    RankPrompterRepliesTask,
    TextLabel,
    TextLabels,
    TextReplyToMessage,
    User,
)

ReplyTask = InitialPromptTask | PrompterReplyTask | AssistantReplyTask
LabelTask = LabelInitialPromptTask | LabelAssistantReplyTask | LabelPrompterReplyTask
RankTask = RankPrompterRepliesTask | RankAssistantRepliesTask

VOCABULARY = (
    *("hello", "world", "foo", "bar", "tree", "leaf", "river", "stone", "cloud", "light", "quick", "slow"),
    *("bright", "quiet", "green", "blue", "answer", "question", "assistant", "garden", "window", "paper"),
    *("music", "number", "story", "reason", "simple", "careful", "kind", "useful"),
)
_ADJECTIVES = ("Brave", "Calm", "Eager", "Gentle", "Happy", "Jolly", "Keen", "Lively", "Swift")
_ANIMALS = ("Otter", "Badger", "Falcon", "Heron", "Lynx", "Marten", "Owl", "Panda", "Puffin", "Raven", "Wren")
LIKERT_LABELS = frozenset({"quality", "toxicity", "humor", "helpfulness", "creativity", "violence"})
_LIKERT_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)
# Upstream's auto_main clears these in 90% of label answers so that messages get accepted and trees grow.
_BLOCKING_LABELS = ("spam", "lang_mismatch")
_P_CLEAR_BLOCKING = 0.9
_TEXT_LIMIT = 4096


def frontend_message_id(task: AnyTask) -> str:
    """The frontend id bound to `task` on ack: the task's own id, already unique within the API client."""
    return str(task.id)


def random_uuid(rng: random.Random) -> str:
    """A version-4 uuid drawn from `rng`, so that seeded runs repeat."""
    return str(UUID(int=rng.getrandbits(128), version=4))


def random_text(rng: random.Random, words: int = 10) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(words))


def make_users(count: int, rng: random.Random, prefix: str = "autoplay") -> list[User]:
    """`count` simulated contributors with stable ids (`prefix-1`...) and generated display names."""
    return [
        User(
            id=f"{prefix}-{number}",
            display_name=f"{rng.choice(_ADJECTIVES)} {rng.choice(_ANIMALS)}",
            auth_method="local",
        )
        for number in range(1, count + 1)
    ]


def labelled_text(task: LabelTask) -> str:
    """The text under review: the last message of the conversation (or the deprecated text field)."""
    messages = task.conversation.messages
    if messages:
        return messages[-1].text
    if isinstance(task, LabelInitialPromptTask):
        return task.prompt or ""
    return task.reply or ""


def label_widget(task: LabelTask, name: str) -> str:
    """How a label is answered: "yes_no", "flag" or "likert" (from the task, else the upstream default)."""
    for description in task.labels or []:
        if description.name == name:
            return description.widget
    if name in LIKERT_LABELS:
        return "likert"
    return "yes_no" if name in ("spam", "fails_task") else "flag"


def labels_to_answer(task: LabelTask) -> list[str]:
    """The labels a task asks about: valid ones first, then any mandatory one not among them."""
    known = {label.value for label in TextLabel}
    names = dict.fromkeys([*task.valid_labels, *(task.mandatory_labels or [])])
    return [name for name in names if name in known]


def reply(
    task: ReplyTask, user: User, text: str, user_message_id: str, lang: str | None = None
) -> TextReplyToMessage:
    return TextReplyToMessage(
        message_id=frontend_message_id(task),
        user_message_id=user_message_id,
        text=text,
        lang=lang,
        user=user,
    )


def rank(task: RankTask, user: User, ranking: Sequence[int]) -> MessageRanking:
    """A ranking: indexes into `task.reply_messages`, best first."""
    return MessageRanking(message_id=frontend_message_id(task), ranking=list(ranking), user=user)


def label(task: LabelTask, user: User, values: Mapping[str, float]) -> TextLabels:
    return TextLabels(
        message_id=task.message_id,
        task_id=task.id,
        text=labelled_text(task)[:_TEXT_LIMIT],
        labels={TextLabel(name): value for name, value in values.items()},
        user=user,
    )


def random_labels(task: LabelTask, rng: random.Random) -> dict[str, float]:
    values: dict[str, float] = {}
    for name in labels_to_answer(task):
        if label_widget(task, name) == "likert":
            values[name] = rng.choice(_LIKERT_VALUES)
        else:
            values[name] = float(rng.random() < 0.5)
    if rng.random() < _P_CLEAR_BLOCKING:
        for name in _BLOCKING_LABELS:
            if name in values:
                values[name] = 0.0
    return values


def answer(task: AnyTask, user: User, rng: random.Random, lang: str | None = None) -> AnyInteraction:
    """A random answer like upstream's auto_main: vocabulary text, random label values, random ranking."""
    if isinstance(task, ReplyTask):
        return reply(task, user, random_text(rng), random_uuid(rng), lang)
    if isinstance(task, RANK_TASK_TYPES):
        count = len(task.reply_messages) or len(task.replies)
        return rank(task, user, rng.sample(range(count), count))
    if isinstance(task, LABEL_TASK_TYPES):
        return label(task, user, random_labels(task, rng))
    raise ValueError(f"a {task.type} task takes no answer")
