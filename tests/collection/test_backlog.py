"""Backlog trees (imported, waiting for rankings) wake up when an active tree of their language stops."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from oasst.app import create_app
from oasst.config import Settings
from oasst.db.models import ApiClient, Message
from tests.collection.frontend import SMALL_TREES, Frontend
from tests.conftest import ADMIN_KEY
from tests.factories import Factory


def backlog_tree(factory: Factory, admin: ApiClient, replies: int) -> Message:
    root = factory.message(admin, factory.user(admin))
    for _ in range(replies):
        factory.message(admin, factory.user(admin), root)
    factory.set_tree_state(root.id, "backlog_ranking")
    return root


def run(make_settings: Callable[..., Settings]) -> TestClient:
    config = SMALL_TREES.model_copy(update={"p_activate_backlog_tree": 1.0})
    return TestClient(create_app(make_settings(tree_manager=config)), headers={"X-API-Key": ADMIN_KEY})


def test_a_stopping_tree_wakes_a_backlog_tree(
    make_settings: Callable[..., Settings], factory: Factory, admin: ApiClient
) -> None:
    rankable = backlog_tree(factory, admin, replies=2)
    with run(make_settings) as client:
        front = Frontend(client)
        # An accepted prompt leaves initial_prompt_review for the (inactive) lottery queue: a tree stops.
        front.accepted_prompt("alice", "Any question?")
        assert front.tree_state(str(rankable.id)) == "ranking"
        assert front.task("zoe", "rank_assistant_replies")["ranking_parent_id"] == str(rankable.id)


def test_a_backlog_tree_with_nothing_to_rank_ends(
    make_settings: Callable[..., Settings], factory: Factory, admin: ApiClient
) -> None:
    single = backlog_tree(factory, admin, replies=1)
    with run(make_settings) as client:
        front = Frontend(client)
        front.accepted_prompt("alice", "Any question?")
        assert front.tree_state(str(single.id)) == "aborted_low_grade"
