"""Wire models of the Open-Assistant data-collection API (/api/v1), field for field and in upstream order."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

# Frontend ids and names are free text upstream; we bound them so nothing unbounded reaches the database.
FrontendId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
DisplayName = Annotated[str, StringConstraints(max_length=256)]
# Upstream writes datetimes with an explicit offset (`+00:00`), not pydantic v2's `Z`.
Timestamp = Annotated[
    datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json")
]


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are ignored, as upstream's pydantic v1 did."""

    model_config = ConfigDict(extra="ignore")


Item = TypeVar("Item")


class CursorPage(WireModel, Generic[Item]):
    """One page of a cursor listing with the cursors of its neighbours (None at either end)."""

    prev: str | None = None
    next: str | None = None
    sort_key: str
    items: list[Item]
    order: Literal["asc", "desc"]


class TaskRequestType(enum.StrEnum):
    random = "random"
    summarize_story = "summarize_story"
    rate_summary = "rate_summary"
    initial_prompt = "initial_prompt"
    prompter_reply = "prompter_reply"
    assistant_reply = "assistant_reply"
    rank_initial_prompts = "rank_initial_prompts"
    rank_prompter_replies = "rank_prompter_replies"
    rank_assistant_replies = "rank_assistant_replies"
    label_initial_prompt = "label_initial_prompt"
    label_assistant_reply = "label_assistant_reply"
    label_prompter_reply = "label_prompter_reply"


class TextLabel(enum.StrEnum):
    spam = "spam"
    fails_task = "fails_task"
    lang_mismatch = "lang_mismatch"
    pii = "pii"
    not_appropriate = "not_appropriate"
    hate_speech = "hate_speech"
    sexual_content = "sexual_content"
    moral_judgement = "moral_judgement"
    political_content = "political_content"
    quality = "quality"
    toxicity = "toxicity"
    humor = "humor"
    helpfulness = "helpfulness"
    creativity = "creativity"
    violence = "violence"


class EmojiCode(enum.StrEnum):
    thumbs_up = "+1"
    thumbs_down = "-1"
    red_flag = "red_flag"
    hundred = "100"
    rofl = "rofl"
    clap = "clap"
    diamond = "diamond"
    heart_eyes = "heart_eyes"
    disappointed = "disappointed"
    poop = "poop"
    skull = "skull"
    skip_reply = "_skip_reply"
    skip_ranking = "_skip_ranking"
    skip_labeling = "_skip_labeling"


class EmojiOp(enum.StrEnum):
    toggle = "toggle"
    add = "add"
    remove = "remove"


class TreeState(enum.StrEnum):
    initial_prompt_review = "initial_prompt_review"
    prompt_lottery_waiting = "prompt_lottery_waiting"
    growing = "growing"
    ranking = "ranking"
    ready_for_scoring = "ready_for_scoring"
    ready_for_export = "ready_for_export"
    scoring_failed = "scoring_failed"
    aborted_low_grade = "aborted_low_grade"
    halted_by_moderator = "halted_by_moderator"
    backlog_ranking = "backlog_ranking"


TERMINAL_STATES = frozenset(
    {
        TreeState.ready_for_export,
        TreeState.aborted_low_grade,
        TreeState.scoring_failed,
        TreeState.halted_by_moderator,
        TreeState.backlog_ranking,
        TreeState.prompt_lottery_waiting,
    }
)


class User(WireModel):
    id: FrontendId
    display_name: DisplayName
    auth_method: Literal["discord", "google", "local", "system"]


class FrontEndUser(User):
    user_id: UUID
    enabled: bool
    deleted: bool
    notes: str
    created_date: Timestamp | None = None
    show_on_leaderboard: bool
    streak_days: int | None = None
    streak_last_day_date: Timestamp | None = None
    last_activity_date: Timestamp | None = None
    tos_acceptance_date: Timestamp | None = None


class CreateFrontendUserRequest(User):
    show_on_leaderboard: bool = True
    enabled: bool = True
    tos_acceptance: bool | None = None
    notes: Annotated[str, StringConstraints(max_length=1024)] | None = None


class ConversationMessage(WireModel):
    id: UUID | None = None
    user_id: UUID | None = None
    frontend_message_id: str | None = None
    text: str
    lang: str | None = None
    is_assistant: bool
    emojis: dict[str, int] | None = None
    user_emojis: list[str] | None = None
    user_is_author: bool | None = None
    synthetic: bool | None = None


class Conversation(WireModel):
    messages: list[ConversationMessage] = []


class Message(ConversationMessage):
    parent_id: UUID | None = None
    created_date: Timestamp | None = None
    review_result: bool | None = None
    review_count: int | None = None
    deleted: bool | None = None
    edited: bool | None = None
    model_name: str | None = None
    message_tree_id: UUID | None = None
    ranking_count: int | None = None
    rank: int | None = None
    user: FrontEndUser | None = None


class MessageTree(WireModel):
    id: UUID
    messages: list[Message] = []


class MessagePage(CursorPage[Message]):
    pass


class MessageTreeStateResponse(WireModel):
    message_tree_id: UUID
    state: TreeState
    goal_tree_size: int
    max_depth: int
    max_children_count: int
    active: bool
    origin: str | None = None


class LabelDescription(WireModel):
    name: str
    widget: Literal["yes_no", "flag", "likert"]
    display_text: str
    help_text: str | None = None


class LabelTaskMode(enum.StrEnum):
    simple = "simple"
    full = "full"


class LabelTaskDisposition(enum.StrEnum):
    quality = "quality"
    spam = "spam"


# --- tasks (responses of POST /tasks/) ----------------------------------------------------------------


class _Task(WireModel):
    id: UUID = Field(default_factory=uuid4)


class TaskDone(_Task):
    type: Literal["task_done"] = "task_done"


class InitialPromptTask(WireModel):
    hint: str | None = None
    id: UUID = Field(default_factory=uuid4)
    type: Literal["initial_prompt"] = "initial_prompt"


class PrompterReplyTask(WireModel):
    hint: str | None = None
    id: UUID = Field(default_factory=uuid4)
    type: Literal["prompter_reply"] = "prompter_reply"
    conversation: Conversation


class AssistantReplyTask(_Task):
    type: Literal["assistant_reply"] = "assistant_reply"
    conversation: Conversation


class _RankRepliesTask(_Task):
    conversation: Conversation
    replies: list[str]
    reply_messages: list[ConversationMessage]
    message_tree_id: UUID
    ranking_parent_id: UUID
    reveal_synthetic: bool


class RankPrompterRepliesTask(_RankRepliesTask):
    type: Literal["rank_prompter_replies"] = "rank_prompter_replies"


class RankAssistantRepliesTask(_RankRepliesTask):
    type: Literal["rank_assistant_replies"] = "rank_assistant_replies"


class _LabelTask(_Task):
    message_id: UUID
    valid_labels: list[str]
    mandatory_labels: list[str] | None = None
    mode: LabelTaskMode | None = None
    disposition: LabelTaskDisposition | None = None
    labels: list[LabelDescription] | None = None
    conversation: Conversation


class LabelInitialPromptTask(_LabelTask):
    type: Literal["label_initial_prompt"] = "label_initial_prompt"
    prompt: str | None = None


class LabelAssistantReplyTask(_LabelTask):
    type: Literal["label_assistant_reply"] = "label_assistant_reply"
    reply: str | None = None


class LabelPrompterReplyTask(_LabelTask):
    type: Literal["label_prompter_reply"] = "label_prompter_reply"
    reply: str | None = None


AnyTask = Annotated[
    TaskDone
    | InitialPromptTask
    | PrompterReplyTask
    | AssistantReplyTask
    | RankPrompterRepliesTask
    | RankAssistantRepliesTask
    | LabelInitialPromptTask
    | LabelAssistantReplyTask
    | LabelPrompterReplyTask,
    Field(discriminator="type"),
]

LABEL_TASK_TYPES = (LabelInitialPromptTask, LabelAssistantReplyTask, LabelPrompterReplyTask)
RANK_TASK_TYPES = (RankPrompterRepliesTask, RankAssistantRepliesTask)


# --- requests -----------------------------------------------------------------------------------------


class TaskRequest(WireModel):
    type: TaskRequestType = TaskRequestType.random
    user: User | None = None
    collective: bool = False
    lang: Annotated[str, StringConstraints(min_length=2, max_length=32)] | None = None


class TaskAck(WireModel):
    message_id: FrontendId


class TaskNAck(WireModel):
    reason: Annotated[str, StringConstraints(max_length=512)] | None = None


class TaskClose(WireModel):
    message_id: FrontendId


class _Interaction(WireModel):
    user: User


class TextReplyToMessage(_Interaction):
    type: Literal["text_reply_to_message"] = "text_reply_to_message"
    message_id: FrontendId
    user_message_id: FrontendId
    # Upstream strips and requires one character; the configurable size limit is checked by the service.
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100_000)]
    lang: Annotated[str, StringConstraints(min_length=2, max_length=32)] | None = None


class MessageRating(_Interaction):
    type: Literal["message_rating"] = "message_rating"
    message_id: FrontendId
    rating: Annotated[int, Field(gt=0)]


class MessageRanking(_Interaction):
    type: Literal["message_ranking"] = "message_ranking"
    message_id: FrontendId
    ranking: Annotated[list[int], Field(min_length=1, max_length=100)]
    not_rankable: bool | None = False


class TextLabels(_Interaction):
    type: Literal["text_labels"] = "text_labels"
    text: Annotated[str, StringConstraints(max_length=4096)]
    labels: dict[TextLabel, Annotated[float, Field(ge=0, le=1)]]
    message_id: UUID
    task_id: UUID | None = None
    is_report: bool | None = None


AnyInteraction = Annotated[
    TextReplyToMessage | MessageRating | MessageRanking | TextLabels,
    Field(discriminator="type"),
]


class MessageEmojiRequest(WireModel):
    user: User
    op: EmojiOp = EmojiOp.toggle
    emoji: EmojiCode


class ErrorResponse(WireModel):
    """The body of every domain error: `{"error_code": int, "message": str}`."""

    error_code: int
    message: str


class ErrorCode(enum.IntEnum):
    """Open-Assistant's error codes (aliases that upstream gives the same number are left out)."""

    GENERIC_ERROR = 0
    API_CLIENT_NOT_AUTHORIZED = 2
    ROOT_TOKEN_NOT_AUTHORIZED = 3
    DATABASE_MAX_RETRIES_EXHAUSTED = 4
    SORT_KEY_UNSUPPORTED = 100
    INVALID_CURSOR_VALUE = 101
    TOO_MANY_REQUESTS = 429
    SERVER_ERROR0 = 500
    TASK_ACK_FAILED = 1001
    TASK_NACK_FAILED = 1002
    TASK_INVALID_RESPONSE_TYPE = 1003
    TASK_INTERACTION_REQUEST_FAILED = 1004
    TASK_GENERATION_FAILED = 1005
    TASK_REQUESTED_TYPE_NOT_AVAILABLE = 1006
    TASK_AVAILABILITY_QUERY_FAILED = 1007
    TASK_MESSAGE_TOO_LONG = 1008
    TASK_MESSAGE_DUPLICATED = 1009
    TASK_MESSAGE_TEXT_EMPTY = 1010
    TASK_MESSAGE_DUPLICATE_REPLY = 1011
    TASK_TOO_MANY_PENDING = 1012
    INVALID_FRONTEND_MESSAGE_ID = 2000
    MESSAGE_NOT_FOUND = 2001
    RATING_OUT_OF_RANGE = 2002
    INVALID_RANKING_VALUE = 2003
    INVALID_TASK_TYPE = 2004
    INVALID_MESSAGE = 2008
    BROKEN_CONVERSATION = 2009
    TREE_IN_ABORTED_STATE = 2010
    CORRUPT_RANKING_RESULT = 2011
    AUTH_AND_USERNAME_REQUIRED = 2012
    TEXT_LABELS_WRONG_MESSAGE_ID = 2050
    TEXT_LABELS_INVALID_LABEL = 2051
    TEXT_LABELS_MANDATORY_LABEL_MISSING = 2052
    TEXT_LABELS_NO_SELF_LABELING = 2053
    TASK_NOT_FOUND = 2100
    TASK_EXPIRED = 2101
    TASK_PAYLOAD_TYPE_MISMATCH = 2102
    TASK_ALREADY_UPDATED = 2103
    TASK_NOT_ACK = 2104
    TASK_ALREADY_DONE = 2105
    TASK_NOT_ASSIGNED_TO_USER = 2106
    TASK_UNEXPECTED_PAYLOAD_TYPE_ = 2107
    USER_NOT_SPECIFIED = 4000
    USER_DISABLED = 4001
    USER_NOT_FOUND = 4002
    USER_HAS_NOT_ACCEPTED_TOS = 4003
    EMOJI_OP_UNSUPPORTED = 5000
    CACHED_STATS_NOT_AVAILABLE = 6000
    # oasst's own, outside upstream's ranges: local accounts.
    ACCOUNT_USERNAME_TAKEN = 7000
    ACCOUNT_USERNAME_INVALID = 7001
    ACCOUNT_PASSWORD_INVALID = 7002
    ACCOUNT_ROLE_INVALID = 7003
    ACCOUNT_NOT_FOUND = 7004
    ACCOUNT_DISPLAY_NAME_INVALID = 7005
