"""Request and response bodies of the Parrot API. Requests are strict (a number is not a string) and ignore
unknown fields; NUL characters are removed from every text, as Parrot's clean_string does."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StringConstraints

MODEL_TYPES = ("text_completion", "chat_completion")
MAX_TEXT = 100_000  # characters of a message or prefix; the inference limit (message_max_length) applies too
MAX_BUDGET = 10**15


def clean_string(value: object) -> object:
    """Parrot's clean_string: drop NUL characters (PostgreSQL cannot store them)."""
    return value.replace("\x00", "") if isinstance(value, str) else value


_Clean = BeforeValidator(clean_string)
Name = Annotated[str, StringConstraints(min_length=1, max_length=80), _Clean]
UserName = Annotated[str, StringConstraints(max_length=1000), _Clean]
LongText = Annotated[str, StringConstraints(max_length=MAX_TEXT), _Clean]
Budget = Annotated[int, Field(ge=0, le=MAX_BUDGET)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Timestamp = Annotated[datetime, PlainSerializer(lambda value: value.strftime("%Y-%m-%d %H:%M:%S"))]


class StrictBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class AccountCreate(StrictBody):
    name: Name
    course: Name
    budget: Budget | None = None
    users: Annotated[list[Id], Field(max_length=10_000)] | None = None


class AccountUpdate(StrictBody):
    name: Name | None = None
    course: Name | None = None
    budget: Budget | None = None
    users: Annotated[list[Id], Field(max_length=10_000)] | None = None


class UserCreate(StrictBody):
    code: Name
    name: UserName | None = None
    account_id: Id | None = None


class ChatCreate(StrictBody):
    """`model` (an oasst addition) names a model the workers serve; None means the gateway's default."""

    name: Name
    model_type: Annotated[str, StringConstraints(max_length=80)] | None = None
    instruction_prefix: LongText | None = None
    user_prefix: LongText | None = None
    assistant_prefix: LongText | None = None
    model: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class ModelArgs(StrictBody):
    """Sampling of one call; the ranges (and their messages) are checked by the service."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    best_of: int | None = None


class MessageCreate(StrictBody):
    content: LongText
    instruction: LongText | None = None
    model_args: ModelArgs | None = None


# --- responses ----------------------------------------------------------------------------------------------


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserBrief(ReadModel):
    id: int
    name: str | None
    code: str
    account_id: int | None
    created_at: Timestamp
    updated_at: Timestamp | None


class AccountBrief(ReadModel):
    """An account without its users. `api_key` is set only in the answer that creates or rotates it."""

    id: int
    name: str
    api_key: str | None = None
    budget: int
    course: str
    usage: int
    active: bool
    created_at: Timestamp
    updated_at: Timestamp | None


class AccountRead(AccountBrief):
    users: list[UserBrief]


class UserRead(UserBrief):
    account: AccountBrief | None


class ChatRead(ReadModel):
    id: int
    name: str
    account_id: int
    model_type: str
    model: str | None
    instruction_prefix: str
    user_prefix: str
    assistant_prefix: str
    created_at: Timestamp
    updated_at: Timestamp | None


class MessageRead(ReadModel):
    id: int
    content: str
    role: Literal["system", "user", "assistant"]
    chat_id: int
    model_args: dict[str, Any]
    usage: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp | None


class AskRead(MessageRead):
    over_soft_limit: bool


class BudgetRead(BaseModel):
    usage: int
    limit: int


class UsageRow(BaseModel):
    """One account's charged calls on one UTC day."""

    account_id: int
    account: str
    course: str
    day: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    charged_tokens: int
