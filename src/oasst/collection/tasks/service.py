"""The task flow: hand out a task, bind it (ack), refuse it (nack), take its answer (interaction)."""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.deps import FrontendIdentity
from oasst.collection.labels import service as labels_service
from oasst.collection.messages import service as messages_service
from oasst.collection.tasks import repository
from oasst.collection.trees import repository as trees_repository
from oasst.collection.trees import service as trees
from oasst.collection.trees.repository import ActiveMessage, TreeMessage
from oasst.collection.trees.service import LABEL_TASKS, RANK_TASKS, REPLY_STATES, Busy, Pools, Snapshot
from oasst.collection.users import service as users
from oasst.config import Settings, TreeManagerConfig
from oasst.db.base import utcnow
from oasst.db.models import (
    ApiClient,
    Journal,
    Message,
    MessageReaction,
    MessageTreeState,
    Task,
    TextLabels,
    User,
)
from oasst.errors import OasstError
from oasst.protocol import collection as wire
from oasst.protocol.collection import ErrorCode, LabelTaskDisposition, LabelTaskMode, TaskRequestType

AnyTaskModel = (
    wire.InitialPromptTask
    | wire.PrompterReplyTask
    | wire.AssistantReplyTask
    | wire.RankPrompterRepliesTask
    | wire.RankAssistantRepliesTask
    | wire.LabelInitialPromptTask
    | wire.LabelAssistantReplyTask
    | wire.LabelPrompterReplyTask
)

# The payload type names upstream stores in task.payload_type (SQL and stats rely on them).
PAYLOAD_TYPES: dict[str, str] = {
    "initial_prompt": "InitialPromptPayload",
    "prompter_reply": "PrompterReplyPayload",
    "assistant_reply": "AssistantReplyPayload",
    "rank_prompter_replies": "RankPrompterRepliesPayload",
    "rank_assistant_replies": "RankAssistantRepliesPayload",
    "label_initial_prompt": "LabelInitialPromptPayload",
    "label_prompter_reply": "LabelPrompterReplyPayload",
    "label_assistant_reply": "LabelAssistantReplyPayload",
}
REPLY_ROLES = {
    "InitialPromptPayload": "prompter",
    "PrompterReplyPayload": "prompter",
    "AssistantReplyPayload": "assistant",
}
SKIP_EMOJIS = {
    **dict.fromkeys(("PrompterReplyPayload", "AssistantReplyPayload"), "_skip_reply"),
    **dict.fromkeys(LABEL_TASKS, "_skip_labeling"),
    **dict.fromkeys(RANK_TASKS, "_skip_ranking"),
}
# Weights of the random draw among task kinds, as upstream.
RANDOM_WEIGHTS = {"rank": 10.0, "label_reply": 5.0, "label_prompt": 5.0, "reply": 2.0, "prompt": 0.01}


def _not_available(kind: str) -> OasstError:
    return OasstError(
        f"No tasks of type '{kind}' are currently available.",
        ErrorCode.TASK_REQUESTED_TYPE_NOT_AVAILABLE,
        503,
    )


# --- hand-out ---------------------------------------------------------------------------------------------


async def _pools(
    session: AsyncSession, user: User, lang: str, settings: Settings, rng: random.Random, lottery: int
) -> tuple[Snapshot, Pools]:
    config = settings.tree_manager
    snap = await trees.snapshot(session, lang, user.id, settings)
    woke, new_prompts = await trees.run_lottery(session, lang, snap.counts, config, lottery, rng)
    if woke:
        snap = await trees.snapshot(session, lang, user.id, settings)
    if await trees.auto_moderate(session, snap.trees, snap.messages, config, rng):
        snap = await trees.snapshot(session, lang, user.id, settings)
    return snap, trees.compute_pools(snap, user.id, lang, settings, new_prompts)


async def availability(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    user: wire.User | None,
    lang: str,
    rng: random.Random,
) -> dict[str, int]:
    """How many tasks of each type `user` could get in `lang` (runs the lottery for at most one tree)."""
    row = await users.get_active(session, client, user, settings)
    _snap, pools = await _pools(session, row, lang, settings, rng, lottery=1)
    return pools.availability()


async def request_task(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    request: wire.TaskRequest,
    rng: random.Random,
) -> AnyTaskModel:
    """Pick the next task for the user and store it; 503/1006 when there is none of that type."""
    user = await users.get_active(session, client, request.user, settings)
    lang = request.lang or "en"
    config = settings.tree_manager
    snap, pools = await _pools(session, user, lang, settings, rng, lottery=2)
    if snap.footprint.pending >= config.max_pending_tasks_per_user:
        raise OasstError("User has too many pending tasks.", ErrorCode.TASK_TOO_MANY_PENDING)
    plan = [
        (family, candidate)
        for family, role in _families(request.type, pools, rng)
        for candidate in _candidates(family, role, pools, config, rng)[:MAX_CLAIMS]
    ]
    claimed = await _claim_first(session, plan, lang, settings)
    if claimed is None:
        raise _not_available(request.type.value)
    family, candidate, messages = claimed
    shown = _Shown(user.id, {m.id: m for m in messages}, snap.footprint.emojis)
    return await _store_task(session, client, user, request, lang, family, candidate, shown, settings, rng)


async def _claim_first(
    session: AsyncSession, plan: list[tuple[str, ActiveMessage | None]], lang: str, settings: Settings
) -> tuple[str, ActiveMessage | None, list[TreeMessage]] | None:
    """The first slot of `plan` (kind of task, message) this request can claim, with its tree's messages.

    A slot another request is checking is passed over, not queued for: concurrent hand-outs see the same
    snapshot, and waiting in turn for its likeliest slot made a convoy (a task request's p99 was five times
    its p50). Only when every slot was busy is one waited for, as then this transaction holds no slot lock
    and two waiters can never wait for each other.
    """
    busy = []
    for family, candidate in plan:
        claimed = await trees.claim(session, family, candidate, lang, settings, wait=False)
        if claimed is Busy.BUSY:
            busy.append((family, candidate))
        elif claimed is not None:
            return family, candidate, claimed
    for i, (family, candidate) in enumerate(busy):
        wait = i == 0 and len(busy) == len(plan)
        claimed = await trees.claim(session, family, candidate, lang, settings, wait=wait)
        if claimed is not None and claimed is not Busy.BUSY:
            return family, candidate, claimed
    return None


# How many candidates of one kind a request tries to claim before it gives up on that kind.
MAX_CLAIMS = 5
# Request type -> (family of pool, role of the message the task is about).
FAMILIES: dict[str, tuple[str, str | None]] = {
    "rank_prompter_replies": ("rank", "assistant"),
    "rank_assistant_replies": ("rank", "prompter"),
    "label_assistant_reply": ("label_reply", "assistant"),
    "label_prompter_reply": ("label_reply", "prompter"),
    "label_initial_prompt": ("label_prompt", None),
    "prompter_reply": ("reply", "assistant"),
    "assistant_reply": ("reply", "prompter"),
    "initial_prompt": ("prompt", None),
}


def _families(requested: TaskRequestType, pools: Pools, rng: random.Random) -> list[tuple[str, str | None]]:
    """The kinds of task to try, in order: the requested one, or for `random` a weighted draw of the rest."""
    if requested != TaskRequestType.random:
        if pools.availability().get(requested.value, 0) <= 0:
            raise _not_available(requested.value)
        return [FAMILIES[requested.value]]
    available = {
        "rank": bool(pools.rankable_parents),
        "label_reply": bool(pools.replies_to_review),
        "label_prompt": bool(pools.prompts_to_review),
        "reply": bool(pools.extendible_parents) and pools.missing_replies > 0,
        "prompt": pools.new_prompts > 0,
    }
    order: list[tuple[str, str | None]] = []
    kinds = [kind for kind, ok in available.items() if ok]
    while kinds:
        kind = rng.choices(kinds, weights=[RANDOM_WEIGHTS[k] for k in kinds])[0]
        kinds.remove(kind)
        order.append((kind, None))
    return order


def _candidates(
    family: str, role: str | None, pools: Pools, config: TreeManagerConfig, rng: random.Random
) -> list[ActiveMessage | None]:
    """The messages a task of this kind could be about, in the order to try them (None: a new prompt)."""
    if family == "prompt":
        return [None]
    pool = {
        "rank": pools.rankable_parents,
        "label_reply": pools.replies_to_review,
        "label_prompt": pools.prompts_to_review,
        "reply": pools.extendible_parents,
    }[family]
    candidates: list[ActiveMessage | None] = [m for m in pool if role in (None, m.role)]
    rng.shuffle(candidates)
    if family == "reply":
        lonely = [m for m in pools.lonely_parents if role in (None, m.role)]
        if (
            lonely
            and config.lonely_children_count > 1
            and config.p_lonely_child_extension > 0
            and rng.random() < config.p_lonely_child_extension
        ):
            first = rng.choice(lonely)
            candidates.remove(first)
            candidates.insert(0, first)
    return candidates


@dataclass(frozen=True, slots=True)
class _Shown:
    """What a task shows its user: the claimed tree's live messages, and the user's own emojis."""

    viewer_id: uuid.UUID
    tree: dict[uuid.UUID, TreeMessage]
    emojis: dict[uuid.UUID, list[str]]

    def thread(self, message: TreeMessage) -> list[TreeMessage]:
        """The messages from the root down to `message`, root first."""
        chain = [message]
        while chain[-1].parent_id is not None and chain[-1].parent_id in self.tree:
            chain.append(self.tree[chain[-1].parent_id])
        return chain[::-1]

    def conversation(self, messages: list[TreeMessage]) -> wire.Conversation:
        return messages_service.conversation(messages, self.viewer_id, self.emojis)


async def _store_task(
    session: AsyncSession,
    client: ApiClient,
    user: User,
    request: wire.TaskRequest,
    lang: str,
    family: str,
    candidate: ActiveMessage | None,
    shown: _Shown,
    settings: Settings,
    rng: random.Random,
) -> AnyTaskModel:
    """Build the task about the claimed message and store its row."""
    task: AnyTaskModel
    parent: TreeMessage | None = None
    if candidate is None:
        task = wire.InitialPromptTask()
    else:
        parent = shown.tree[candidate.id]
        if family == "rank":
            task = _ranking_task(parent, shown, settings, rng)
        elif family in ("label_reply", "label_prompt"):
            random_request = request.type == TaskRequestType.random
            task = _label_task(parent, shown, settings, rng, random_request=random_request)
        else:
            conversation = shown.conversation(shown.thread(parent))
            if parent.role == "assistant":
                task = wire.PrompterReplyTask(conversation=conversation)
            else:
                task = wire.AssistantReplyTask(conversation=conversation)
    now = utcnow()
    await repository.add(
        session,
        Task,
        {
            "id": task.id,
            "created_date": now,
            "expiry_date": None
            if request.collective
            else now + timedelta(minutes=settings.task_validity_minutes),
            "user_id": user.id,
            "payload_type": PAYLOAD_TYPES[task.type],
            "payload": task.model_dump(mode="json"),
            "api_client_id": client.id,
            "ack": None,
            "done": False,
            "skipped": False,
            "message_tree_id": parent.tree_id if parent else None,
            "parent_message_id": parent.id if parent else None,
            "collective": request.collective,
            "lang": lang,
        },
    )
    return task


def _ranking_task(
    parent: TreeMessage, shown: _Shown, settings: Settings, rng: random.Random
) -> wire.RankPrompterRepliesTask | wire.RankAssistantRepliesTask:
    config = settings.tree_manager
    kids = [
        m
        for m in shown.tree.values()
        if m.parent_id == parent.id
        and m.review_result is True
        and (m.role == "assistant" or config.rank_prompter_replies)
    ]
    rng.shuffle(kids)
    conversation, replies = shown.conversation(shown.thread(parent)), shown.conversation(kids)
    reveal = all(k.synthetic for k in kids)
    if not reveal:
        for reply in replies.messages:
            reply.synthetic = None
    cls = wire.RankPrompterRepliesTask if parent.role == "assistant" else wire.RankAssistantRepliesTask
    return cls(
        conversation=conversation,
        replies=[k.text for k in kids],
        reply_messages=replies.messages,
        message_tree_id=parent.tree_id,
        ranking_parent_id=parent.id,
        reveal_synthetic=reveal,
    )


def _label_task(
    message: TreeMessage,
    shown: _Shown,
    settings: Settings,
    rng: random.Random,
    *,
    random_request: bool,
) -> wire.LabelInitialPromptTask | wire.LabelAssistantReplyTask | wire.LabelPrompterReplyTask:
    config = settings.tree_manager
    conversation = shown.conversation(shown.thread(message))
    if message.parent_id is None:
        full_labels, mandatory = config.labels_initial_prompt, config.mandatory_labels_initial_prompt
        simple = rng.random() > config.p_full_labeling_review_prompt
        extra = ["lang_mismatch"]
    elif message.role == "assistant":
        full_labels, mandatory = config.labels_assistant_reply, config.mandatory_labels_assistant_reply
        simple = random_request and rng.random() > config.p_full_labeling_review_reply_assistant
        extra = ["lang_mismatch", "quality"]
    else:
        # Upstream overwrites this probability with 0.1 at run time; we use the configured value.
        full_labels, mandatory = config.labels_prompter_reply, config.mandatory_labels_prompter_reply
        simple = random_request and rng.random() > config.p_full_labeling_review_reply_prompter
        extra = ["lang_mismatch", "quality"]
    valid = list(dict.fromkeys([*mandatory, *extra])) if simple else list(full_labels)
    fields = {
        "message_id": message.id,
        "valid_labels": valid,
        "mandatory_labels": list(mandatory),
        "mode": LabelTaskMode.simple if simple else LabelTaskMode.full,
        "disposition": LabelTaskDisposition.spam if simple else LabelTaskDisposition.quality,
        "labels": labels_service.describe(valid),
        "conversation": conversation,
    }
    if message.parent_id is None:
        return wire.LabelInitialPromptTask(**fields, prompt=message.text)
    if message.role == "assistant":
        return wire.LabelAssistantReplyTask(**fields, reply=message.text)
    return wire.LabelPrompterReplyTask(**fields, reply=message.text)


# --- ack, nack, close ------------------------------------------------------------------------------------


def _check_live(task: Task | None, *, not_found_status: int = 400) -> Task:
    if task is None:
        raise OasstError("Task not found", ErrorCode.TASK_NOT_FOUND, not_found_status)
    if task.expiry_date is not None and task.expiry_date < utcnow():
        raise OasstError("Task has expired", ErrorCode.TASK_EXPIRED)
    return task


async def ack(session: AsyncSession, client: ApiClient, task_id: uuid.UUID, frontend_id: str) -> None:
    """Bind the frontend's id to a task; acking again with the same id changes nothing."""
    if await repository.ack(session, client.id, task_id, frontend_id, utcnow()):
        return
    # Nothing was bound: a replay of this ack, or an error to explain.
    task = _check_live(await repository.by_id(session, client.id, task_id), not_found_status=404)
    if task.ack and task.frontend_message_id == frontend_id:
        return
    raise OasstError("Task already updated", ErrorCode.TASK_ALREADY_UPDATED)


async def nack(
    session: AsyncSession,
    client: ApiClient,
    task_id: uuid.UUID,
    reason: str | None,
    identity: FrontendIdentity | None,
) -> None:
    """The user skips the task: it is finished, and its message gets the matching skip emoji."""
    user = await users.by_header(session, client, identity)
    if user is None:
        raise OasstError("User required", ErrorCode.USER_NOT_SPECIFIED)
    task = _check_live(await repository.by_id(session, client.id, task_id))
    if task.user_id != user.id and not task.collective:
        raise OasstError("Task was assigned to a different user", ErrorCode.TASK_NOT_ASSIGNED_TO_USER)
    if task.skipped:
        return
    if task.done:
        raise OasstError("Task already done", ErrorCode.TASK_ALREADY_DONE)
    task.skipped = True
    task.skip_reason = reason
    emoji = SKIP_EMOJIS.get(task.payload_type)
    if emoji and task.parent_message_id is not None:
        parent = await session.get(Message, task.parent_message_id)
        if parent is not None:
            await messages_service.add_emoji(session, parent, user, emoji, "add")
    await session.flush()


async def close(session: AsyncSession, client: ApiClient, frontend_id: str) -> wire.TaskDone:
    """Close a collective task (found by its frontend id); upstream's version always failed."""
    task = _check_live(await repository.by_frontend_id(session, client.id, frontend_id), not_found_status=404)
    if not task.collective:
        raise OasstError("Task is not collective", ErrorCode.TASK_NOT_ASSIGNED_TO_USER)
    if task.done:
        raise OasstError("Task already done", ErrorCode.TASK_ALREADY_DONE)
    task.done = True
    await session.flush()
    return wire.TaskDone()


# --- interactions ------------------------------------------------------------------------------------------


def _digest(
    body: wire.TextReplyToMessage | wire.MessageRating | wire.MessageRanking | wire.TextLabels,
) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


async def interaction(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    body: wire.TextReplyToMessage | wire.MessageRating | wire.MessageRanking | wire.TextLabels,
    rng: random.Random,
) -> tuple[wire.TaskDone, str | None]:
    """Store the answer to a task, and say which type of task it finished (None: free labels, a replay).

    A replay of the same answer is acknowledged without a second write.
    """
    if isinstance(body, wire.TextLabels) and body.task_id is None:
        user = await users.get_active(session, client, body.user, settings)
        await labels_service.store_free_labels(session, client, user, body)
        return wire.TaskDone(), None
    taken = await _take_task(session, client, settings, body)
    if taken is None:
        return wire.TaskDone(), None
    task, user = taken
    if isinstance(body, wire.TextReplyToMessage):
        await _store_reply(session, client, settings, task, user, body, rng)
    elif isinstance(body, wire.MessageRanking):
        await _store_ranking(session, client, settings, task, user, body, rng)
    elif isinstance(body, wire.TextLabels):
        await _store_review(session, client, settings, task, user, body, rng)
    else:
        raise OasstError("Task does not take a rating", ErrorCode.TASK_PAYLOAD_TYPE_MISMATCH)
    await session.flush()
    return wire.TaskDone(), str(task.payload["type"])


async def _take_task(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    body: wire.TextReplyToMessage | wire.MessageRating | wire.MessageRanking | wire.TextLabels,
) -> tuple[Task, User] | None:
    """The task this answer is for, marked done unless collective, and its user with the activity recorded;
    None when the answer is a replay (nothing is written then)."""
    digest = _digest(body)
    task_id = body.task_id if isinstance(body, wire.TextLabels) else None
    frontend_id = None if isinstance(body, wire.TextLabels) else body.message_id
    now = utcnow()
    # The usual case in one conditional UPDATE that also finds the user; anything else (a new user, a
    # collective task, a replay, an error) is read and explained below, in the order of the checks.
    found = await repository.finish_answerable(
        session, client.id, body.user, digest, now, task_id=task_id, frontend_id=frontend_id
    )
    if found is not None:
        task, streak_since = found
        user = await users.record_activity(session, task.user_id, body.user, streak_since, now)  # type: ignore[arg-type]
        # A disabled user's answer is refused; raising rolls the finished task back.
        users.check_enabled(user, settings)
        return task, user
    user = await users.get_active(session, client, body.user, settings)
    if task_id is not None:
        task = _check_live(await repository.by_id(session, client.id, task_id))
        if not task.ack:
            raise OasstError("Task is not acknowledged", ErrorCode.TASK_NOT_ACK)
    else:
        task = _check_live(await repository.by_frontend_id(session, client.id, frontend_id or ""))
    if task.user_id != user.id and not task.collective:
        raise OasstError("Task was assigned to a different user", ErrorCode.TASK_NOT_ASSIGNED_TO_USER)
    if not task.collective and not await repository.finish(session, task.id, digest):
        await session.refresh(task)
        if task.interaction_digest == digest:
            return None
        raise OasstError("Task already done", ErrorCode.TASK_ALREADY_DONE)
    user = await users.record_activity(session, user.id, body.user, user.streak_last_day_date, now)
    return task, user


async def _store_reply(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    task: Task,
    user: User,
    body: wire.TextReplyToMessage,
    rng: random.Random,
) -> None:
    role = REPLY_ROLES.get(task.payload_type)
    if role is None:
        raise OasstError("Task does not take a text reply", ErrorCode.TASK_UNEXPECTED_PAYLOAD_TYPE_)
    if len(body.text) > settings.message_size_limit:
        raise OasstError(
            f"Message text exceeds the size limit of {settings.message_size_limit} characters",
            ErrorCode.TASK_MESSAGE_TOO_LONG,
        )
    window = utcnow() - timedelta(minutes=settings.duplicate_message_filter_window_minutes)
    clash = await repository.reply_clashes(
        session, user.id, client.id, body.text, window, task.parent_message_id, body.user_message_id
    )
    if clash.duplicate_text:
        raise OasstError("Duplicate message text", ErrorCode.TASK_MESSAGE_DUPLICATED)
    if clash.frontend_id_taken:
        raise OasstError("user_message_id is already in use", ErrorCode.INVALID_FRONTEND_MESSAGE_ID)
    parent: Message | None = None
    if task.parent_message_id is not None:
        found = await trees_repository.lock_tree_of(session, task.parent_message_id)
        if found is None or found[1].state not in REPLY_STATES:
            raise OasstError("The message tree takes no more replies", ErrorCode.TREE_IN_ABORTED_STATE)
        parent = found[0]
        if clash.replied_already and not settings.debug_allow_duplicate_tasks:
            raise OasstError("User already replied to this message", ErrorCode.TASK_MESSAGE_DUPLICATE_REPLY)
    message_id = uuid.uuid4()
    lang = body.lang or "en"
    await repository.add(
        session,
        Message,
        {
            "id": message_id,
            "parent_id": parent.id if parent else None,
            "message_tree_id": parent.message_tree_id if parent else message_id,
            "task_id": task.id,
            "user_id": user.id,
            "role": role,
            "api_client_id": client.id,
            "frontend_message_id": body.user_message_id,
            "created_date": utcnow(),
            "text": body.text,
            "lang": lang,
            "depth": parent.depth + 1 if parent else 0,
            "deleted": parent.deleted if parent else False,
            "review_count": 0,
        },
    )
    if parent is not None:
        await repository.bump(session, [parent.id], "children_count")
    else:
        await repository.add(
            session, MessageTreeState, trees.new_tree(message_id, lang, settings.tree_manager, rng)
        )
    await _journal(
        session,
        client,
        user,
        message_id,
        "text_reply_to_message",
        task,
        {"role": role, "length": len(body.text)},
    )


async def _store_ranking(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    task: Task,
    user: User,
    body: wire.MessageRanking,
    rng: random.Random,
) -> None:
    if task.payload_type not in RANK_TASKS:
        raise OasstError("Task does not take a ranking", ErrorCode.TASK_PAYLOAD_TYPE_MISMATCH)
    shown = [uuid.UUID(m["id"]) for m in task.payload["reply_messages"]]
    if sorted(body.ranking) != list(range(len(shown))):
        raise OasstError(
            "Invalid ranking submitted: not a permutation of the replies", ErrorCode.INVALID_RANKING_VALUE
        )
    ranked = [shown[i] for i in body.ranking]
    tree_id: uuid.UUID = task.message_tree_id  # type: ignore[assignment]
    # The tree first, then its messages: the order every writer of a tree takes its locks in.
    tree = await trees_repository.lock_tree(session, tree_id)
    messages = await trees_repository.tree_messages(session, tree_id)
    kids = {m.id: m for m in messages}
    if any(kids.get(i) is None or kids[i].parent_id != task.parent_message_id for i in ranked):
        raise OasstError(
            "Ranked messages are not replies of the ranked message", ErrorCode.CORRUPT_RANKING_RESULT
        )
    await repository.bump(session, ranked, "ranking_count")
    payload = {
        "type": "message_ranking",
        "ranking": body.ranking,
        "ranked_message_ids": [str(i) for i in ranked],
        "ranking_parent_id": str(task.parent_message_id),
        "message_tree_id": str(task.message_tree_id),
        "not_rankable": bool(body.not_rankable),
    }
    await repository.add(
        session,
        MessageReaction,
        {
            "task_id": task.id,
            "user_id": user.id,
            "payload_type": "RankingReactionPayload",
            "payload": payload,
            "api_client_id": client.id,
            "message_id": task.parent_message_id,
        },
    )
    await _journal(
        session, client, user, task.parent_message_id, "message_ranking", task, {"ranking": body.ranking}
    )
    if tree is not None:
        await trees.check_ranking(session, tree, settings.tree_manager, rng, messages)


async def _store_review(
    session: AsyncSession,
    client: ApiClient,
    settings: Settings,
    task: Task,
    user: User,
    body: wire.TextLabels,
    rng: random.Random,
) -> None:
    if task.payload_type not in LABEL_TASKS:
        raise OasstError("Task does not take labels", ErrorCode.TASK_PAYLOAD_TYPE_MISMATCH)
    # Upstream checks this for prompt label tasks only; a reply label task can be misdirected just as well.
    if body.message_id != task.parent_message_id:
        raise OasstError(
            "Labels are for a different message than the task's", ErrorCode.TEXT_LABELS_WRONG_MESSAGE_ID
        )
    valid = set(task.payload["valid_labels"])
    invalid = sorted(label.value for label in body.labels if label.value not in valid)
    if invalid:
        raise OasstError(f"Invalid text labels: {', '.join(invalid)}", ErrorCode.TEXT_LABELS_INVALID_LABEL)
    missing = [
        m for m in task.payload.get("mandatory_labels") or [] if m not in {k.value for k in body.labels}
    ]
    if missing:
        raise OasstError(
            f"Mandatory text labels missing: {', '.join(missing)}",
            ErrorCode.TEXT_LABELS_MANDATORY_LABEL_MISSING,
        )
    # The tree first, then its messages: the order every writer of a tree takes its locks in.
    found = await trees_repository.lock_tree_of(session, body.message_id)
    if found is None:
        raise OasstError("Message not found", ErrorCode.MESSAGE_NOT_FOUND, 404)
    message, tree = found
    if message.user_id == user.id and not settings.debug_allow_self_labeling:
        raise OasstError("Labeling your own message is not allowed", ErrorCode.TEXT_LABELS_NO_SELF_LABELING)
    await repository.add(
        session,
        TextLabels,
        {
            "id": task.id,
            "user_id": user.id,
            "api_client_id": client.id,
            "text": body.text,
            "message_id": message.id,
            "labels": {label.value: value for label, value in body.labels.items()},
            "task_id": task.id,
        },
    )
    await repository.add_review(session, message)
    await trees.on_review(session, message, tree, settings, rng)


async def _journal(
    session: AsyncSession,
    client: ApiClient,
    user: User,
    message_id: uuid.UUID | None,
    event_type: str,
    task: Task,
    payload: dict[str, object],
) -> None:
    await repository.add(
        session,
        Journal,
        {
            "user_id": user.id,
            "message_id": message_id,
            "api_client_id": client.id,
            "event_type": event_type,
            "event_payload": {
                "type": event_type,
                **payload,
                "user_id": str(user.id),
                "message_id": str(message_id) if message_id else None,
                "task_id": str(task.id),
                "task_type": task.payload_type,
            },
        },
    )
