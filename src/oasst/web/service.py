"""What the pages do, in-process on the collection services: the web UI is a trusted frontend of the core.

A signed-in person contributes as the frontend user (`local`, account id) of the built-in API client; a
development sign-in as (`local`, `dev:NAME`); an OAuth sign-in as (`discord` or `google`, account id) or, the
collection protocol having no `github`, as (`local`, `github:ID`). Services flush; the request's transaction
commits.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.accounts import service as accounts
from oasst.collection.admin import service as admin_service
from oasst.collection.admin.schemas import FlaggedMessageResponse
from oasst.collection.auth import service as auth_service
from oasst.collection.deps import FrontendIdentity
from oasst.collection.messages import service as messages_service
from oasst.collection.messages.schemas import MessageFilter, MessageListingParams
from oasst.collection.stats import service as stats_service
from oasst.collection.stats.schemas import BoardParams, LeaderboardStats, UserScore, UserStatsTimeFrame
from oasst.collection.tasks import repository as tasks_repository
from oasst.collection.tasks import service as tasks_service
from oasst.collection.users import service as users_service
from oasst.config import Settings
from oasst.db.base import utcnow
from oasst.db.models import ApiClient, InferenceUser, LocalAccount, Message, OAuthAccount, Task, User
from oasst.errors import OasstError
from oasst.gateway import service as gateway_service
from oasst.inference import service as inference
from oasst.inference.queue import WorkQueue
from oasst.inference.schemas import PRESETS
from oasst.inference.schemas import not_found as inference_not_found
from oasst.inference.service import QueuedMessage
from oasst.protocol import collection as wire
from oasst.protocol.collection import ErrorCode
from oasst.protocol.inference import (
    ChatRead,
    ChatUpdateRequest,
    CreateAssistantMessageRequest,
    CreatePrompterMessageRequest,
    MessageRead,
    MessageState,
    ModelConfig,
    SamplingParameters,
)
from oasst.web import repository
from oasst.web.i18n import N_
from oasst.web.sessions import SignedIn, SignInKind

WEB_FRONTEND_TYPE = "oasst-web"
LIKERT_STEPS = 4  # a likert label is chosen on 0..4 and stored as 0..1
REQUESTABLE = (
    "random",
    "initial_prompt",
    "assistant_reply",
    "prompter_reply",
    "label_initial_prompt",
    "label_assistant_reply",
    "label_prompter_reply",
    "rank_assistant_replies",
    "rank_prompter_replies",
)
_TASK = TypeAdapter(wire.AnyTask)


def bad_input(message: str) -> OasstError:
    return OasstError(message, ErrorCode.GENERIC_ERROR, 400)


# --- who is acting -----------------------------------------------------------------------------------------


async def ensure_client(session: AsyncSession, secret: str) -> ApiClient:
    """The trusted built-in API client the web UI acts as, created on first start.

    Its key is derived from the session secret, so server processes starting together (sharing the secret,
    as they must) create one client between them, never one each.
    """
    client = await repository.client_by_frontend_type(session, WEB_FRONTEND_TYPE)
    if client is None:
        key = hmac.new(secret.encode(), b"oasst web ui api client", hashlib.sha256).hexdigest()
        await repository.add_client_once(
            session,
            {
                "id": uuid.uuid4(),
                "api_key_hash": auth_service.hash_key(key),
                "description": "Web UI (built-in)",
                "trusted": True,
                "enabled": True,
                "frontend_type": WEB_FRONTEND_TYPE,
            },
        )
        client = await repository.client_by_frontend_type(session, WEB_FRONTEND_TYPE)
        assert client is not None
    return client


def wire_user(user: SignedIn) -> wire.User:
    """Who the person is to the collection core (see the module's docstring)."""
    if user.kind == "discord" or user.kind == "google":
        return wire.User(id=user.id, display_name=user.name, auth_method=user.kind)
    username = user.id if user.kind == "local" else f"{user.kind}:{user.id}"
    return wire.User(id=username, display_name=user.name, auth_method="local")


def sign_in_of(client: ApiClient, row: User) -> tuple[str, str] | None:
    """The sign-in (kind, id) that contributes as the frontend user `row` (wire_user backwards); None for a
    user of another API client."""
    if row.api_client_id != client.id:
        return None
    if row.auth_method != "local":
        return row.auth_method, row.username
    prefix, colon, rest = row.username.partition(":")
    if colon and (prefix == "github" or prefix == "dev"):
        return prefix, rest
    return "local", row.username


async def contributor(session: AsyncSession, client: ApiClient, user: SignedIn) -> User:
    """The frontend user row of a signed-in person (created on first sight)."""
    return await users_service.get_or_create(session, client, wire_user(user))


async def needs_tos(session: AsyncSession, client: ApiClient, settings: Settings, user: SignedIn) -> bool:
    """Whether the person must accept the terms before contributing."""
    if settings.debug_ignore_tos_acceptance:
        return False
    return (await contributor(session, client, user)).tos_acceptance_date is None


async def accept_tos(session: AsyncSession, client: ApiClient, user: SignedIn) -> None:
    row = await contributor(session, client, user)
    await users_service.update(session, row.id, tos_acceptance=True)


def _signed_in(account: LocalAccount) -> SignedIn:
    return SignedIn("local", str(account.id), account.display_name, account.role)


async def sign_in(session: AsyncSession, username: str, password: str) -> SignedIn | None:
    account = await accounts.authenticate(session, username, password)
    return _signed_in(account) if account is not None else None


async def register(session: AsyncSession, username: str, password: str, display_name: str) -> SignedIn:
    return _signed_in(await accounts.register(session, username, password, display_name or None))


def configured_role(settings: Settings, provider: str, account_id: str) -> str:
    """The role the settings give an OAuth account at least (ADMIN_USERS, MODERATOR_USERS), else "user"."""
    return settings.web_roles.get((provider, account_id), "user")


def oauth_role(settings: Settings, account: OAuthAccount) -> str:
    """The role an OAuth account has: the one given here, or the configured one if that is higher."""
    configured = configured_role(settings, account.provider, account.account_id)
    return max(account.role, configured, key=accounts.ROLES.index)


async def oauth_sign_in(
    session: AsyncSession, settings: Settings, kind: SignInKind, account_id: str, name: str
) -> SignedIn:
    """A person the provider `kind` confirmed: their OAuth account (made at the first sign-in, with the role
    "user") keeps the provider's name for them and the time."""
    account = await repository.oauth_account(session, kind, account_id)
    if account is None:
        values = {"provider": kind, "account_id": account_id, "display_name": name}
        await repository.add_oauth_account_once(session, values)
        account = await repository.oauth_account(session, kind, account_id)
        assert account is not None
    account.display_name, account.signed_in_at = name, utcnow()
    await session.flush()
    return SignedIn(kind, account_id, name, oauth_role(settings, account))


async def refresh(
    session: AsyncSession, settings: Settings, user: SignedIn, *, dev_allowed: bool
) -> SignedIn | None:
    """The person as they are now (the role and name of a local or OAuth account), or None if they may no
    longer be signed in: the account was removed or disabled, or the development sign-in was turned off."""
    if user.kind == "dev":
        return user if dev_allowed else None
    if user.kind != "local":
        oauth = await repository.oauth_account(session, user.kind, user.id)
        if oauth is None:  # deleted in another browser: no role but the configured one
            return SignedIn(user.kind, user.id, user.name, configured_role(settings, user.kind, user.id))
        return SignedIn(user.kind, user.id, oauth.display_name, oauth_role(settings, oauth))
    try:
        account = await accounts.get_by_id(session, uuid.UUID(user.id))
    except ValueError:
        return None
    if account is None or not account.enabled:
        return None
    return _signed_in(account)


# --- the task loop -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenTask:
    """A handed-out, acked task of the person, with its payload parsed."""

    row: Task
    task: tasks_service.AnyTaskModel

    @property
    def kind(self) -> str:
        return str(self.task.type)

    @property
    def lang(self) -> str:
        return self.row.lang or "en"


async def availability(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    rng: random.Random,
    user: SignedIn,
    lang: str,
) -> dict[str, int]:
    return await tasks_service.availability(session, client, settings, wire_user(user), lang, rng)


async def next_task(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    rng: random.Random,
    user: SignedIn,
    kind: str,
    lang: str,
) -> uuid.UUID:
    """Hand out a task of `kind` (or any, for random) and ack it at once, as the website does; its id."""
    if kind not in REQUESTABLE:
        raise bad_input(f"Unknown task type {kind!r}")
    request = wire.TaskRequest(type=wire.TaskRequestType(kind), user=wire_user(user), lang=lang)
    task = await tasks_service.request_task(session, client, settings, request, rng)
    await tasks_service.ack(session, client, task.id, f"web-{task.id}")
    return task.id


async def open_task(session: AsyncSession, client: ApiClient, user: SignedIn, task_id: uuid.UUID) -> OpenTask:
    """The person's task `task_id` if it still waits for an answer (404 otherwise)."""
    row = await tasks_repository.by_id(session, client.id, task_id)
    owner = await contributor(session, client, user)
    if row is None or row.user_id != owner.id:
        raise OasstError("Task not found", ErrorCode.TASK_NOT_FOUND, 404)
    if row.done or row.skipped:
        raise OasstError("This task is finished already", ErrorCode.TASK_ALREADY_DONE, 409)
    return OpenTask(row, _TASK.validate_python(row.payload))  # type: ignore[arg-type]


async def _interact(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    rng: random.Random,
    body: wire.TextReplyToMessage | wire.MessageRanking | wire.TextLabels,
) -> None:
    # A savepoint: a refused answer leaves nothing behind, and the page can show the error.
    async with session.begin_nested():
        await tasks_service.interaction(session, client, settings, body, rng)


async def answer_reply(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    rng: random.Random,
    user: SignedIn,
    open_: OpenTask,
    text: str,
) -> None:
    """Answer a prompt or reply task with `text` (in the task's language)."""
    if not text.strip():
        raise bad_input("Please write something first.")
    body = wire.TextReplyToMessage(
        user=wire_user(user),
        message_id=open_.row.frontend_message_id or "",
        user_message_id=f"web-{uuid.uuid4()}",
        text=text,
        lang=open_.lang,
    )
    await _interact(session, client, settings, rng, body)


def labels_from_form(task: tasks_service.AnyTaskModel, form: Mapping[str, str]) -> dict[str, float]:
    """Label values 0..1 from the label form: yes/no radios, flag boxes, likert steps 0..4."""
    values: dict[str, float] = {}
    for label in getattr(task, "labels", None) or []:
        raw = form.get(f"label-{label.name}")
        if label.widget == "flag":
            values[label.name] = 1.0 if raw else 0.0
        elif raw in (None, ""):
            continue
        else:
            try:
                number = float(raw)
            except ValueError:
                raise bad_input(f"Invalid value for {label.display_text}") from None
            scale = LIKERT_STEPS if label.widget == "likert" else 1
            if not 0 <= number <= scale:
                raise bad_input(f"Invalid value for {label.display_text}")
            values[label.name] = number / scale
    missing = [name for name in getattr(task, "mandatory_labels", None) or [] if name not in values]
    if missing:
        raise bad_input("Please answer every required question.")
    return values


async def answer_labels(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    rng: random.Random,
    user: SignedIn,
    open_: OpenTask,
    labels: dict[str, float],
) -> None:
    message_id = getattr(open_.task, "message_id", None)
    if message_id is None:
        raise bad_input("This task takes no labels")
    body = wire.TextLabels(
        user=wire_user(user),
        text="",
        labels=labels,
        message_id=message_id,
        task_id=open_.row.id,
    )
    await _interact(session, client, settings, rng, body)


def parse_ranking(raw: str, count: int) -> list[int]:
    """`"2,0,1"` -> [2, 0, 1]: a permutation of the `count` replies, best first."""
    try:
        ranking = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise bad_input("Invalid ranking") from None
    if sorted(ranking) != list(range(count)):
        raise bad_input("Invalid ranking: rank every reply once")
    return ranking


async def answer_ranking(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    rng: random.Random,
    user: SignedIn,
    open_: OpenTask,
    ranking: list[int],
    not_rankable: bool,
) -> None:
    body = wire.MessageRanking(
        user=wire_user(user),
        message_id=open_.row.frontend_message_id or "",
        ranking=ranking,
        not_rankable=not_rankable,
    )
    await _interact(session, client, settings, rng, body)


async def skip(
    session: AsyncSession, client: ApiClient, user: SignedIn, open_: OpenTask, reason: str
) -> None:
    """Skip the task (the website's "skip" with an optional reason)."""
    who = wire_user(user)
    identity = FrontendIdentity(who.auth_method, who.id)
    await tasks_service.nack(session, client, open_.row.id, reason.strip()[:512] or None, identity)


# --- reactions and moderation -----------------------------------------------------------------------------

REACTIONS = ("+1", "-1", "red_flag")


async def react(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    user: SignedIn,
    message_id: uuid.UUID,
    emoji: str,
) -> None:
    """Toggle the person's thumbs up, thumbs down or red flag (which queues the message for moderators)."""
    if emoji not in REACTIONS:
        raise bad_input(f"Unknown reaction {emoji!r}")
    request = wire.MessageEmojiRequest(
        user=wire_user(user), op=wire.EmojiOp.toggle, emoji=wire.EmojiCode(emoji)
    )
    await messages_service.react(session, client, settings, message_id, request)


@dataclass(frozen=True)
class Flagged:
    """A red-flagged message waiting for a moderator."""

    flag: FlaggedMessageResponse
    message: Message


async def flagged(session: AsyncSession, max_count: int = 100) -> list[Flagged]:
    """The newest unprocessed flags with their messages."""
    flags = [row for row in await admin_service.flagged_messages(session, max_count) if not row.processed]
    messages = await repository.messages_by_id(session, [row.message_id for row in flags])
    return [Flagged(row, messages[row.message_id]) for row in flags if row.message_id in messages]


# --- administration ---------------------------------------------------------------------------------------


async def list_accounts(session: AsyncSession) -> list[LocalAccount]:
    return list(await accounts.list_accounts(session))


async def change_account(
    session: AsyncSession, admin: SignedIn, username: str, *, role: str | None, enabled: bool | None
) -> LocalAccount:
    """Set an account's role or switch it on or off; admins cannot lock themselves out this way."""
    account = await accounts.get(session, username)
    if admin.kind == "local" and str(account.id) == admin.id:
        raise bad_input("You cannot change your own account here: ask another admin.")
    if role is not None:
        account = await accounts.set_role(session, username, role)
    if enabled is not None:
        account = await accounts.set_enabled(session, username, enabled)
    return account


async def forget_oauth_account(session: AsyncSession, user: SignedIn) -> None:
    """Remove the OAuth account of a person who deletes themselves (their name and role here)."""
    await repository.delete_oauth_account(session, user.kind, user.id)


# --- reading -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeView:
    """A message tree to show: its messages by parent, its state, the message asked for."""

    focus: uuid.UUID
    root: wire.Message
    children: dict[uuid.UUID | None, list[wire.Message]]
    state: wire.MessageTreeStateResponse | None


async def tree(
    session: AsyncSession, client: ApiClient, user: SignedIn, message_id: uuid.UUID, *, moderator: bool
) -> TreeView:
    """The tree of `message_id` as the person sees it (moderators also see spam and deleted messages)."""
    viewer = await contributor(session, client, user)
    message = await messages_service.get(session, message_id)
    if message.deleted and not moderator:
        raise OasstError("Message not found", ErrorCode.MESSAGE_NOT_FOUND, 404)
    full = await messages_service.tree_view(
        session, message, viewer, include_spam=True, include_deleted=moderator
    )
    children: dict[uuid.UUID | None, list[wire.Message]] = {}
    root = None
    for item in full.messages:
        if item.parent_id is None:
            root = item
        children.setdefault(item.parent_id, []).append(item)
    if root is None:  # the root was deleted: show what is left under the asked message
        root = next(m for m in full.messages if m.id == message_id)
    try:
        state = await messages_service.tree_state(session, message)
    except OasstError:
        state = None
    return TreeView(message_id, root, children, state)


async def recent_messages(
    session: AsyncSession, client: ApiClient, user: SignedIn, lang: str, max_count: int = 30
) -> list[wire.Message]:
    """The newest live messages in `lang`, from every frontend."""
    viewer = await contributor(session, client, user)
    where = MessageFilter(lang=lang, include_deleted=False)
    return await messages_service.listing(
        session, client, viewer, where, MessageListingParams(max_count=max_count)
    )


@dataclass(frozen=True)
class Profile:
    user: User
    scores: dict[str, UserScore]
    recent: list[wire.Message]


async def profile(session: AsyncSession, client: ApiClient, user: SignedIn) -> Profile:
    """Score, level and streak in every time frame, and the person's latest messages."""
    row = await contributor(session, client, user)
    scores = await stats_service.user_scores(session, row)
    recent = await messages_service.listing(
        session,
        client,
        row,
        MessageFilter(user_id=row.id, include_deleted=False),
        MessageListingParams(max_count=20),
    )
    return Profile(row, scores, recent)


async def leaderboard(
    session: AsyncSession, client: ApiClient, user: SignedIn | None, frame: UserStatsTimeFrame
) -> LeaderboardStats:
    viewer = await contributor(session, client, user) if user is not None else None
    return await stats_service.leaderboard(session, BoardParams(frame, 100), viewer)


# --- chat --------------------------------------------------------------------------------------------------
# A signed-in person chats as the inference user (`local`, account id), signed in for development as
# (`debug`, name), through OAuth as (provider, account id): the user upstream's own sign-ins give them.

STREAMING = (MessageState.pending, MessageState.in_progress)
PRESET_NAMES = [name for name, _description, _parameters in PRESETS]


async def chat_user(session: AsyncSession, user: SignedIn) -> InferenceUser:
    """The inference user of the person (made on first sight)."""
    provider = "debug" if user.kind == "dev" else user.kind
    return await inference.ensure_user(session, provider, user.id, user.name)


@dataclass(frozen=True)
class ThreadStep:
    """One message of the thread on screen, with its alternatives (drafts or edits) oldest first."""

    message: MessageRead
    siblings: list[uuid.UUID]

    @property
    def index(self) -> int:
        return self.siblings.index(self.message.id)


@dataclass(frozen=True)
class Course:
    """The course budget that pays for a person's replies: its meter, or None when the key the person joined
    with no longer opens an account (it was changed, or the account closed)."""

    meter: gateway_service.BudgetMeter | None

    @property
    def blocks(self) -> bool:
        """Whether no reply can be paid for any more."""
        return self.meter is None or self.meter.used_up


async def course(session: AsyncSession, settings: Settings, key_hash: str | None) -> Course | None:
    """The course budget of the key a person joined with (see account_service.join_course), if any."""
    if key_hash is None:
        return None
    return Course(await gateway_service.budget_meter(session, settings, key_hash))


@dataclass(frozen=True)
class ChatView:
    """What the chat page shows: the chat, its active thread, the models to choose from and the course
    budget that pays for the replies (if one does)."""

    chat: ChatRead
    thread: list[ThreadStep]
    models: list[str]
    model: str | None  # the one chosen last in this chat (or the first served)
    course: Course | None

    @property
    def streaming(self) -> MessageRead | None:
        """The last reply if it is still being written."""
        last = self.thread[-1].message if self.thread else None
        return last if last is not None and last.role == "assistant" and last.state in STREAMING else None


def _children(messages: Sequence[MessageRead]) -> dict[uuid.UUID | None, list[MessageRead]]:
    children: dict[uuid.UUID | None, list[MessageRead]] = {}
    for message in sorted(messages, key=lambda message: (message.created_at, message.id)):
        children.setdefault(message.parent_id, []).append(message)
    return children


def _newest_leaf(
    children: Mapping[uuid.UUID | None, list[MessageRead]], start: MessageRead | None
) -> MessageRead | None:
    """Follow the newest reply down from `start` (from the newest first message if None) to the end."""
    node = start
    while kids := children.get(node.id if node is not None else None):
        node = kids[-1]
    return node


def thread(chat: ChatRead) -> list[ThreadStep]:
    """The active thread: from the first message to the chosen tail (the newest path if none is chosen)."""
    by_id = {message.id: message for message in chat.messages}
    children = _children(chat.messages)
    chosen = chat.active_thread_tail_message_id
    tail = _newest_leaf(children, by_id.get(chosen) if chosen is not None else None)
    steps: list[ThreadStep] = []
    while tail is not None:
        siblings = [sibling.id for sibling in children[tail.parent_id]]
        steps.append(ThreadStep(tail, siblings))
        tail = by_id.get(tail.parent_id) if tail.parent_id is not None else None
    return steps[::-1]


async def chat_view(
    session: AsyncSession,
    settings: Settings,
    person: InferenceUser,
    chat_id: uuid.UUID,
    served: Mapping[str, ModelConfig],
) -> ChatView:
    chat = await inference.get_chat(session, person, chat_id)
    steps = thread(chat)
    models = sorted(served)
    used = [
        step.message.work_parameters.model.model_id
        for step in steps
        if step.message.work_parameters is not None
    ]
    model = used[-1] if used and used[-1] in served else (models[0] if models else None)
    paying = await course(session, settings, await inference.course_key(session, person))
    return ChatView(chat, steps, models, model, paying)


def _sampling(preset: str) -> SamplingParameters:
    for name, _description, parameters in PRESETS:
        if name == preset:
            return parameters
    raise bad_input(f"Unknown sampling preset {preset!r}")


@dataclass(frozen=True)
class ChatRuntime:
    """What a reply needs from the inference runtime: the settings, the queue and the served models."""

    settings: Settings
    queue: WorkQueue
    models: Mapping[str, ModelConfig]
    rng: random.Random


async def _reply(
    session: AsyncSession,
    runtime: ChatRuntime,
    person: InferenceUser,
    chat_id: uuid.UUID,
    prompt_id: uuid.UUID,
    model: str,
    sampling: SamplingParameters,
) -> QueuedMessage:
    """A new reply to `prompt_id`, made the tail of the thread on screen."""
    body = CreateAssistantMessageRequest(
        parent_id=prompt_id, model_config_name=model, sampling_parameters=sampling
    )
    queued = await inference.add_assistant_message(
        session, runtime.settings, runtime.queue, runtime.models, person, chat_id, body, runtime.rng
    )
    tail = ChatUpdateRequest(active_thread_tail_message_id=queued.message.id)
    await inference.update_chat(session, person, chat_id, tail)
    return queued


async def send(
    session: AsyncSession,
    runtime: ChatRuntime,
    person: InferenceUser,
    chat_id: uuid.UUID,
    content: str,
    model: str,
    preset: str,
) -> QueuedMessage:
    """The person's message at the end of the thread on screen, and a reply to it (queued after commit)."""
    text = content.strip()
    if not text:
        raise bad_input(N_("Please write a message"))
    sampling = _sampling(preset)
    steps = thread(await inference.get_chat(session, person, chat_id))
    parent = steps[-1].message.id if steps else None
    prompt = await inference.add_prompter_message(
        session,
        runtime.settings,
        person,
        chat_id,
        CreatePrompterMessageRequest(parent_id=parent, content=text),
    )
    return await _reply(session, runtime, person, chat_id, prompt.id, model, sampling)


async def regenerate(
    session: AsyncSession,
    runtime: ChatRuntime,
    person: InferenceUser,
    chat_id: uuid.UUID,
    message_id: uuid.UUID,
) -> QueuedMessage:
    """Another reply to the prompt of `message_id`, with the same model and sampling."""
    message = await inference.get_message(session, person, chat_id, message_id)
    if message.role != "assistant" or message.parent_id is None or message.work_parameters is None:
        raise bad_input(N_("Only a reply of the assistant can be written again"))
    parameters = message.work_parameters
    return await _reply(
        session,
        runtime,
        person,
        chat_id,
        message.parent_id,
        parameters.model.model_id,
        parameters.sampling_parameters,
    )


def _message_of(chat: ChatRead, message_id: uuid.UUID) -> MessageRead:
    found = next((message for message in chat.messages if message.id == message_id), None)
    if found is None:
        raise inference_not_found("Message")
    return found


async def _show_from(
    session: AsyncSession, person: InferenceUser, chat: ChatRead, start: MessageRead
) -> None:
    tail = _newest_leaf(_children(chat.messages), start)
    assert tail is not None
    await inference.update_chat(
        session, person, chat.id, ChatUpdateRequest(active_thread_tail_message_id=tail.id)
    )


async def show_branch(
    session: AsyncSession, person: InferenceUser, chat_id: uuid.UUID, message_id: uuid.UUID
) -> None:
    """Show the thread through `message_id` (a sibling picked in the pager), down to its newest reply."""
    chat = await inference.get_chat(session, person, chat_id)
    await _show_from(session, person, chat, _message_of(chat, message_id))


async def prefer(
    session: AsyncSession, person: InferenceUser, chat_id: uuid.UUID, message_id: uuid.UUID
) -> None:
    """Record that the reply `message_id` is better than the other drafts of its prompt, and show it."""
    chat = await inference.get_chat(session, person, chat_id)
    chosen = _message_of(chat, message_id)
    others = [
        message.id
        for message in chat.messages
        if message.parent_id == chosen.parent_id and message.id != message_id and message.role == "assistant"
    ]
    await inference.evaluate(session, person, chat_id, message_id, others)
    await _show_from(session, person, chat, chosen)


async def vote(
    session: AsyncSession, person: InferenceUser, chat_id: uuid.UUID, message_id: uuid.UUID, score: int
) -> None:
    """A thumb up or down on a reply; the same thumb again takes the vote back."""
    if score not in (-1, 1):
        raise bad_input(N_("A vote is 1 or -1"))
    current = await inference.get_message(session, person, chat_id, message_id)
    await inference.vote(session, person, chat_id, message_id, 0 if current.score == score else score)
