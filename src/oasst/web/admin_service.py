"""What the moderation and administration pages do beyond the task loop: message edits with their history,
a user's messages and role, the roles of OAuth accounts, API clients, and the state of the tree manager and
the inference workers at a glance."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.accounts import service as accounts
from oasst.collection.auth import service as auth_service
from oasst.collection.messages import service as messages_service
from oasst.collection.messages.schemas import (
    MessageEditRequest,
    MessageFilter,
    MessageListingParams,
    MessageRevision,
)
from oasst.collection.stats import service as stats_service
from oasst.collection.stats.schemas import TreeMessageCountStats
from oasst.collection.users import repository as users_repository
from oasst.collection.users import service as users_service
from oasst.config import Settings
from oasst.db.models import ApiClient, Message, OAuthAccount, User
from oasst.errors import OasstError
from oasst.inference import repository as inference_repository
from oasst.inference import service as inference_service
from oasst.inference.workers import WorkerRegistry
from oasst.protocol import collection as wire
from oasst.protocol.collection import ErrorCode, TreeState
from oasst.protocol.inference import ModelConfig
from oasst.protocol.worker import WorkerMetricsInfo
from oasst.web import repository, service
from oasst.web.errors import core_text
from oasst.web.i18n import N_
from oasst.web.sessions import SignedIn

ACTIVE_TREES_SHOWN = 50

# --- messages ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    """A stored version of a message's text and the display name of who wrote it ("" if unknown)."""

    revision: MessageRevision
    author: str


@dataclass(frozen=True)
class MessageEdit:
    """A message as its edit page shows it: its text and every stored version, the original first."""

    message: Message
    revisions: list[Revision]


async def message_edit(session: AsyncSession, message_id: uuid.UUID) -> MessageEdit:
    message = await messages_service.get(session, message_id)
    revisions = await messages_service.history(session, message_id, None)
    authors: dict[uuid.UUID | None, str] = {}
    for user_id in {revision.user_id for revision in revisions if revision.user_id is not None}:
        user = await users_repository.by_id(session, user_id)
        if user is not None:
            authors[user_id] = user.display_name
    return MessageEdit(
        message, [Revision(revision, authors.get(revision.user_id, "")) for revision in revisions]
    )


async def edit(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    moderator: SignedIn,
    message_id: uuid.UUID,
    text: str,
) -> None:
    """Replace the message's text in the moderator's name (the first edit keeps the original)."""
    request = MessageEditRequest(user=service.wire_user(moderator), new_content=text)
    await messages_service.edit(session, client, settings, message_id, request)


@dataclass(frozen=True)
class RoleControl:
    """A contributor's role on the web UI, and the admin page where it is changed."""

    role: str
    href: str


async def role_control(
    session: AsyncSession, settings: Settings, client: ApiClient, user: User
) -> RoleControl | None:
    """Where the role of the person behind `user` is kept: their local account or their OAuth account. None
    for the development sign-in (its role is chosen at each sign-in) and for other API clients' users."""
    sign_in = service.sign_in_of(client, user)
    if sign_in is None or sign_in[0] == "dev":
        return None
    kind, account_id = sign_in
    if kind == "local":
        try:
            local = await accounts.get_by_id(session, uuid.UUID(account_id))
        except ValueError:
            return None
        return RoleControl(local.role, f"/admin/accounts#account-{local.username}") if local else None
    oauth = await repository.oauth_account(session, kind, account_id)
    if oauth is None:
        return None
    return RoleControl(service.oauth_role(settings, oauth), f"/admin/people?{urlencode({'q': account_id})}")


@dataclass(frozen=True)
class UserView:
    """A contributor as moderators see them: the row, their newest messages (deleted ones included) and
    their role on the web UI (if they sign in here)."""

    user: User
    messages: list[wire.Message]
    role: RoleControl | None


async def user_view(
    session: AsyncSession, settings: Settings, client: ApiClient, user_id: uuid.UUID, max_count: int = 50
) -> UserView:
    user = await users_service.get_visible(session, client, user_id)
    where = MessageFilter(user_id=user.id, include_deleted=True)
    messages = await messages_service.listing(
        session, client, None, where, MessageListingParams(max_count=max_count, include_deleted=True)
    )
    return UserView(user, messages, await role_control(session, settings, client, user))


# --- roles of OAuth accounts -------------------------------------------------------------------------------

OAUTH_ACCOUNTS_SHOWN = 100


@dataclass(frozen=True)
class OAuthPerson:
    """An OAuth account as the admins see it: its role now and the least the settings give it."""

    account: OAuthAccount
    role: str
    configured: str


async def oauth_people(session: AsyncSession, settings: Settings, search: str) -> list[OAuthPerson]:
    """The OAuth accounts whose name contains `search` or whose id it is (the first ones, staff first)."""
    rows = await repository.oauth_accounts(session, search.strip(), OAUTH_ACCOUNTS_SHOWN)
    return [
        OAuthPerson(
            row,
            service.oauth_role(settings, row),
            service.configured_role(settings, row.provider, row.account_id),
        )
        for row in rows
    ]


async def set_oauth_role(
    session: AsyncSession, settings: Settings, admin: SignedIn, account_id: uuid.UUID, role: str
) -> OAuthAccount:
    """Give an OAuth account a role: never one's own (an admin cannot demote themselves by mistake, so the
    last admin stays), never below the one the settings give it."""
    account = await repository.oauth_account_by_id(session, account_id)
    if account is None:
        raise OasstError(N_("There is no such person."), ErrorCode.GENERIC_ERROR, 404)
    if (admin.kind, admin.id) == (account.provider, account.account_id):
        raise service.bad_input(N_("You cannot change your own role: ask another admin."))
    new = accounts.check_role(role)
    configured = service.configured_role(settings, account.provider, account.account_id)
    if accounts.ROLES.index(new) < accounts.ROLES.index(configured):
        raise service.bad_input(
            N_("The server's settings (ADMIN_USERS, MODERATOR_USERS) give this person a higher role.")
        )
    account.role = new
    await session.flush()
    return account


# --- API clients -------------------------------------------------------------------------------------------


async def create_client(
    session: AsyncSession,
    description: str,
    frontend_type: str,
    admin_email: str,
    *,
    trusted: bool,
) -> auth_service.NewApiClient:
    """A new API client; its key is in the answer only. The web UI's own frontend type stays its own."""
    description, frontend_type = description.strip(), frontend_type.strip()
    if not description:
        raise service.bad_input(N_("Please describe the client"))
    if frontend_type == service.WEB_FRONTEND_TYPE:
        raise service.bad_input(N_("This frontend type belongs to the web UI itself"))
    return await auth_service.create_client(
        session,
        description,
        trusted=trusted,
        frontend_type=frontend_type,
        admin_email=admin_email.strip() or None,
    )


async def set_client_enabled(
    session: AsyncSession, web_client: ApiClient, client_id: uuid.UUID, enabled: bool
) -> ApiClient:
    if client_id == web_client.id and not enabled:
        raise service.bad_input(N_("The web UI's own client cannot be switched off"))
    return await auth_service.set_enabled(session, client_id, enabled)


# --- status ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeCounts:
    """Message trees by state and by the language of their prompt."""

    by_state: dict[str, dict[str, int]]  # state -> language -> count, every known state present
    langs: list[str]

    def total(self, state: str) -> int:
        return sum(self.by_state[state].values())

    def lang_total(self, lang: str) -> int:
        return sum(counts.get(lang, 0) for counts in self.by_state.values())

    def grand_total(self) -> int:
        return sum(sum(counts.values()) for counts in self.by_state.values())


async def tree_counts(session: AsyncSession) -> TreeCounts:
    by_state: dict[str, dict[str, int]] = {state.value: {} for state in TreeState}
    for state, lang, count in await repository.trees_by_state_and_lang(session):
        by_state.setdefault(state, {})[lang] = count
    langs = sorted({lang for counts in by_state.values() for lang in counts})
    return TreeCounts(by_state, langs)


@dataclass(frozen=True)
class MessageCounts:
    """Live and deleted messages (one pass over the table: the stats API's language split and tree count
    would take two more, and the page shows neither)."""

    active: int
    deleted: int


@dataclass(frozen=True)
class ConnectedWorker:
    """A worker connected to this server process."""

    name: str
    model: ModelConfig
    max_parallel: int
    in_flight: int
    metrics: WorkerMetricsInfo | None


@dataclass(frozen=True)
class ModelLoad:
    """One model (compat hash): its workers here, their work in progress, and the messages waiting for it."""

    model_id: str
    compat_hash: str
    workers: int
    capacity: int
    in_flight: int
    queued: int


@dataclass(frozen=True)
class Status:
    trees: TreeCounts
    messages: MessageCounts
    active_trees: list[TreeMessageCountStats]
    active_tree_count: int
    task_lang: str
    availability: dict[str, int] | None
    availability_refused: str | None
    workers: list[ConnectedWorker]
    models: list[ModelLoad]


def _model_loads(
    workers: list[ConnectedWorker], served: dict[str, ModelConfig], queued: dict[str, int]
) -> list[ModelLoad]:
    """Every model that is served (here or, with Redis, by another process) or has messages waiting."""
    names = {model.compat_hash: model.model_id for model in served.values()}
    names |= {worker.model.compat_hash: worker.model.model_id for worker in workers}
    for compat_hash in queued:
        names.setdefault(compat_hash, compat_hash)
    count, capacity, in_flight = Counter[str](), Counter[str](), Counter[str]()
    for worker in workers:
        count[worker.model.compat_hash] += 1
        capacity[worker.model.compat_hash] += worker.max_parallel
        in_flight[worker.model.compat_hash] += worker.in_flight
    return sorted(
        (
            ModelLoad(
                name,
                compat_hash,
                count[compat_hash],
                capacity[compat_hash],
                in_flight[compat_hash],
                queued.get(compat_hash, 0),
            )
            for compat_hash, name in names.items()
        ),
        key=lambda load: (load.model_id, load.compat_hash),
    )


async def status(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    rng: random.Random,
    admin: SignedIn,
    lang: str,
    registry: WorkerRegistry,
) -> Status:
    """Trees, messages and the admin's own task availability in `lang`; workers and queues of the chat.

    Availability comes first: it may draw a prompt in the lottery, and the tree counts then include that."""
    try:
        availability: dict[str, int] | None = await service.availability(
            session, client, settings, rng, admin, lang
        )
        refused = None
    except OasstError as failure:
        if failure.code not in (ErrorCode.USER_DISABLED, ErrorCode.USER_HAS_NOT_ACCEPTED_TOS):
            raise
        availability, refused = None, core_text(failure)
    names = {worker.id: worker.name for worker in await inference_service.list_workers(session)}
    workers = [
        ConnectedWorker(
            names.get(connection.worker_id, str(connection.worker_id)),
            connection.model,
            connection.info.config.max_parallel_requests,
            len(connection.in_flight),
            connection.metrics,
        )
        for connection in registry
    ]
    queued = await inference_repository.pending_by_compat_hash(session)
    active = await stats_service.tree_message_counts(session, only_active=True)
    return Status(
        trees=await tree_counts(session),
        messages=MessageCounts(*await repository.message_counts(session)),
        active_trees=active[:ACTIVE_TREES_SHOWN],
        active_tree_count=len(active),
        task_lang=lang,
        availability=availability,
        availability_refused=refused,
        workers=sorted(workers, key=lambda worker: (worker.model.model_id, worker.name)),
        models=_model_loads(workers, registry.models(), queued),
    )
