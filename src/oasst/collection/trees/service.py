"""The tree manager: moves trees through their states and says which work each user may get next."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from statistics import mean
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.trees import repository
from oasst.collection.trees.ranking import ranked_pairs
from oasst.collection.trees.repository import (
    ActiveMessage,
    ActiveTree,
    OpenTask,
    Slot,
    TreeMessage,
    UserFootprint,
)
from oasst.config import Settings, TreeManagerConfig
from oasst.db.base import utcnow
from oasst.db.models import Message, MessageTreeState
from oasst.protocol.collection import TERMINAL_STATES, TreeState

REPLY_TASKS = ("InitialPromptPayload", "PrompterReplyPayload", "AssistantReplyPayload")
LABEL_TASKS = ("LabelInitialPromptPayload", "LabelPrompterReplyPayload", "LabelAssistantReplyPayload")
RANK_TASKS = ("RankPrompterRepliesPayload", "RankAssistantRepliesPayload")
# States in which a tree still takes replies (late replies to finished trees are kept, as upstream).
REPLY_STATES = frozenset(
    {TreeState.growing, TreeState.ranking, TreeState.ready_for_scoring, TreeState.ready_for_export}
)


# --- state transitions ----------------------------------------------------------------------------------


def new_tree(root_id: uuid.UUID, lang: str, config: TreeManagerConfig, rng: random.Random) -> dict[str, Any]:
    """The state row (its values) of a tree whose root was just stored."""
    goal = config.goal_tree_size
    if config.random_goal_tree_size and config.min_goal_tree_size < goal:
        goal = rng.randint(config.min_goal_tree_size, goal)
    return {
        "message_tree_id": root_id,
        "goal_tree_size": goal,
        "max_depth": config.max_tree_depth,
        "max_children_count": config.max_children_count,
        "state": TreeState.initial_prompt_review,
        "active": True,
        "lang": lang,
    }


async def enter_state(
    session: AsyncSession,
    tree: MessageTreeState,
    state: TreeState,
    config: TreeManagerConfig,
    rng: random.Random,
) -> None:
    """Move a tree; an active tree that stops may wake a backlog tree of its language."""
    was_active = tree.active
    tree.state = state
    tree.active = state not in TERMINAL_STATES
    await session.flush()
    if was_active and not tree.active:
        await _maybe_activate_backlog(session, tree.lang, config, rng)


async def _maybe_activate_backlog(
    session: AsyncSession, lang: str, config: TreeManagerConfig, rng: random.Random
) -> None:
    wanted = 1 if rng.random() < config.p_activate_backlog_tree else 0
    if config.min_active_rankings_per_lang > 0:
        ranking = (await repository.count_states(session, lang)).get(TreeState.ranking, 0)
        wanted = max(wanted, config.min_active_rankings_per_lang - ranking)
    for tree in await repository.backlog_trees(session, lang, limit=max(wanted * 4, 0)):
        if wanted <= 0:
            break
        messages = await repository.tree_messages(session, tree.message_tree_id)
        if not rankable_parents(messages, config):
            # Nothing to rank in it: as upstream, the tree ends here and the search moves on.
            tree.state, tree.active = TreeState.aborted_low_grade, False
            await session.flush()
            continue
        tree.state, tree.active = TreeState.ranking, True
        await session.flush()
        if await check_ranking(session, tree, config, rng, messages):
            continue  # its rankings were already complete: it went straight on, try another
        wanted -= 1


def acceptance_score(label_sets: list[dict[str, float]]) -> float:
    """1 - (mean spam + mean lang_mismatch), a missing lang_mismatch counting as 0."""
    spam = [labels["spam"] for labels in label_sets if "spam" in labels]
    mismatch = [labels.get("lang_mismatch", 0.0) for labels in label_sets]
    return 1 - ((mean(spam) if spam else 0.0) + (mean(mismatch) if mismatch else 0.0))


async def on_review(
    session: AsyncSession, message: Message, tree: MessageTreeState, settings: Settings, rng: random.Random
) -> None:
    """After a review: accept or reject the message once it has enough reviews; move its (locked) tree.

    The message's review counters must be fresh (see the tasks repository's `add_review`).
    """
    config = settings.tree_manager
    is_root = message.parent_id is None
    needed = config.num_reviews_initial_prompt if is_root else config.num_reviews_reply
    decides = message.review_count >= needed and message.review_result is not True
    grows = not is_root and tree.state == TreeState.growing
    if not decides and not grows:
        return
    messages, reviews = await repository.tree_and_reviews(session, tree.message_tree_id, message.id)
    if decides:
        threshold = (
            config.acceptance_threshold_initial_prompt if is_root else config.acceptance_threshold_reply
        )
        accepted = acceptance_score(reviews) > threshold
        if accepted:
            message.review_result = True
        elif message.review_result is None:
            message.review_result = False
        await session.flush()
        for m in messages:  # read before the decision: keep it in step
            if m.id == message.id:
                m.review_result = message.review_result
        if is_root and tree.state == TreeState.initial_prompt_review:
            target = TreeState.prompt_lottery_waiting if accepted else TreeState.aborted_low_grade
            await enter_state(session, tree, target, config, rng)
    if grows:
        await check_growing(session, tree, config, rng, messages)


async def check_growing(
    session: AsyncSession,
    tree: MessageTreeState,
    config: TreeManagerConfig,
    rng: random.Random,
    messages: list[ActiveMessage] | None = None,
) -> None:
    """growing -> ranking once the tree holds its goal of accepted messages and nothing awaits review.

    `messages` are the tree's messages if the caller read them under the tree's lock.
    """
    if messages is None:
        messages = await repository.tree_messages(session, tree.message_tree_id)
    messages = [m for m in messages if not m.deleted]
    size = sum(1 for m in messages if m.review_result is True)
    awaiting = sum(
        1 for m in messages if m.review_result is not True and m.review_count < config.num_reviews_reply
    )
    if size == 0:
        await enter_state(session, tree, TreeState.halted_by_moderator, config, rng)
    elif size >= tree.goal_tree_size and awaiting == 0:
        await enter_state(session, tree, TreeState.ranking, config, rng)
        # Unlike upstream, a tree with nothing to rank does not wait in `ranking` for a restart.
        await check_ranking(session, tree, config, rng, messages)


def rankable_parents(
    messages: list[ActiveMessage], config: TreeManagerConfig
) -> dict[uuid.UUID, list[ActiveMessage]]:
    """Parents with more than one accepted, live child of a ranked role, and those children."""
    children: dict[uuid.UUID, list[ActiveMessage]] = {}
    for m in messages:
        if m.parent_id is None or m.deleted or m.review_result is not True:
            continue
        if m.role == "assistant" or config.rank_prompter_replies:
            children.setdefault(m.parent_id, []).append(m)
    return {parent: kids for parent, kids in children.items() if len(kids) > 1}


async def check_ranking(
    session: AsyncSession,
    tree: MessageTreeState,
    config: TreeManagerConfig,
    rng: random.Random,
    messages: list[ActiveMessage] | None = None,
) -> bool:
    """ranking -> ready_for_scoring -> ready_for_export once every rankable parent has its rankings.

    `messages` are the tree's messages if the caller read them under the tree's lock. True if the tree left
    `ranking`.
    """
    if tree.state != TreeState.ranking:
        return False
    if messages is None:
        messages = await repository.tree_messages(session, tree.message_tree_id)
    parents = rankable_parents(messages, config)
    reactions = await repository.ranking_reactions(session, list(parents))
    per_parent = Counter(r.message_id for r in reactions)
    if any(per_parent[parent] < config.num_required_rankings for parent in parents):
        return False
    await enter_state(session, tree, TreeState.ready_for_scoring, config, rng)
    try:
        async with session.begin_nested():
            for parent, kids in parents.items():
                lists = [
                    [uuid.UUID(i) for i in r.payload["ranked_message_ids"]]
                    for r in reactions
                    if r.message_id == parent
                ]
                order = ranked_pairs(lists)
                if not order:
                    continue
                position = {message_id: i for i, message_id in enumerate(order)}
                await repository.set_ranks(session, {kid.id: position.get(kid.id) for kid in kids})
    except Exception:
        await enter_state(session, tree, TreeState.scoring_failed, config, rng)
        return True
    await enter_state(session, tree, TreeState.ready_for_export, config, rng)
    return True


# --- moderators' actions -------------------------------------------------------------------------------


async def check_lottery(
    session: AsyncSession, tree: MessageTreeState, config: TreeManagerConfig, rng: random.Random
) -> bool:
    """initial_prompt_review -> prompt_lottery_waiting when the root is already accepted."""
    if tree.state != TreeState.initial_prompt_review:
        return False
    if not await repository.root_accepted(session, tree.message_tree_id):
        return False
    await enter_state(session, tree, TreeState.prompt_lottery_waiting, config, rng)
    return True


async def resume_tree(
    session: AsyncSession, tree: MessageTreeState, config: TreeManagerConfig, rng: random.Random
) -> None:
    """`halt=false` (§4.2): a waiting prompt stays; a lottery winner grows again; others go back to review."""
    if tree.state == TreeState.prompt_lottery_waiting:
        return
    if tree.won_prompt_lottery_date is not None:
        await enter_state(session, tree, TreeState.growing, config, rng)
        await check_growing(session, tree, config, rng)  # and the scoring check once it ranks
    else:
        await enter_state(session, tree, TreeState.initial_prompt_review, config, rng)
        await check_lottery(session, tree, config, rng)


async def settle_tree(
    session: AsyncSession, tree_id: uuid.UUID, config: TreeManagerConfig, rng: random.Random
) -> None:
    """After a moderator deleted or undeleted messages of a tree, move it on if that settles something.

    A tree whose root is deleted stops (halted_by_moderator); a growing or ranking tree re-runs its checks,
    since the messages it was waiting for may just have gone.
    """
    tree = await repository.lock_tree(session, tree_id)
    if tree is None:
        return
    if tree.active and await repository.root_deleted(session, tree_id):
        await enter_state(session, tree, TreeState.halted_by_moderator, config, rng)
    elif tree.state == TreeState.growing:
        await check_growing(session, tree, config, rng)
    elif tree.state == TreeState.ranking:
        await check_ranking(session, tree, config, rng)


# --- the prompt lottery and auto-moderation ---------------------------------------------------------------


async def run_lottery(
    session: AsyncSession,
    lang: str,
    counts: dict[str, int],
    config: TreeManagerConfig,
    max_activate: int,
    rng: random.Random,
) -> tuple[bool, int]:
    """Wake waiting prompts into `growing` up to the cap, given the language's tree counts by state.

    Returns whether any woke, and how many new prompts the language takes.
    """
    counts = dict(counts)
    missing_growing = max(0, config.max_active_trees - counts.get(TreeState.growing, 0))
    activated = 0
    wanted = missing_growing > 0 and max_activate > 0 and counts.get(TreeState.prompt_lottery_waiting, 0) > 0
    # One lottery per language at a time, counting again under the lock: never too many growing trees. A
    # request that finds the lottery running leaves it to that one instead of queueing behind it; one that
    # knows it runs in this process does not even ask the database (under load most requests want it).
    here = (session.get_bind(), lang)
    if wanted and here not in _LOTTERIES_HERE and await repository.lock(session, "lottery", lang, wait=False):
        _LOTTERIES_HERE.add(here)
        try:
            counts, activated = await _draw(session, lang, config, max_activate, rng)
        finally:
            _LOTTERIES_HERE.discard(here)
    counts[TreeState.growing] = counts.get(TreeState.growing, 0) + activated
    counts[TreeState.prompt_lottery_waiting] = counts.get(TreeState.prompt_lottery_waiting, 0) - activated
    return activated > 0, prompt_room(lang, counts, config)


# The (database, language) pairs whose lottery a request of this process is running.
_LOTTERIES_HERE: set[tuple[object, str]] = set()


async def _draw(
    session: AsyncSession, lang: str, config: TreeManagerConfig, max_activate: int, rng: random.Random
) -> tuple[dict[str, int], int]:
    """The lottery itself, under its lock: wake up to `max_activate` trees. Returns the language's tree counts
    read under the lock (before the draw) and how many trees woke."""
    counts = await repository.count_states(session, lang)
    missing_growing = max(0, config.max_active_trees - counts.get(TreeState.growing, 0))
    candidates = await repository.lottery_candidates(session, lang)
    weights = await repository.monthly_first_ranks(session, list({a for _, a in candidates}))
    activated = 0
    while candidates and activated < min(missing_growing, max_activate):
        authors = sorted({author for _, author in candidates}, key=str)
        author = rng.choices(authors, weights=[weights.get(a, 0) + 1 for a in authors])[0]
        tree_id = rng.choice([t for t, a in candidates if a == author])
        candidates = [(t, a) for t, a in candidates if t != tree_id]
        tree = await repository.lock_tree(session, tree_id)
        if tree is None or tree.state != TreeState.prompt_lottery_waiting:
            continue
        tree.won_prompt_lottery_date = tree.won_prompt_lottery_date or utcnow()
        await enter_state(session, tree, TreeState.growing, config, rng)
        activated += 1
    return counts, activated


def prompt_room(lang: str, counts: dict[str, int], config: TreeManagerConfig) -> int:
    """How many new initial prompts the language takes, given its trees by state."""
    if lang in config.init_prompt_disabled_langs_list:
        return 0
    missing_growing = max(0, config.max_active_trees - counts.get(TreeState.growing, 0))
    review_room = max(0, config.max_initial_prompt_review - counts.get(TreeState.initial_prompt_review, 0))
    lottery_room = max(0, config.max_prompt_lottery_waiting - counts.get(TreeState.prompt_lottery_waiting, 0))
    return min(missing_growing + review_room, lottery_room)


_MODERATED_STATES = (TreeState.initial_prompt_review, TreeState.growing)


async def auto_moderate(
    session: AsyncSession,
    trees: dict[uuid.UUID, ActiveTree],
    messages: list[ActiveMessage],
    config: TreeManagerConfig,
    rng: random.Random,
) -> bool:
    """Abort, delete or halt what the crowd flagged; True if anything changed."""
    if not config.auto_mod_enabled:
        return False
    changed = False
    for m in messages:
        if trees[m.tree_id].state not in _MODERATED_STATES:
            continue
        is_root = m.parent_id is None
        if not (is_root or m.review_result is True or m.review_count < config.num_reviews_reply):
            continue
        red_flags = m.emojis.get("red_flag", 0) >= config.auto_mod_red_flags
        if not red_flags and m.emojis.get("_skip_reply", 0) < config.auto_mod_max_skip_reply:
            continue
        # The snapshot was read without locks: act on the tree as it is now.
        tree = await repository.lock_tree(session, m.tree_id)
        if tree is None or tree.state not in _MODERATED_STATES or not tree.active:
            continue
        if red_flags and is_root:
            await enter_state(session, tree, TreeState.aborted_low_grade, config, rng)
        elif red_flags:
            await repository.delete_subtree(session, m.id, m.tree_id)
        else:
            await enter_state(session, tree, TreeState.halted_by_moderator, config, rng)
        changed = True
    return changed


# --- what a user may get next ---------------------------------------------------------------------------


@dataclass
class Pools:
    """The candidates of each kind of task for one user in one language."""

    prompts_to_review: list[ActiveMessage] = field(default_factory=list)
    replies_to_review: list[ActiveMessage] = field(default_factory=list)
    extendible_parents: list[ActiveMessage] = field(default_factory=list)
    lonely_parents: list[ActiveMessage] = field(default_factory=list)
    rankable_parents: list[ActiveMessage] = field(default_factory=list)
    missing_replies: int = 0
    new_prompts: int = 0

    def availability(self) -> dict[str, int]:
        """The `/tasks/availability` map: every request type, `random` the sum of the others."""
        counts = {
            "summarize_story": 0,
            "rate_summary": 0,
            "initial_prompt": self.new_prompts,
            "prompter_reply": sum(1 for m in self.extendible_parents if m.role == "assistant"),
            "assistant_reply": sum(1 for m in self.extendible_parents if m.role == "prompter"),
            "rank_initial_prompts": 0,
            "rank_prompter_replies": sum(1 for m in self.rankable_parents if m.role == "assistant"),
            "rank_assistant_replies": sum(1 for m in self.rankable_parents if m.role == "prompter"),
            "label_initial_prompt": len(self.prompts_to_review),
            "label_assistant_reply": sum(1 for m in self.replies_to_review if m.role == "assistant"),
            "label_prompter_reply": sum(1 for m in self.replies_to_review if m.role == "prompter"),
        }
        return {"random": sum(counts.values()), **counts}


@dataclass
class Snapshot:
    """A language's tree counts, its active trees with their live messages, its open tasks and the user's
    own traces."""

    counts: dict[str, int]
    trees: dict[uuid.UUID, ActiveTree]
    messages: list[ActiveMessage]
    open_tasks: list[OpenTask]
    footprint: UserFootprint


async def snapshot(session: AsyncSession, lang: str, user_id: uuid.UUID, settings: Settings) -> Snapshot:
    now = utcnow()
    since = now - timedelta(seconds=settings.tree_manager.recent_tasks_span_sec)
    # Open tasks first: a task stops being open in the same commit that adds its answer to the counts, so
    # reading reservations before counts can only over-reserve, never hand out a slot twice.
    tasks = await repository.open_tasks(session, lang, since, now)
    found = await repository.language_trees(session, lang)
    footprint = await repository.user_footprint(session, user_id, lang, since)
    return Snapshot(found.counts, found.trees, found.messages, tasks, footprint)


def compute_pools(
    snap: Snapshot, user_id: uuid.UUID, lang: str, settings: Settings, new_prompts: int
) -> Pools:
    """Every rule of upstream's task selection, plus reservations: an open task holds its slot.

    Counting open tasks as if they were already answered is what keeps the limits exact under load
    (upstream hands out up to 8 reviews where 1 is needed and 5 replies where 2 fit).
    """
    config = settings.tree_manager
    children: dict[uuid.UUID, list[ActiveMessage]] = {}
    for m in snap.messages:
        if m.parent_id is not None:
            children.setdefault(m.parent_id, []).append(m)
    open_by_parent: dict[tuple[str, uuid.UUID], int] = Counter()
    user_open: set[uuid.UUID] = set()
    open_replies_by_tree: Counter[uuid.UUID] = Counter()
    open_prompts = 0
    for task in snap.open_tasks:
        if task.payload_type == "InitialPromptPayload":
            open_prompts += 1
        if task.parent_message_id is None:
            continue
        kind = _kind(task.payload_type)
        open_by_parent[(kind, task.parent_message_id)] += 1
        if task.user_id == user_id:
            user_open.add(task.parent_message_id)
        if kind == "reply" and task.message_tree_id is not None:
            open_replies_by_tree[task.message_tree_id] += 1

    fp = snap.footprint
    pools = Pools(new_prompts=max(0, new_prompts - open_prompts))

    def mine(m: ActiveMessage) -> bool:
        return m.user_id == user_id

    tree_counted: Counter[uuid.UUID] = Counter(m.tree_id for m in snap.messages if _counted(m, config))

    for m in snap.messages:
        tree = snap.trees[m.tree_id]
        is_root = m.parent_id is None
        if m.lang != lang or m.id in user_open:
            continue
        # Reviews.
        reviewable = (
            m.review_result is not True
            and not fp.skipped(m.id, "_skip_labeling")
            and (settings.debug_allow_self_labeling or not mine(m))
            and (settings.debug_allow_duplicate_tasks or m.id not in fp.labelled)
        )
        if reviewable and is_root and tree.state == TreeState.initial_prompt_review:
            if m.review_count + open_by_parent["label", m.id] < config.num_reviews_initial_prompt:
                pools.prompts_to_review.append(m)
        elif (
            reviewable
            and not is_root
            and tree.state == TreeState.growing
            and m.review_result is None
            and m.review_count + open_by_parent["label", m.id] < config.num_reviews_reply
        ):
            pools.replies_to_review.append(m)
        # Replies.
        if (
            tree.state == TreeState.growing
            and m.review_result is True
            and m.depth < tree.max_depth
            and not fp.skipped(m.id, "_skip_reply")
            and open_by_parent["reply", m.id] == 0
            and (settings.debug_allow_duplicate_tasks or m.id not in fp.replied_to)
            and tree_counted[m.tree_id] + open_replies_by_tree[m.tree_id] < tree.goal_tree_size
        ):
            live_children = [c for c in children.get(m.id, []) if _counted(c, config)]
            limit = config.num_prompter_replies if m.role == "assistant" else tree.max_children_count
            if len(live_children) < min(limit, tree.max_children_count):
                pools.extendible_parents.append(m)
                if m.role == "prompter" and 0 < len(live_children) < config.lonely_children_count:
                    pools.lonely_parents.append(m)
        # Rankings.
        if tree.state == TreeState.ranking:
            kids = [
                c
                for c in children.get(m.id, [])
                if c.review_result is True and (c.role == "assistant" or config.rank_prompter_replies)
            ]
            done = min((c.ranking_count for c in kids), default=0)
            if (
                len(kids) > 1
                and done + open_by_parent["rank", m.id] < config.num_required_rankings
                and (settings.debug_allow_self_ranking or not any(mine(c) for c in kids))
                and not fp.skipped(m.id, "_skip_ranking")
                and (settings.debug_allow_duplicate_tasks or m.id not in fp.ranked)
            ):
                pools.rankable_parents.append(m)

    pools.missing_replies = sum(
        max(0, tree.goal_tree_size - tree_counted[tree_id] - open_replies_by_tree[tree_id])
        for tree_id, tree in snap.trees.items()
        if tree.state == TreeState.growing
    )
    return pools


def _kind(payload_type: str) -> str:
    if payload_type in LABEL_TASKS:
        return "label"
    if payload_type in RANK_TASKS:
        return "rank"
    return "reply"


# --- claiming a slot ---------------------------------------------------------------------------------------


class Busy(Enum):
    """A slot another transaction is checking right now (`claim` without waiting)."""

    BUSY = "busy"


async def claim(
    session: AsyncSession,
    family: str,
    candidate: ActiveMessage | None,
    lang: str,
    settings: Settings,
    *,
    wait: bool,
) -> list[TreeMessage] | Literal[Busy.BUSY] | None:
    """Lock the slot a task would take and check, on fresh data, that it is still free.

    Returns the live messages of the slot's tree as just read (none for a new prompt), None if the slot
    is taken, or BUSY (without `wait`) if another transaction holds its lock. Hand-out reads its snapshot
    without locks; only this check is serialised, per message or tree, so the limits hold exactly while
    different slots are handed out in parallel. Open tasks are read before the counts they will add to (see
    `snapshot`), so a concurrent answer can only make the check stricter.
    """
    config = settings.tree_manager
    now = utcnow()
    since = now - timedelta(seconds=config.recent_tasks_span_sec)
    if candidate is None:  # a new initial prompt
        if not await repository.lock(session, "prompts", lang, wait=wait):
            return Busy.BUSY
        open_prompts = await repository.open_prompts(session, lang, since, now)
        counts = await repository.count_states(session, lang)
        return [] if open_prompts < prompt_room(lang, counts, config) else None
    kinds = {"reply": REPLY_TASKS, "rank": RANK_TASKS}.get(family, LABEL_TASKS)
    # A reply takes a place in the tree as well as under its parent.
    lock_key = ("tree", candidate.tree_id) if family == "reply" else ("message", candidate.id)
    if not await repository.lock(session, *lock_key, wait=wait):
        return Busy.BUSY
    slot = await repository.read_slot(session, candidate.id, candidate.tree_id, kinds, since, now)
    if slot is not None and slot.active and _slot_free(family, candidate.id, slot, config):
        return slot.messages
    return None


def _slot_free(family: str, target_id: uuid.UUID, slot: Slot, config: TreeManagerConfig) -> bool:
    target = next((m for m in slot.messages if m.id == target_id), None)
    if target is None:
        return False
    if family == "reply":
        counted = [m for m in slot.messages if _counted(m, config)]
        children = sum(1 for m in counted if m.parent_id == target.id)
        limit = config.num_prompter_replies if target.role == "assistant" else slot.max_children_count
        return (
            slot.state == TreeState.growing
            and target.review_result is True
            and slot.open_here == 0
            and children < min(limit, slot.max_children_count)
            and len(counted) + slot.open_tree < slot.goal_tree_size
        )
    if family == "rank":
        kids = [
            m
            for m in slot.messages
            if m.parent_id == target.id
            and m.review_result is True
            and (m.role == "assistant" or config.rank_prompter_replies)
        ]
        done = min((k.ranking_count for k in kids), default=0)
        return (
            slot.state == TreeState.ranking
            and len(kids) > 1
            and done + slot.open_here < config.num_required_rankings
        )
    needed = config.num_reviews_initial_prompt if target.parent_id is None else config.num_reviews_reply
    return target.review_result is not True and target.review_count + slot.open_here < needed


def _counted(m: ActiveMessage, config: TreeManagerConfig) -> bool:
    """A message that takes a place in its tree: accepted, or still under review."""
    return m.review_result is True or (m.review_result is None and m.review_count < config.num_reviews_reply)
