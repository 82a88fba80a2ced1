"""The inference API's work: tokens and logins, chats, prompter and assistant messages, the work lifecycle
of assistant messages (queued, started by a worker, completed, aborted, re-queued, timed out) and the SSE
stream. Services flush; the caller's scope commits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import random
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.accounts import service as accounts
from oasst.collection.auth import service as api_clients
from oasst.config import Settings
from oasst.db.dml import insert_ignore
from oasst.db.models import (
    ApiClient,
    Chat,
    ChatMessage,
    ChatReport,
    InferenceUser,
    MessageEvaluation,
    RefreshToken,
    Worker,
)
from oasst.errors import OasstError
from oasst.gateway import budgets
from oasst.gateway.errors import GatewayError
from oasst.inference import repository
from oasst.inference.queue import MessageStreams, WorkQueue, is_terminal
from oasst.inference.schemas import (
    FINISHED,
    PRESETS,
    Claims,
    InferenceError,
    Refused,
    decode_cursor,
    encode_cursor,
    not_found,
)
from oasst.protocol.inference import (
    ChatListRead,
    ChatRead,
    ChatUpdateRequest,
    CreateAssistantMessageRequest,
    CreatePrompterMessageRequest,
    ErrorResponseEvent,
    InferenceUserRead,
    ListChatsResponse,
    LocalLoginRequest,
    LocalRegisterRequest,
    MessageRead,
    MessageState,
    ModelConfig,
    ModelConfigInfo,
    ParameterConfig,
    PendingResponseEvent,
    Report,
    ReportRequest,
    Token,
    TokenPair,
    TokenUsage,
    TrustedClientToken,
    WorkerRead,
    WorkParameters,
)
from oasst.protocol.worker import Thread, WorkerConfig, WorkRequest

log = logging.getLogger(__name__)

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]
ABORTED_BY_WORKER = "Aborted due to worker error."
WORKER_SILENT = "Aborted: the worker sent nothing for too long."
CANCELLED = "Cancelled: another reply was asked for."
# Refusals of a reply that the course budget paying for its user's replies cannot pay for (the web pages
# translate them by these texts).
COURSE_BUDGET_USED_UP = "The course budget that pays for your replies is used up"
COURSE_BUDGET_SHORT = "Not enough of the course budget that pays for your replies is left for this reply"
COURSE_KEY_INVALID = "The course key you joined with no longer works: it was changed or its account closed"
CHARS_PER_TOKEN = 4


def _now() -> datetime:
    return datetime.now(UTC)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- signed tokens ------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, claims: Claims) -> str:
    """`payload.signature`: base64url JSON claims and their HMAC-SHA256 under the server's secret."""
    payload = _b64(json.dumps({"user_id": claims.user_id, "exp": claims.exp, "type": claims.type}).encode())
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def verify(secret: str, token: str, expected_type: str) -> Claims:
    """The claims of a token this server signed: 401 if forged, malformed or expired; 400 if another type."""
    payload, _, signature = token.partition(".")
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    try:
        valid = hmac.compare_digest(_unb64(signature), expected)
        data = json.loads(_unb64(payload)) if valid else None
    except (ValueError, TypeError):
        valid, data = False, None
    if not valid or not isinstance(data, dict) or "user_id" not in data or "exp" not in data:
        raise InferenceError(401, "Invalid token")
    if data.get("type") != expected_type:
        raise InferenceError(400, "Invalid token type")
    if float(data["exp"]) < time.time():
        raise InferenceError(401, "Token expired")
    return Claims(str(data["user_id"]), float(data["exp"]), expected_type)  # type: ignore[arg-type]


async def issue_tokens(session: AsyncSession, settings: Settings, secret: str, user_id: str) -> TokenPair:
    now = time.time()
    access = sign(secret, Claims(user_id, now + settings.auth_access_token_expire_minutes * 60, "access"))
    refresh = sign(secret, Claims(user_id, now + settings.auth_refresh_token_expire_minutes * 60, "refresh"))
    # The hash is of the token as handed out, so refresh finds it (upstream hashed two different forms).
    session.add(RefreshToken(token_hash=hash_secret(refresh), user_id=user_id, enabled=True))
    await session.flush()
    return TokenPair(
        access_token=Token(access_token=access, token_type="bearer"),
        refresh_token=Token(access_token=refresh, token_type="refresh"),
    )


async def refresh_access_token(session: AsyncSession, settings: Settings, secret: str, refresh: str) -> Token:
    """A new access token for a refresh token that is stored, enabled and of a user not deleted."""
    claims = verify(secret, refresh, "refresh")
    stored = await repository.refresh_token(session, hash_secret(refresh))
    if stored is None or not stored.enabled or stored.user_id != claims.user_id:
        raise InferenceError(401, "Invalid token")
    user = await repository.user(session, claims.user_id)
    if user is None or user.deleted:
        raise InferenceError(401, "Invalid token")
    exp = time.time() + settings.auth_access_token_expire_minutes * 60
    return Token(access_token=sign(secret, Claims(claims.user_id, exp, "access")), token_type="bearer")


async def debug_login(session: AsyncSession, settings: Settings, secret: str, username: str) -> TokenPair:
    """Log in as `username` unconditionally (only with OASST_ALLOW_DEBUG_AUTH=true)."""
    if not settings.allow_debug_auth:
        raise InferenceError(403, "Debug auth is not allowed")
    if not username:
        raise InferenceError(400, "Username is required")
    user = await repository.user_by_provider(session, "debug", username)
    if user is None:
        if await repository.user(session, username) is not None:  # deleted, or another provider's id
            raise InferenceError(403, "This user cannot sign in")
        user = await _add_user(
            session,
            InferenceUser(id=username, provider="debug", provider_account_id=username, display_name=username),
        )
    return await issue_tokens(session, settings, secret, user.id)


async def _add_user(session: AsyncSession, user: InferenceUser) -> InferenceUser:
    """Insert a new user; if a simultaneous sign-in inserted the same (provider, account) first, that one."""
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError as error:
        existing = await repository.user_by_provider(session, user.provider, user.provider_account_id)
        if existing is None:  # the id is another provider's
            raise InferenceError(409, "This user exists already") from error
        return existing
    return user


def providers(settings: Settings) -> list[str]:
    """The sign-in methods this server offers."""
    return [name for name, on in (("local", settings.local_auth), ("debug", settings.allow_debug_auth)) if on]


async def local_login(
    session: AsyncSession, settings: Settings, secret: str, body: LocalLoginRequest
) -> TokenPair:
    """Sign in with a local account; its inference user (provider "local") is made on first sign-in."""
    if not settings.local_auth:
        raise InferenceError(403, "Local sign-in is not enabled")
    account = await accounts.authenticate(session, body.username, body.password)
    if account is None:
        raise InferenceError(401, "Invalid username or password")
    user = await ensure_user(session, "local", str(account.id), account.display_name)
    return await issue_tokens(session, settings, secret, user.id)


# The user owning the chats of API requests (/v1 and the gateway's asks); no login can produce its provider.
OPERATOR_PROVIDER = "openai_api"
OPERATOR_ACCOUNT = "operator"


async def ensure_operator(session: AsyncSession) -> str:
    """The operator user's id, created by the first server start (a process starting beside it inserts
    nothing)."""
    values = {
        "id": f"{OPERATOR_PROVIDER}-{uuid.uuid4().hex}",
        "provider": OPERATOR_PROVIDER,
        "provider_account_id": OPERATOR_ACCOUNT,
        "display_name": "OpenAI-compatible API",
    }
    await insert_ignore(session, InferenceUser, values, ["provider", "provider_account_id"])
    user = await repository.user_by_provider(session, OPERATOR_PROVIDER, OPERATOR_ACCOUNT)
    assert user is not None  # just inserted, or there before: users are anonymised, never deleted
    return user.id


async def ensure_user(
    session: AsyncSession, provider: str, account_id: str, display_name: str
) -> InferenceUser:
    """The user of (provider, account id), made on first sight (a local account, a web sign-in)."""
    user = await repository.user_by_provider(session, provider, account_id)
    if user is None:
        user = await _add_user(
            session,
            InferenceUser(
                id=str(uuid.uuid4()),
                provider=provider,
                provider_account_id=account_id,
                display_name=display_name,
            ),
        )
    return user


async def register_local(
    session: AsyncSession, settings: Settings, secret: str, body: LocalRegisterRequest
) -> TokenPair:
    """Create a local account and sign in with it (only with OASST_ALLOW_REGISTRATION=true)."""
    if not settings.local_auth or not settings.allow_registration:
        raise InferenceError(403, "Registration is not open")
    try:
        await accounts.register(session, body.username, body.password, body.display_name)
    except OasstError as error:
        raise InferenceError(error.status, error.message) from error
    return await local_login(session, settings, secret, body)


def _trusted_token(header: str) -> TrustedClientToken:
    try:
        return TrustedClientToken.model_validate_json(base64.b64decode(header, validate=True))
    except (ValueError, ValidationError) as error:
        raise InferenceError(400, "Invalid TrustedClient header: base64 of a JSON object expected") from error


async def trusted_client(
    session: AsyncSession, cache: api_clients.KeyCache[ApiClient] | None, header: str | None
) -> TrustedClientToken:
    """The TrustedClient header, if its key is OASST_BOOTSTRAP_API_KEY or a trusted API client's key."""
    if not header:
        raise InferenceError(401, "Unauthorized client")
    token = _trusted_token(header)
    try:
        client = await api_clients.authenticate(session, token.api_key, cache)
    except OasstError as error:
        raise InferenceError(401, "Unauthorized client") from error
    if not client.trusted:
        raise InferenceError(401, "Unauthorized client")
    return token


async def trusted_user(
    session: AsyncSession, cache: api_clients.KeyCache[ApiClient] | None, header: str
) -> InferenceUser:
    """The user a trusted client speaks for; 404 until the client has called POST /auth/trusted."""
    token = await trusted_client(session, cache, header)
    user = await repository.user(session, token.user_id)
    if user is None:
        raise not_found("User")
    if user.deleted:
        raise InferenceError(401, "User was deleted")
    return user


async def ensure_trusted_user(
    session: AsyncSession, cache: api_clients.KeyCache[ApiClient] | None, header: str | None
) -> InferenceUserRead:
    """POST /auth/trusted: the user of the header's `user_id`, created (provider = `client`) if missing."""
    token = await trusted_client(session, cache, header)
    user = await repository.user(session, token.user_id)
    if user is None:
        if await repository.user_by_provider(session, token.client, token.provider_account_id) is not None:
            raise InferenceError(409, "Another user has this provider account")
        user = await _add_user(
            session,
            InferenceUser(
                id=token.user_id,
                provider=token.client,
                provider_account_id=token.provider_account_id,
                display_name=token.username or token.provider_account_id,
            ),
        )
        if user.id != token.user_id:
            raise InferenceError(409, "Another user has this provider account")
    return InferenceUserRead(
        id=user.id,
        provider=user.provider,
        provider_account_id=user.provider_account_id,
        display_name=user.display_name,
        deleted=user.deleted,
    )


async def delete_user(session: AsyncSession, user: InferenceUser) -> None:
    """Upstream's soft delete: anonymised, refresh tokens off, chats kept; a local account is disabled."""
    if user.provider == "local":
        account = await accounts.get_by_id(session, uuid.UUID(user.provider_account_id))
        if account is not None:
            account.enabled = False
    user.deleted = True
    user.display_name = "Deleted User"
    user.provider_account_id = f"deleted_{user.id}"
    await repository.disable_refresh_tokens(session, user.id)
    await session.flush()


async def _existing_user(session: AsyncSession, user_id: str) -> InferenceUser:
    user = await repository.user(session, user_id)
    if user is None:
        raise not_found("User")
    return user


async def delete_user_by_id(session: AsyncSession, user_id: str) -> None:
    await delete_user(session, await _existing_user(session, user_id))


async def revoke_refresh_tokens(session: AsyncSession, user_id: str) -> None:
    """Disable every refresh token of a user: refreshing then fails; access tokens run out on their own."""
    await _existing_user(session, user_id)
    await repository.disable_refresh_tokens(session, user_id)


async def authenticate(session: AsyncSession, secret: str, bearer: str | None) -> InferenceUser:
    if not bearer:
        raise InferenceError(403, "Not authenticated")
    claims = verify(secret, bearer, "access")
    user = await repository.user(session, claims.user_id)
    if user is None or user.deleted:
        raise InferenceError(401, "Invalid token")
    return user


def require_admin(settings: Settings, bearer: str | None) -> None:
    """The admin routes take OASST_BOOTSTRAP_API_KEY (or a root token) as Bearer token."""
    keys = [key for key in [settings.bootstrap_api_key, *settings.root_tokens] if key]
    if not bearer or not any(hmac.compare_digest(bearer.encode(), key.encode()) for key in keys):
        raise InferenceError(401, "Invalid token")


# --- worker keys --------------------------------------------------------------------------------------------


def _worker_read(worker: Worker, api_key: str | None = None) -> WorkerRead:
    return WorkerRead(id=worker.id, name=worker.name, api_key=api_key, trusted=worker.trusted)


async def create_worker(session: AsyncSession, name: str, trusted: bool) -> WorkerRead:
    """Mint a worker key; it is returned once and stored hashed."""
    api_key = secrets.token_urlsafe(32)
    worker = Worker(name=name, api_key_hash=hash_secret(api_key), trusted=trusted)
    session.add(worker)
    await session.flush()
    return _worker_read(worker, api_key)


async def list_workers(session: AsyncSession) -> list[WorkerRead]:
    return [_worker_read(worker) for worker in await repository.workers(session)]


async def delete_worker(session: AsyncSession, worker_id: uuid.UUID) -> None:
    if not await repository.delete_worker(session, worker_id):
        raise not_found("Worker")


async def authenticate_worker(session: AsyncSession, api_key: str | None) -> Worker | None:
    if not api_key:
        return None
    return await repository.worker_by_key_hash(session, hash_secret(api_key))


# --- chats --------------------------------------------------------------------------------------------------


def chat_list_read(chat: Chat, with_tail: bool = True) -> ChatListRead:
    return ChatListRead(
        id=chat.id,
        created_at=chat.created_at,
        modified_at=chat.modified_at,
        title=chat.title,
        hidden=chat.hidden,
        allow_data_use=chat.allow_data_use,
        active_thread_tail_message_id=chat.active_thread_tail_message_id if with_tail else None,
    )


def message_read(message: ChatMessage, reports: Sequence[ChatReport] = ()) -> MessageRead:
    parameters = message.work_parameters
    return MessageRead(
        id=message.id,
        parent_id=message.parent_id,
        content=message.content,
        chat_id=message.chat_id,
        created_at=message.created_at,
        role=message.role,
        state=MessageState(message.state),
        score=message.score,
        reports=[
            Report(id=report.id, report_type=report.report_type, reason=report.reason) for report in reports
        ],
        work_parameters=WorkParameters.model_validate(parameters) if parameters is not None else None,
        used_plugin=message.used_plugin,
    )


async def _chat(session: AsyncSession, user: InferenceUser, chat_id: uuid.UUID) -> Chat:
    chat = await repository.chat(session, chat_id, user.id)
    if chat is None:
        raise not_found("Chat")
    return chat


async def list_chats(
    session: AsyncSession,
    user: InferenceUser,
    *,
    include_hidden: bool,
    limit: int,
    after: str | None,
    before: str | None,
) -> ListChatsResponse:
    """A page of the user's chats, newest first, with upstream's cursors (base64 chat ids)."""
    if after is not None and before is not None:
        raise InferenceError(400, "Only one of after and before may be given")
    after_id, before_id = decode_cursor(after), decode_cursor(before)
    rows = await repository.chats_page(
        session, user.id, include_hidden=include_hidden, limit=limit + 1, after=after_id, before=before_id
    )
    more = len(rows) > limit
    if more:
        rows = rows[1:] if before_id is not None else rows[:limit]
    if not rows:
        return ListChatsResponse(chats=[], prev=after, next=before)
    prev = encode_cursor(rows[0].id) if (more and before_id is not None) or after_id is not None else None
    next_ = encode_cursor(rows[-1].id) if more or before_id is not None else None
    return ListChatsResponse(chats=[chat_list_read(chat, False) for chat in rows], prev=prev, next=next_)


async def create_chat(session: AsyncSession, user: InferenceUser) -> ChatListRead:
    now = _now()
    chat = Chat(user_id=user.id, created_at=now, modified_at=now)
    session.add(chat)
    await session.flush()
    return chat_list_read(chat)


async def get_chat(session: AsyncSession, user: InferenceUser, chat_id: uuid.UUID) -> ChatRead:
    chat = await _chat(session, user, chat_id)
    reports = await repository.reports_by_message(session, chat_id)
    messages = [
        message_read(message, reports.get(message.id, ()))
        for message in await repository.messages(session, chat_id)
    ]
    return ChatRead(**chat_list_read(chat).model_dump(), messages=messages)


async def update_chat(
    session: AsyncSession, user: InferenceUser, chat_id: uuid.UUID, body: ChatUpdateRequest
) -> None:
    chat = await _chat(session, user, chat_id)
    if body.title is not None:
        chat.title = body.title
    if body.hidden is not None:
        chat.hidden = body.hidden
    if body.allow_data_use is not None:
        chat.allow_data_use = body.allow_data_use
    if body.active_thread_tail_message_id is not None:
        if await repository.message(session, body.active_thread_tail_message_id, chat_id) is None:
            raise not_found("Message")
        chat.active_thread_tail_message_id = body.active_thread_tail_message_id
    await session.flush()


async def hide_all_chats(session: AsyncSession, user: InferenceUser) -> None:
    await repository.hide_all_chats(session, user.id)


async def delete_chat(session: AsyncSession, user: InferenceUser, chat_id: uuid.UUID) -> None:
    await _chat(session, user, chat_id)
    await repository.delete_chat(session, chat_id)


# --- messages -----------------------------------------------------------------------------------------------


async def _message(
    session: AsyncSession, user: InferenceUser, chat_id: uuid.UUID, message_id: uuid.UUID
) -> ChatMessage:
    await _chat(session, user, chat_id)
    message = await repository.message(session, message_id, chat_id)
    if message is None:
        raise not_found("Message")
    return message


async def get_message(
    session: AsyncSession, user: InferenceUser, chat_id: uuid.UUID, message_id: uuid.UUID
) -> MessageRead:
    message = await _message(session, user, chat_id, message_id)
    reports = await repository.reports_by_message(session, chat_id, message_id)
    return message_read(message, reports.get(message_id, ()))


async def _assistant_message(
    session: AsyncSession, user: InferenceUser, chat_id: uuid.UUID, message_id: uuid.UUID, action: str
) -> ChatMessage:
    message = await _message(session, user, chat_id, message_id)
    if message.role != "assistant":
        raise InferenceError(400, f"Only assistant messages can be {action}")
    return message


async def vote(
    session: AsyncSession, user: InferenceUser, chat_id: uuid.UUID, message_id: uuid.UUID, score: int
) -> None:
    """Set the thumbs score (-1, 0, 1) of an assistant message; the last vote counts."""
    message = await _assistant_message(session, user, chat_id, message_id, "voted on")
    message.score = score
    await session.flush()


async def report(
    session: AsyncSession,
    user: InferenceUser,
    chat_id: uuid.UUID,
    message_id: uuid.UUID,
    body: ReportRequest,
) -> None:
    await _assistant_message(session, user, chat_id, message_id, "reported")
    session.add(
        ChatReport(message_id=message_id, user_id=user.id, report_type=body.report_type, reason=body.reason)
    )
    await session.flush()


async def evaluate(
    session: AsyncSession,
    user: InferenceUser,
    chat_id: uuid.UUID,
    message_id: uuid.UUID,
    inferior_ids: Sequence[uuid.UUID],
) -> None:
    """Record that the user picked draft `message_id` over `inferior_ids` (drafts of the same parent)."""
    selected = await _assistant_message(session, user, chat_id, message_id, "selected")
    by_id = {message.id: message for message in await repository.messages(session, chat_id)}
    for inferior_id in inferior_ids:
        inferior = by_id.get(inferior_id)
        if inferior is None or inferior_id == message_id:
            raise InferenceError(400, f"Message {inferior_id} is not another message of this chat")
        if inferior.role != "assistant" or inferior.parent_id != selected.parent_id:
            raise InferenceError(400, f"Message {inferior_id} is not a draft of the same prompt")
    session.add(
        MessageEvaluation(
            chat_id=chat_id,
            user_id=user.id,
            selected_message_id=message_id,
            inferior_message_ids=[str(inferior_id) for inferior_id in dict.fromkeys(inferior_ids)],
        )
    )
    await session.flush()


async def _check_room(session: AsyncSession, settings: Settings, chat_id: uuid.UUID) -> None:
    limit = settings.chat_max_messages
    if limit is not None and await repository.message_count(session, chat_id) >= limit:
        raise InferenceError(413, "Maximum number of messages reached for this chat")


async def add_prompter_message(
    session: AsyncSession,
    settings: Settings,
    user: InferenceUser,
    chat_id: uuid.UUID,
    body: CreatePrompterMessageRequest,
) -> MessageRead:
    chat = await _chat(session, user, chat_id)
    if len(body.content) > settings.message_max_length:
        raise InferenceError(413, "Message content exceeds max length")
    await _check_room(session, settings, chat_id)
    if body.parent_id is None:
        if await repository.message_count(session, chat_id):
            raise InferenceError(400, "Trying to add first message to non-empty chat")
    else:
        parent = await repository.message(session, body.parent_id, chat_id)
        if parent is None:
            raise InferenceError(400, "Parent message not found")
        if parent.role != "assistant":
            raise InferenceError(400, "Parent message is not an assistant message")
        if parent.state != MessageState.complete:
            raise InferenceError(400, "Parent message is not complete")
    message = ChatMessage(
        chat_id=chat_id,
        parent_id=body.parent_id,
        role="prompter",
        content=body.content,
        state=MessageState.manual,
        created_at=_now(),
    )
    session.add(message)
    if body.parent_id is None and chat.title is None:
        # Upstream keeps the whole first message as the title; titles are bounded here (100 characters).
        chat.title = body.content[:100]
    chat.modified_at = message.created_at
    await session.flush()
    return message_read(message)


def model_configs(models: Mapping[str, ModelConfig]) -> list[ModelConfigInfo]:
    """Every model a connected worker serves, each with upstream's sampling presets."""
    presets = [
        ParameterConfig(name=name, description=description, sampling_parameters=parameters)
        for name, description, parameters in PRESETS
    ]
    return [ModelConfigInfo(name=name, parameter_configs=presets) for name in sorted(models)]


@dataclass(frozen=True)
class QueuedMessage:
    """An assistant message created in this transaction; its id is queued once the transaction commits."""

    message: MessageRead
    compat_hash: str
    cancelled: list[uuid.UUID]  # the user's pending messages under other parents, cancelled by this one


async def add_assistant_message(
    session: AsyncSession,
    settings: Settings,
    queue: WorkQueue,
    models: Mapping[str, ModelConfig],
    user: InferenceUser,
    chat_id: uuid.UUID,
    body: CreateAssistantMessageRequest,
    rng: random.Random,
) -> QueuedMessage:
    """A pending assistant stub under a prompter message, for the model a connected worker serves."""
    await _chat(session, user, chat_id)
    parent = await repository.message(session, body.parent_id, chat_id)
    if parent is None or parent.role != "prompter":
        raise InferenceError(400, "Message not found")
    model = models.get(body.model_config_name)
    if model is None:
        raise Refused(422, f"Model {body.model_config_name} not found", "no_worker")
    await _check_room(session, settings, chat_id)
    if not await queue.has_room(model.compat_hash):
        raise Refused(
            429, "The server is currently busy. Please try again later.", "queue_full", {"Retry-After": "10"}
        )
    cancelled = await repository.cancel_other_pending(session, user.id, parent.id)
    parameters = WorkParameters(
        model=model,
        sampling_parameters=body.sampling_parameters,
        do_sample=True,
        seed=rng.randint(0, 2**64 - 2),
        system_prompt=body.system_prompt,
        user_profile=body.user_profile,
        user_response_instructions=body.user_response_instructions,
    )
    message = ChatMessage(
        chat_id=chat_id,
        parent_id=parent.id,
        role="assistant",
        state=MessageState.pending,
        created_at=_now(),
        work_parameters=parameters.model_dump(mode="json"),
        worker_compat_hash=model.compat_hash,
    )
    session.add(message)
    await session.flush()
    for other in cancelled:
        await budgets.release_reply(session, other)
    await _reserve_reply(session, settings, user, message, parameters)
    return QueuedMessage(message_read(message), model.compat_hash, cancelled)


def estimated_tokens(texts: Iterable[str]) -> int:
    """The tokens of a prompt that no worker counted: one per four characters, rounded up (at least one)."""
    return max(1, math.ceil(sum(len(text) for text in texts) / CHARS_PER_TOKEN))


async def course_key(session: AsyncSession, user: InferenceUser) -> str | None:
    """The hash of the course key the user's local account joined with: that key's gateway account pays for
    the user's replies, from the web UI and this API alike (so the budget cannot be bypassed here)."""
    if user.provider != "local":
        return None
    try:
        account = await accounts.get_by_id(session, uuid.UUID(user.provider_account_id))
    except ValueError:  # a deleted user's anonymised id
        return None
    return account.gateway_key_hash if account is not None else None


async def _thread(session: AsyncSession, reply: ChatMessage) -> list[ChatMessage]:
    """The messages `reply` answers, from the first one down to its parent."""
    by_id = {row.id: row for row in await repository.messages(session, reply.chat_id)}
    thread: list[ChatMessage] = []
    cursor = by_id.get(reply.parent_id) if reply.parent_id else None
    while cursor is not None:
        thread.append(cursor)
        cursor = by_id.get(cursor.parent_id) if cursor.parent_id else None
    return thread[::-1]


async def _reserve_reply(
    session: AsyncSession,
    settings: Settings,
    user: InferenceUser,
    reply: ChatMessage,
    parameters: WorkParameters,
) -> None:
    """Hold the reply's bound on the course budget that pays for the user's replies, if one does; refused
    with 402 when it cannot pay, 403 when the key no longer opens an account."""
    key_hash = await course_key(session, user)
    if key_hash is None:
        return
    extra = (parameters.system_prompt, parameters.user_profile, parameters.user_response_instructions)
    texts = [row.content or "" for row in await _thread(session, reply)] + [text for text in extra if text]
    bound = budgets.cost_bound(texts, parameters.sampling_parameters.max_new_tokens)
    try:
        await budgets.reserve_reply(session, settings, key_hash, reply.id, bound, estimated_tokens(texts))
    except GatewayError as refusal:
        if refusal.status == 401:
            raise InferenceError(403, COURSE_KEY_INVALID) from None
        used_up = refusal.message == budgets.BUDGET_REACHED
        raise InferenceError(402, COURSE_BUDGET_USED_UP if used_up else COURSE_BUDGET_SHORT) from None


# --- the work lifecycle (driven by a worker connection) -----------------------------------------------------


@dataclass(frozen=True)
class WorkStart:
    """What dequeuing a message led to: work to send, and/or an event for its stream (a timeout)."""

    request: WorkRequest | None = None
    event: ErrorResponseEvent | None = None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _expired(message: ChatMessage, settings: Settings) -> bool:
    timeout = settings.assistant_message_timeout
    return timeout > 0 and _now() - message.created_at > timedelta(seconds=timeout)


async def start_work(
    session: AsyncSession,
    settings: Settings,
    message_id: uuid.UUID,
    worker_id: uuid.UUID,
    config: WorkerConfig,
) -> WorkStart:
    """Hand a dequeued message to a worker (claimed in one statement), or say why it cannot be."""
    now = _now()
    timeout = settings.assistant_message_timeout
    not_before = now - timedelta(seconds=timeout) if timeout > 0 else EPOCH
    message = await repository.claim(
        session, message_id, worker_id, config.model_dump(mode="json"), now, not_before
    )
    if message is None:
        return await _not_started(session, settings, message_id)
    thread = [message_read(row) for row in await _thread(session, message)]
    parameters = WorkParameters.model_validate(message.work_parameters)
    return WorkStart(
        request=WorkRequest(
            thread=Thread(messages=thread), created_at=message.created_at, parameters=parameters
        )
    )


async def _not_started(session: AsyncSession, settings: Settings, message_id: uuid.UUID) -> WorkStart:
    """A dequeued message that could not be claimed: gone, no longer pending, or past its timeout."""
    message = await repository.message(session, message_id, lock=True)
    if message is None:  # its chat was deleted before the reply started: it costs nothing
        await budgets.release_reply(session, message_id)
        return WorkStart()
    if message.state != MessageState.pending or not _expired(message, settings):
        return WorkStart()  # cancelled, or already handled
    message.state = MessageState.timeout
    message.error = "Timeout"
    await budgets.release_reply(session, message_id)
    await session.flush()
    return WorkStart(event=ErrorResponseEvent(error="Timeout", message=message_read(message)))


async def reset_work(session: AsyncSession, message_id: uuid.UUID) -> bool:
    """Back to pending (its worker left before any token); True if it is to be queued again."""
    message = await repository.message(session, message_id, lock=True)
    if message is None:
        await budgets.release_reply(session, message_id)
    if message is None or message.state != MessageState.in_progress:
        return False
    message.state = MessageState.pending
    message.work_begin_at = None
    message.worker_id = None
    message.worker_config = None
    await session.flush()
    return True


async def complete_work(
    session: AsyncSession,
    message_id: uuid.UUID,
    text: str,
    used_plugin: dict[str, object] | None,
    usage: TokenUsage | None,
    tokens_sent: int,
) -> MessageRead | None:
    """Store the finished reply, and settle its charge (if a course budget pays for it) to the worker's
    counts, or to the token packets it sent and the prompt's estimate. A reply whose chat was deleted
    meanwhile is charged all the same: its tokens were spent."""
    message = await repository.message(session, message_id, lock=True)
    await budgets.settle_reply(
        session,
        message_id,
        usage.prompt_tokens if usage is not None else None,
        usage.completion_tokens if usage is not None else tokens_sent,
    )
    if message is None or message.state != MessageState.in_progress:
        return None
    message.state = MessageState.complete
    message.content = text
    message.used_plugin = used_plugin
    message.work_end_at = _now()
    await session.flush()
    return message_read(message)


async def abort_work(session: AsyncSession, message_id: uuid.UUID, error: str) -> MessageRead | None:
    """A failed reply: aborted, and its charge released (a failed reply costs nothing, as a failed call)."""
    message = await repository.message(session, message_id, lock=True)
    await budgets.release_reply(session, message_id)
    if message is None or message.state != MessageState.in_progress:
        return None
    message.state = MessageState.aborted_by_worker
    message.error = error
    message.work_end_at = _now()
    await session.flush()
    return message_read(message)


async def expire_if_stalled(
    session: AsyncSession, settings: Settings, message_id: uuid.UUID
) -> ErrorResponseEvent | None:
    """Called when a stream has seen nothing for the timeout: time out a message still pending past it (no
    worker took it), or abort one started longer ago (its worker, or the server process it was connected
    to, died without a word); None if neither."""
    message = await repository.message(session, message_id, lock=True)
    if message is None or not _expired(message, settings):
        return None
    if message.state == MessageState.pending:
        message.state = MessageState.timeout
        message.error = "Timeout"
    elif message.state == MessageState.in_progress and message.work_begin_at is not None:
        if _now() - message.work_begin_at <= timedelta(seconds=settings.assistant_message_timeout):
            return None
        message.state = MessageState.aborted_by_worker
        message.error = WORKER_SILENT
        message.work_end_at = _now()
    else:
        return None
    await budgets.release_reply(session, message_id)
    await session.flush()
    return ErrorResponseEvent(error=message.error, message=message_read(message))


# --- the SSE stream -----------------------------------------------------------------------------------------


async def stream_target(
    session: AsyncSession,
    streams: MessageStreams,
    user: InferenceUser,
    chat_id: uuid.UUID,
    message_id: uuid.UUID,
) -> MessageRead | None:
    """The assistant message to stream, or None if it has finished (the route answers 204, as upstream).

    A message that finished moments ago still streams while its events are kept (`message_queue_expire`),
    so a client that opens the stream late gets every token instead of a 204."""
    message = await get_message(session, user, chat_id, message_id)
    if message.role != "assistant":
        raise InferenceError(400, "Only assistant messages can be streamed.")
    if message.state in FINISHED and not await streams.kept(str(message_id)):
        return None
    return message


def sse(event: BaseModel) -> str:
    """One server-sent event frame carrying `event` as JSON."""
    return f"data: {event.model_dump_json()}\n\n"


class Watchdog:
    """Ends a stream that has seen no event for `assistant_message_timeout` seconds when its message is
    stalled (see expire_if_stalled), by publishing the error event its readers then get."""

    def __init__(
        self,
        message_id: uuid.UUID,
        created_at: datetime,
        settings: Settings,
        streams: MessageStreams,
        transaction: Transaction,
    ) -> None:
        self.message_id = message_id
        self.settings = settings
        self.streams = streams
        self.transaction = transaction
        self._timeout = timedelta(seconds=settings.assistant_message_timeout)
        self._quiet_since = created_at  # the last event, or the last look at a message found not stalled

    def saw_event(self) -> None:
        self._quiet_since = _now()

    async def idle(self) -> bool:
        """On an idle tick: True if the message was stalled and its error event is now published."""
        if self._timeout <= timedelta(0) or _now() - self._quiet_since <= self._timeout:
            return False
        self._quiet_since = _now()
        async with self.transaction() as session:
            event = await expire_if_stalled(session, self.settings, self.message_id)
        if event is None:
            return False
        await self.streams.publish(str(self.message_id), event)
        return True


async def events(
    message: MessageRead,
    settings: Settings,
    queue: WorkQueue,
    streams: MessageStreams,
    transaction: Transaction,
) -> AsyncIterator[str]:
    """SSE frames: `pending` with the queue position until the first token, tokens, then the message or an
    error. A message no worker took within the timeout ends with a "Timeout" error; one whose worker went
    silent that long (or died with its server process) is aborted."""
    message_id = str(message.id)
    compat_hash = message.work_parameters.model.compat_hash if message.work_parameters else None
    started = False
    watchdog = Watchdog(message.id, message.created_at, settings, streams, transaction)
    async for batch in streams.listen(message_id, settings.pending_event_interval):
        if batch:
            started = True
            watchdog.saw_event()
            end = next((index for index, event in enumerate(batch) if is_terminal(event)), None)
            # One chunk for the batch: a burst of tokens costs one write, not one each.
            yield "".join(sse(event) for event in (batch if end is None else batch[: end + 1]))
            if end is not None:
                return
            continue
        if await watchdog.idle():
            continue
        if started:
            yield ": ping\n\n"  # keeps proxies from closing a stream whose worker is slow
            continue
        position, size = await queue.position(compat_hash, message_id) if compat_hash else (0, 1)
        yield sse(PendingResponseEvent(queue_position=position, queue_size=size))
