"""The gateway's work: accounts and their keys, users, chats, budgeted asks answered by the inference
workers through the OpenAI-compatible service, the /v1 meter of an account key, and usage reports."""

from __future__ import annotations

import hmac
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from oasst.collection.auth.service import KeyCache, hash_key
from oasst.config import Settings
from oasst.db.models import GatewayAccount, GatewayChat, GatewayUser
from oasst.db.session import single_statement, transaction
from oasst.gateway import budgets, repository
from oasst.gateway.errors import ACCESS_DENIED, GatewayError
from oasst.gateway.repository import ChatView, MessageView
from oasst.gateway.schemas import (
    MODEL_TYPES,
    AccountBrief,
    AccountCreate,
    AccountRead,
    AccountUpdate,
    AskRead,
    BudgetRead,
    ChatCreate,
    ChatRead,
    MessageCreate,
    MessageRead,
    ModelArgs,
    UsageRow,
    UserBrief,
    UserCreate,
    UserRead,
)
from oasst.inference.deps import InferenceRuntime
from oasst.openai_api import service as openai_service
from oasst.openai_api.service import OpenAIError, Prompt, Submitted
from oasst.protocol.openai import (
    ChatCompletionRequest,
    ChatMessageParam,
    CompletionRequest,
    Usage,
)

KEY_PREFIX = "gw-"
DEFAULT_PREFIXES = {"instruction": "My request: ", "user": "My request: ", "assistant": "Your response: "}
DEFAULT_MODEL_ARGS: dict[str, Any] = {
    "temperature": 0.7,
    "top_p": 1.0,
    "max_tokens": None,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "best_of": 1,
}
# Parrot's ranges, with the messages fixed where Parrot's misstated them (temperature said 0-1).
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
    "best_of": (1, 3),
}
MAX_TOKENS_LIMIT = 65536  # the worker protocol's max_new_tokens


@dataclass(frozen=True)
class Caller:
    """Who a Bearer token is: the admin, or an active account (as it was when the request came in)."""

    admin: bool
    account_id: int = 0
    usage: int = 0
    budget: int = 0


# --- keys and callers ---------------------------------------------------------------------------------------


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def caller(session: AsyncSession, settings: Settings, token: str | None) -> Caller:
    """The admin (OASST_GATEWAY_ADMIN_TOKEN) or the active account owning the key; else 401."""
    if not token:
        raise GatewayError(ACCESS_DENIED, 401)
    admin = settings.gateway_admin_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return Caller(admin=True)
    account = await repository.active_account_by_key_hash(session, hash_key(token))
    if account is None:
        raise GatewayError(ACCESS_DENIED, 401)
    return Caller(admin=False, account_id=account.id, usage=account.usage, budget=account.budget)


def as_account(caller: Caller) -> Caller:
    """The caller, if it is an account: the admin token cannot chat (403, as Flask-HTTPAuth's roles)."""
    if caller.admin:
        raise GatewayError(ACCESS_DENIED, 403)
    return caller


# --- accounts -----------------------------------------------------------------------------------------------


async def _account_reads(
    session: AsyncSession, accounts: Sequence[GatewayAccount], keys: dict[int, str] | None = None
) -> list[AccountRead]:
    members: dict[int, list[UserBrief]] = {account.id: [] for account in accounts}
    for user in await repository.users_of(session, list(members)):
        assert user.account_id is not None
        members[user.account_id].append(UserBrief.model_validate(user))
    return [
        AccountRead.model_validate(
            {
                **AccountBrief.model_validate(account).model_dump(),
                "api_key": (keys or {}).get(account.id),
                "users": members[account.id],
            }
        )
        for account in accounts
    ]


async def _one_account_read(
    session: AsyncSession, account: GatewayAccount, key: str | None = None
) -> AccountRead:
    reads = await _account_reads(session, [account], {account.id: key} if key else None)
    return reads[0]


async def list_accounts(
    session: AsyncSession, active: str, usage: str | None, name: str | None
) -> list[AccountRead]:
    """`active` is "true" unless it says otherwise (any other value means inactive), as Parrot reads it."""
    usage_above: int | None = None
    if usage is not None:
        try:
            usage_above = int(usage)
        except ValueError:
            usage_above = None
        if usage_above is None or abs(usage_above) >= 2**63:  # beyond a BIGINT is no valid usage either
            raise GatewayError(f"Usage {usage} is not a valid integer")
    accounts = await repository.accounts(session, active.lower() == "true", usage_above, name)
    return await _account_reads(session, accounts)


async def _assign_users(session: AsyncSession, account: GatewayAccount, user_ids: list[int]) -> None:
    """Make `user_ids` the account's users (the others leave it); an unknown id refuses the whole change."""
    wanted = await repository.users_by_id(session, user_ids)
    for user_id in user_ids:
        if user_id not in wanted:
            raise GatewayError(f"User with id {user_id} does not exist")
    now = datetime.now(UTC)
    for user in await repository.users_of(session, [account.id]):
        if user.id not in wanted:
            user.account_id, user.updated_at = None, now
    for user in wanted.values():
        if user.account_id != account.id:
            user.account_id, user.updated_at = account.id, now


async def _flush_unique(session: AsyncSession, message: str) -> None:
    """Flush; a unique name or code taken meanwhile by a concurrent request is the same 400 as a taken one."""
    try:
        await session.flush()
    except IntegrityError:
        raise GatewayError(message) from None


async def create_account(session: AsyncSession, settings: Settings, body: AccountCreate) -> AccountRead:
    """A new account and its key, shown in this answer only (users are attached, unlike Parrot's quirk)."""
    taken = f"Account with name {body.name} already exists"
    if await repository.account_by_name(session, body.name) is not None:
        raise GatewayError(taken)
    key = new_key()
    account = GatewayAccount(
        name=body.name,
        course=body.course,
        budget=settings.gateway_default_budget if body.budget is None else body.budget,
        api_key_hash=hash_key(key),
        usage=0,
        reserved=0,
        active=True,
        created_at=datetime.now(UTC),
    )
    session.add(account)
    await _flush_unique(session, taken)
    if body.users is not None:
        await _assign_users(session, account, body.users)
        await session.flush()
    return await _one_account_read(session, account, key)


async def _active_account(session: AsyncSession, account_id: int) -> GatewayAccount:
    account = await repository.account(session, account_id, active_only=True)
    if account is None:
        raise GatewayError(f"Account with id {account_id} does not exist")
    return account


async def update_account(session: AsyncSession, account_id: int, body: AccountUpdate) -> AccountRead:
    account = await _active_account(session, account_id)
    taken = f"Account with name {body.name} already exists"
    if body.name is not None and body.name != account.name:
        if await repository.account_by_name(session, body.name) is not None:
            raise GatewayError(taken)
        account.name = body.name
    if body.course is not None:
        account.course = body.course
    if body.budget is not None:
        account.budget = body.budget
    if body.users is not None:
        await _assign_users(session, account, body.users)
    account.updated_at = datetime.now(UTC)
    await _flush_unique(session, taken)
    return await _one_account_read(session, account)


async def rotate_key(session: AsyncSession, account_id: int) -> AccountRead:
    """A new key for an active account; the old one stops working at once."""
    account = await _active_account(session, account_id)
    key = new_key()
    account.api_key_hash, account.updated_at = hash_key(key), datetime.now(UTC)
    await session.flush()
    return await _one_account_read(session, account, key)


async def delete_account(session: AsyncSession, account_id: int) -> AccountRead:
    """Deactivate (Parrot's soft delete): its key is refused from the next request on."""
    account = await repository.account(session, account_id, active_only=False)
    if account is None:
        raise GatewayError(f"Account with id {account_id} does not exist")
    account.active, account.updated_at = False, datetime.now(UTC)
    await session.flush()
    return await _one_account_read(session, account)


async def num_chats(session: AsyncSession, account_id: int) -> dict[str, int]:
    return {"num_chats": await repository.count_chats(session, account_id)}


# --- users --------------------------------------------------------------------------------------------------


async def _user_reads(session: AsyncSession, users: Sequence[GatewayUser]) -> list[UserRead]:
    accounts = await repository.accounts_by_id(session, {u.account_id for u in users if u.account_id})
    return [
        UserRead.model_validate(
            {
                **UserBrief.model_validate(user).model_dump(),
                "account": AccountBrief.model_validate(accounts[user.account_id])
                if user.account_id
                else None,
            }
        )
        for user in users
    ]


async def list_users(session: AsyncSession) -> list[UserRead]:
    return await _user_reads(session, await repository.users(session))


async def create_user(session: AsyncSession, body: UserCreate) -> UserRead:
    taken = f"User with code {body.code} already exists"
    if await repository.user_by_code(session, body.code) is not None:
        raise GatewayError(taken)
    if body.account_id is not None:
        await _active_account(session, body.account_id)
    user = GatewayUser(
        code=body.code, name=body.name, account_id=body.account_id, created_at=datetime.now(UTC)
    )
    session.add(user)
    await _flush_unique(session, taken)
    return (await _user_reads(session, [user]))[0]


# --- chats --------------------------------------------------------------------------------------------------


async def list_chats(session: AsyncSession, account_id: int, name: str | None) -> list[ChatRead]:
    chats = await repository.chats(session, account_id, name)
    return [ChatRead.model_validate(chat) for chat in chats]


async def create_chat(session: AsyncSession, account_id: int, body: ChatCreate) -> ChatRead:
    model_type = body.model_type if body.model_type is not None else "chat_completion"
    if model_type not in MODEL_TYPES:
        raise GatewayError(f"Model type {model_type} is not supported")
    chat = GatewayChat(
        name=body.name,
        account_id=account_id,
        model_type=model_type,
        model=body.model,
        instruction_prefix=_or(body.instruction_prefix, DEFAULT_PREFIXES["instruction"]),
        user_prefix=_or(body.user_prefix, DEFAULT_PREFIXES["user"]),
        assistant_prefix=_or(body.assistant_prefix, DEFAULT_PREFIXES["assistant"]),
        created_at=datetime.now(UTC),
    )
    session.add(chat)
    await session.flush()
    return ChatRead.model_validate(chat)


def _or(value: str | None, default: str) -> str:
    return default if value is None else value


class _Owned(Protocol):
    @property
    def account_id(self) -> int: ...


_Chat = TypeVar("_Chat", bound=_Owned)


def _owned(chat: _Chat | None, account_id: int, chat_id: int) -> _Chat:
    if chat is None:
        raise GatewayError(f"Chat with id {chat_id} does not exist")
    if chat.account_id != account_id:
        raise GatewayError(f"Chat with id {chat_id} does not belong to account {account_id}")
    return chat


async def own_chat(session: AsyncSession, account_id: int, chat_id: int) -> GatewayChat:
    return _owned(await repository.chat(session, chat_id), account_id, chat_id)


async def own_chat_with_messages(
    session: AsyncSession, account_id: int, chat_id: int
) -> tuple[ChatView, list[MessageView]]:
    chat, messages = await repository.chat_with_messages(session, chat_id)
    return _owned(chat, account_id, chat_id), messages


async def list_messages(session: AsyncSession, account_id: int, chat_id: int) -> list[MessageRead]:
    _chat, messages = await own_chat_with_messages(session, account_id, chat_id)
    return [MessageRead.model_validate(message) for message in messages]


async def num_messages(session: AsyncSession, account_id: int, chat_id: int) -> dict[str, int]:
    await own_chat(session, account_id, chat_id)
    return {"num_messages": await repository.count_messages(session, chat_id)}


async def budget(session: AsyncSession, account_id: int) -> BudgetRead:
    account = await _active_account(session, account_id)
    return BudgetRead(usage=account.usage, limit=account.budget)


# --- asking -------------------------------------------------------------------------------------------------


def check_model_args(args: ModelArgs | None) -> dict[str, Any]:
    """Every key filled from Parrot's defaults; a value out of its range is a 400 naming the range."""
    given = args.model_dump(exclude_none=True) if args is not None else {}
    filled = {**DEFAULT_MODEL_ARGS, **given}
    for key, (low, high) in RANGES.items():
        if not low <= filled[key] <= high:
            raise GatewayError(f"`{key}` must be between {low} and {high}")
    max_tokens = filled["max_tokens"]
    if max_tokens is not None and not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise GatewayError(f"`max_tokens` must be between 1 and {MAX_TOKENS_LIMIT}, or null")
    return filled


def _model_name(runtime: InferenceRuntime, chat: ChatView) -> str:
    """The chat's model, else the configured default, else the first model the workers serve."""
    name = chat.model or runtime.settings.gateway_default_model
    if name is not None:
        return name
    served = sorted(runtime.workers.models())
    if not served:
        raise GatewayError("No model is being served right now; try again later", 503)
    return served[0]


def text_prompt(chat: ChatView, turns: list[tuple[str, str]]) -> str:
    """Parrot's text_completion prompt: one prefixed line per message, then the assistant prefix."""
    prefixes = {
        "system": chat.instruction_prefix,
        "user": chat.user_prefix,
        "assistant": chat.assistant_prefix,
    }
    lines = "\n".join(prefixes[role] + content for role, content in turns)
    return lines + "\n" + chat.assistant_prefix


def _request(
    chat: ChatView, model: str, turns: list[tuple[str, str]], args: dict[str, Any], max_tokens: int
) -> ChatCompletionRequest | CompletionRequest:
    sampling = {
        "model": model,
        "temperature": args["temperature"],
        "top_p": args["top_p"],
        "max_tokens": max_tokens,
    }
    try:
        if chat.model_type == "chat_completion":
            messages = [ChatMessageParam(role=role, content=text) for role, text in turns]
            return ChatCompletionRequest.model_validate({**sampling, "messages": messages})
        return CompletionRequest.model_validate({**sampling, "prompt": text_prompt(chat, turns)})
    except ValidationError as error:  # e.g. a chat longer than the model API takes
        raise GatewayError(f"The chat exceeds a limit of the model API: {error}") from None


def _refusal(error: OpenAIError) -> GatewayError:
    """A model call's failure as Parrot reports it: bad input is a 400, a busy or failing worker keeps its
    status (429, 502, 503, 504: the ones gpt_wrapper retries, most of them)."""
    status = error.status if error.status >= 429 else 400
    return GatewayError(error.body.error.message, status)


def _prompt(request: ChatCompletionRequest | CompletionRequest) -> Prompt:
    if isinstance(request, ChatCompletionRequest):
        return openai_service.chat_prompt(request)
    return openai_service.completion_prompt(request)


async def _answer(runtime: InferenceRuntime, submitted: Submitted) -> tuple[str, Usage]:
    """Queue the stored work and wait for the worker's whole answer."""
    await openai_service.dispatch(runtime, submitted)
    text, finished = await openai_service.collect(runtime, submitted)
    return text, openai_service.usage_of(submitted, finished)


async def known_account(
    session: AsyncSession, settings: Settings, keys: KeyCache[int], token: str | None
) -> tuple[int, str]:
    """The account id and key hash of an account's key: remembered from an earlier call or looked up (the
    reservation checks the key again in its own statement). The admin token cannot chat (403); else 401."""
    key_hash = hash_key(token or "")
    account_id = keys.get(key_hash)
    if account_id is None:
        account_id = as_account(await caller(session, settings, token)).account_id
        keys.put(key_hash, account_id)
    return account_id, key_hash


async def ask(
    runtime: InferenceRuntime,
    rng: random.Random,
    keys: KeyCache[int],
    token: str | None,
    chat_id: int,
    body: MessageCreate,
) -> AskRead:
    """Parrot's send-message, with a budget that holds. One transaction checks the key, reads the chat and
    its history, stores the work for the worker and reserves the call's bound on its reply; the worker's
    answer settles that reservation to the real usage (a failed or timed-out call releases it), and one more
    statement stores the instruction, question and reply and reads the account's balance after the call. A
    failed call stores nothing of the chat."""
    settings = runtime.settings
    async with runtime.transaction() as session:
        account_id, key_hash = await known_account(session, settings, keys, token)
        chat, history = await own_chat_with_messages(session, account_id, chat_id)
        args = check_model_args(body.model_args)
        turns = [(message.role, message.content) for message in history]
        new_turns = ([("system", body.instruction)] if body.instruction else []) + [("user", body.content)]
        turns += new_turns
        max_tokens = args["max_tokens"] or settings.gateway_default_max_tokens
        request = _request(chat, _model_name(runtime, chat), turns, args, max_tokens)
        try:
            work = await openai_service.prepare(runtime, request, _prompt(request), max_tokens, rng)
        except OpenAIError as error:
            raise _refusal(error) from error
        submitted = await openai_service.stage(session, work)
        await budgets.reserve(
            session,
            settings,
            account_id,
            key_hash,
            budgets.cost_bound([text for _, text in turns], max_tokens),
            "chat",
            reply_id=submitted.message_id,
            prompt_estimate=submitted.prompt_tokens,
        )
    try:
        content, usage = await _answer(runtime, submitted)
    except OpenAIError as error:
        raise _refusal(error) from error
    now = datetime.now(UTC)
    asked = [{"role": role, "content": text, "model_args": {}, "usage": {}} for role, text in new_turns]
    reply = {"role": "assistant", "content": content, "model_args": args, "usage": usage.model_dump()}
    async with runtime.transaction() as session:
        await single_statement(session)
        stored = await repository.store_turns(session, account_id, chat.id, [*asked, reply], now)
    over = stored.usage >= settings.gateway_soft_limit * stored.budget
    return AskRead(
        **reply, id=stored.reply_id, chat_id=chat.id, created_at=now, updated_at=None, over_soft_limit=over
    )


# --- the same accounts on /v1 -------------------------------------------------------------------------------


class AccountMeter:
    """Charges an account for a /v1 call through the same budget (the openai_api Meter protocol)."""

    def __init__(self, settings: Settings, account_id: int, key_hash: str) -> None:
        self.settings = settings
        self.account_id = account_id
        self.key_hash = key_hash

    async def reserve(
        self, session: AsyncSession, prompt: Prompt, max_tokens: int, reply_id: uuid.UUID
    ) -> None:
        texts = [text for _, text in prompt.turns] + ([prompt.system] if prompt.system else [])
        try:
            await budgets.reserve(
                session,
                self.settings,
                self.account_id,
                self.key_hash,
                budgets.cost_bound(texts, max_tokens),
                "v1",
                reply_id=reply_id,
                prompt_estimate=prompt.estimated_tokens(),
            )
        except GatewayError as error:
            if error.status == 401:
                raise OpenAIError(
                    401, "This API key's account is deactivated.", code="invalid_api_key"
                ) from None
            raise OpenAIError(
                429, error.message, type_="insufficient_quota", code="insufficient_quota"
            ) from None


async def account_meter(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    keys: KeyCache[int] | None,
    api_key: str | None,
) -> AccountMeter | None:
    """The meter of the active account owning `api_key` (remembered in `keys` from an earlier call, if
    given), or None."""
    if not api_key:
        return None
    key_hash = hash_key(api_key)
    account_id = keys.get(key_hash) if keys is not None else None
    if account_id is None:
        async with transaction(sessions) as session:
            account = await repository.active_account_by_key_hash(session, key_hash)
        if account is None:
            return None
        account_id = account.id
        if keys is not None:
            keys.put(key_hash, account_id)
    return AccountMeter(settings, account_id, key_hash)


# --- usage reports ------------------------------------------------------------------------------------------


async def usage_report(
    session: AsyncSession, since: date | None = None, until: date | None = None, account: str | None = None
) -> list[UsageRow]:
    """Charged tokens per account and UTC day (both the Parrot API and /v1)."""
    rows = await repository.usage_by_day(session, since, until, account)
    return [
        UsageRow(
            account_id=account_id,
            account=name,
            course=course,
            day=day.isoformat(),
            requests=int(requests),
            prompt_tokens=int(prompt),
            completion_tokens=int(completion),
            charged_tokens=int(charged),
        )
        for account_id, name, course, day, requests, prompt, completion, charged in rows
    ]


# --- the budget meter of a person who joined an account -----------------------------------------------------


@dataclass(frozen=True)
class BudgetMeter:
    """An account's budget as the web UI shows it to a person whose replies it pays for."""

    name: str
    usage: int
    budget: int
    soft_limit: float  # tokens: from here on the meter warns (`gateway_soft_limit` of the budget)

    @property
    def over_soft_limit(self) -> bool:
        return self.usage >= self.soft_limit

    @property
    def used_up(self) -> bool:
        return self.usage >= self.budget


async def budget_meter(session: AsyncSession, settings: Settings, key_hash: str) -> BudgetMeter | None:
    """The meter of the active account `key_hash` opens; None if the key changed or the account closed."""
    account = await repository.active_account_by_key_hash(session, key_hash)
    if account is None:
        return None
    soft_limit = settings.gateway_soft_limit * account.budget
    return BudgetMeter(account.name, account.usage, account.budget, soft_limit)
