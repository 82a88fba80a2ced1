"""The oasst_data export format (spec 6.2-6.3): message trees, message nodes, labels and events.

Field order is the serialized key order observed upstream; writers leave out every field that is None.
The same models read files back, including the Hugging Face flat layout (emojis and labels as columns).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# Limits of what a file may carry; the database columns set most of them.
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
MAX_TEXT_LENGTH = 100_000
MAX_REPLIES = 10_000


class _Export(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LabelAvgValue(_Export):
    """A label's mean over every text-label row of a message, and how many rows carry it."""

    value: float | None = None
    count: int = Field(ge=0)


LabelValues = dict[Annotated[str, StringConstraints(max_length=128)], LabelAvgValue]


class ExportMessageEvent(_Export):
    type: str
    user_id: UserId | None = None


class ExportMessageEventEmoji(ExportMessageEvent):
    type: Literal["emoji"] = "emoji"
    emoji: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class ExportMessageEventRating(ExportMessageEvent):
    type: Literal["rating"] = "rating"
    rating: str | int | float


class ExportMessageEventRanking(ExportMessageEvent):
    """A ranking of a parent's replies; it sits on the parent node."""

    type: Literal["ranking"] = "ranking"
    ranking: list[int] = Field(max_length=MAX_REPLIES)
    ranked_message_ids: list[MessageId] = Field(max_length=MAX_REPLIES)
    ranking_parent_id: MessageId | None = None
    message_tree_id: MessageId | None = None
    not_rankable: bool | None = None


class ExportMessageEventReport(ExportMessageEvent):
    type: Literal["report"] = "report"
    report_type: str
    reason: Annotated[str, StringConstraints(max_length=4096)]


class ExportMessageEventScore(ExportMessageEvent):
    type: Literal["score"] = "score"
    score: float = Field(ge=-1, le=1)


class DetoxifyRating(_Export):
    toxicity: float
    severe_toxicity: float
    obscene: float
    identity_attack: float
    insult: float
    threat: float
    sexual_explicit: float


class ExportMessageNode(_Export):
    """One message; in a tree its replies nest inside it."""

    message_id: MessageId
    parent_id: MessageId | None = None
    user_id: UserId | None = None
    created_date: datetime | None = None
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)]
    role: Annotated[str, StringConstraints(max_length=128)]
    lang: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    review_count: int | None = Field(None, ge=0)
    review_result: bool | None = None
    deleted: bool | None = None
    rank: int | None = Field(None, ge=0)
    synthetic: bool | None = None
    model_name: Annotated[str, StringConstraints(max_length=1024)] | None = None
    emojis: dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], int] | None = None
    replies: list[ExportMessageNode] | None = Field(None, max_length=MAX_REPLIES)
    labels: LabelValues | None = None
    events: dict[str, list[dict[str, Any]]] | None = None
    detoxify: DetoxifyRating | None = None
    # Only in flattened files (the Hugging Face layout): the tree each message belongs to.
    message_tree_id: MessageId | None = None
    tree_state: Annotated[str, StringConstraints(max_length=128)] | None = None

    @field_validator("emojis", mode="before")
    @classmethod
    def _emoji_columns(cls, value: Any) -> Any:
        """The Hugging Face layout stores emojis as {name: [...], count: [...]}."""
        if isinstance(value, dict) and set(value) == {"name", "count"} and isinstance(value["name"], list):
            if len(value["name"]) != len(value["count"]):
                raise ValueError("emojis: name and count differ in length")
            return dict(zip(value["name"], value["count"], strict=True))
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _label_columns(cls, value: Any) -> Any:
        """The Hugging Face layout stores labels as {name: [...], value: [...], count: [...]}."""
        if (
            isinstance(value, dict)
            and set(value) == {"name", "value", "count"}
            and isinstance(value["name"], list)
        ):
            names, values, counts = value["name"], value["value"], value["count"]
            if not len(names) == len(values) == len(counts):
                raise ValueError("labels: name, value and count differ in length")
            return {n: {"value": v, "count": c} for n, v, c in zip(names, values, counts, strict=True)}
        return value


class ExportMessageTree(_Export):
    """One conversation tree: its id (the prompt's id unless anonymized), state and prompt."""

    message_tree_id: MessageId
    tree_state: Annotated[str, StringConstraints(max_length=128)] | None = None
    prompt: ExportMessageNode | None = None
    origin: Annotated[str, StringConstraints(max_length=1024)] | None = None


# The keys export writes, in order (the models above list them the same way).
NODE_KEYS = tuple(ExportMessageNode.model_fields)
TREE_KEYS = tuple(ExportMessageTree.model_fields)
