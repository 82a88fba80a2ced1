"""What the moderation and administration pages do beyond the task loop: message edits with their history,
a user's messages, API clients, and the state of the tree manager and the inference workers at a glance."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.auth import service as auth_service
from oasst.collection.messages import service as messages_service
from oasst.collection.messages.schemas import (
    MessageEditRequest,
    MessageFilter,
    MessageListingParams,
    MessageRevision,
)
from oasst.collection.stats import repository as stats_repository
from oasst.collection.stats import service as stats_service
from oasst.collection.stats.schemas import SystemStats, TreeMessageCountStats
from oasst.collection.users import repository as users_repository
from oasst.collection.users import service as users_service
from oasst.config import Settings
from oasst.db.models import ApiClient, Message, User
from oasst.errors import OasstError
from oasst.inference import repository as inference_repository
from oasst.inference import service as inference_service
from oasst.inference.workers import WorkerRegistry
from oasst.protocol import collection as wire
from oasst.protocol.collection import ErrorCode, TreeState
from oasst.protocol.inference import ModelConfig
from oasst.protocol.worker import WorkerMetricsInfo
from oasst.web import service
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
class UserView:
    """A contributor as moderators see them: the row and their newest messages, deleted ones included."""

    user: User
    messages: list[wire.Message]


async def user_view(
    session: AsyncSession, client: ApiClient, user_id: uuid.UUID, max_count: int = 50
) -> UserView:
    user = await users_service.get_visible(session, client, user_id)
    where = MessageFilter(user_id=user.id, include_deleted=True)
    messages = await messages_service.listing(
        session, client, None, where, MessageListingParams(max_count=max_count, include_deleted=True)
    )
    return UserView(user, messages)


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
    for row in await stats_repository.tree_states_by_lang(session):
        by_state.setdefault(row["state"], {})[row["lang"]] = row["count"]
    langs = sorted({lang for counts in by_state.values() for lang in counts})
    return TreeCounts(by_state, langs)


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
    messages: SystemStats
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
        messages=await stats_service.system_stats(session),
        active_trees=active[:ACTIVE_TREES_SHOWN],
        active_tree_count=len(active),
        task_lang=lang,
        availability=availability,
        availability_refused=refused,
        workers=sorted(workers, key=lambda worker: (worker.model.model_id, worker.name)),
        models=_model_loads(workers, registry.models(), queued),
    )
