"""The label catalogue (names, widgets, texts), which labels fit which message, free labels and reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.labels import repository
from oasst.collection.messages import repository as messages_repository
from oasst.collection.messages import service as messages_service
from oasst.collection.users import service as users_service
from oasst.config import Settings, TreeManagerConfig
from oasst.db.base import utcnow
from oasst.db.models import ApiClient, Message, TextLabels, User
from oasst.protocol import collection as wire
from oasst.protocol.collection import EmojiCode, TextLabel

Widget = Literal["yes_no", "flag", "likert"]

_CATALOGUE: dict[str, tuple[Widget, str, str | None]] = {
    TextLabel.spam: ("yes_no", "Seems to be intentionally low-quality or irrelevant", None),
    TextLabel.fails_task: ("yes_no", "Fails to follow the correct instruction / task", None),
    TextLabel.lang_mismatch: (
        "flag",
        "Wrong Language",
        "The message is written in a language that differs from the currently selected language.",
    ),
    TextLabel.pii: ("flag", "Contains personal identifiable information (PII)", None),
    TextLabel.not_appropriate: ("flag", "Inappropriate", None),
    TextLabel.hate_speech: (
        "flag",
        "Content is abusive or threatening and expresses prejudice against a protected characteristic",
        "Prejudice refers to preconceived views not based on reason. Protected characteristics include "
        "gender, ethnicity, religion, sexual orientation, and similar characteristics.",
    ),
    TextLabel.sexual_content: ("flag", "Contains sexual content", None),
    TextLabel.moral_judgement: ("flag", "Expresses moral judgement", None),
    TextLabel.political_content: ("flag", "Expresses political views", None),
    TextLabel.quality: ("likert", "Overall subjective quality rating of the message", None),
    TextLabel.toxicity: ("likert", "Rude, abusive, profane or insulting content", None),
    TextLabel.humor: ("likert", "Humorous content including sarcasm", None),
    TextLabel.helpfulness: ("likert", "Helpfulness of the message", None),
    TextLabel.creativity: ("likert", "Creativity", None),
    TextLabel.violence: ("likert", "Violence/abuse/terrorism/self-harm", None),
}

REPORT_LABELS = [
    TextLabel.spam,
    TextLabel.not_appropriate,
    TextLabel.pii,
    TextLabel.hate_speech,
    TextLabel.sexual_content,
    TextLabel.moral_judgement,
    TextLabel.political_content,
    TextLabel.toxicity,
    TextLabel.violence,
    TextLabel.quality,
]


def describe(names: Iterable[str]) -> list[wire.LabelDescription]:
    """The `LabelDescription`s of `names`, in their order; names that are no `TextLabel` are left out."""
    result = []
    for name in names:
        entry = _CATALOGUE.get(name)
        if entry is None:
            continue
        widget, display_text, help_text = entry
        result.append(
            wire.LabelDescription(
                name=str(name),
                widget=widget,
                display_text=display_text,
                help_text=help_text,
            )
        )
    return result


def valid_label_names(message: Message, config: TreeManagerConfig) -> list[str]:
    """The configured labels for a prompt (root), an assistant reply or a prompter reply."""
    if message.parent_id is None:
        return list(config.labels_initial_prompt)
    if message.role == "assistant":
        return list(config.labels_assistant_reply)
    return list(config.labels_prompter_reply)


def all_labels() -> list[wire.LabelDescription]:
    """Every label a frontend may offer without a message: all but fails_task, in enum order."""
    return describe(label.value for label in TextLabel if label is not TextLabel.fails_task)


def report_labels() -> list[wire.LabelDescription]:
    return describe(label.value for label in REPORT_LABELS)


async def valid_labels(
    session: AsyncSession, message_id: uuid.UUID | None, config: TreeManagerConfig
) -> list[wire.LabelDescription]:
    """GET /text_labels/valid_labels: the set for one message (404/2001 if unknown), else the catalogue."""
    if message_id is None:
        return all_labels()
    message = await messages_service.get(session, message_id)
    return describe(valid_label_names(message, config))


async def store_free_labels(
    session: AsyncSession, client: ApiClient, user: User, body: wire.TextLabels
) -> None:
    """Labels given outside a task: one row per (message, user), replaced on repeat; a report red-flags.

    The caller has checked that `user` may act. An unknown message is 404/2001.
    """
    message = await messages_service.get(session, body.message_id)
    # The message row lock orders concurrent labels of one message, so a user never gets two free rows.
    await messages_repository.lock_emojis(session, message.id)
    if body.is_report:
        await messages_service.add_emoji(session, message, user, EmojiCode.red_flag.value, "add")
    labels = {label.value: value for label, value in body.labels.items()}
    row = await repository.free_labels(session, message.id, user.id)
    if row is None:
        session.add(
            TextLabels(
                user_id=user.id,
                created_date=utcnow(),
                api_client_id=client.id,
                text=body.text,
                message_id=message.id,
                labels=labels,
                task_id=None,
            )
        )
    else:
        row.labels = labels
        row.text = body.text
    await session.flush()


async def label(session: AsyncSession, client: ApiClient, settings: Settings, body: wire.TextLabels) -> None:
    """POST /text_labels/: the body's user (created if new, then gated) labels or reports a message."""
    user = await users_service.get_active(session, client, body.user, settings)
    await store_free_labels(session, client, user, body)
