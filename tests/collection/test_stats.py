"""System stats, tree manager stats and cached stats as a moderator's dashboard reads them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from oasst.db.base import utcnow
from oasst.db.models import ApiClient
from tests.factories import Factory

CACHED_NAMES = [
    "human_messages_by_lang",
    "human_messages_by_role",
    "message_trees_by_state",
    "message_trees_states_by_lang",
    "users_accepted_tos",
]


@pytest.fixture
def trees(factory: Factory, admin: ApiClient) -> dict[str, Any]:
    """Three trees: a growing English one of 3 messages (one deleted, one synthetic, one unreviewed),
    a finished German one of 2 and an aborted English prompt."""
    alice = factory.user(admin, "alice", tos_acceptance_date=utcnow())
    bob = factory.user(admin, "bob", tos_acceptance_date=utcnow(), enabled=False)
    factory.user(admin, "carol")
    growing = factory.chain(admin, alice, 2)
    factory.message(admin, bob, growing[1], synthetic=True)
    factory.message(admin, bob, growing[0], review_result=None)
    factory.message(admin, bob, growing[0], deleted=True)
    finished = factory.chain(admin, bob, 2, lang="de")
    factory.set_tree_state(finished[0].id, "ready_for_export")
    aborted = factory.message(admin, alice, review_result=False)
    factory.set_tree_state(aborted.id, "aborted_low_grade")
    return {"growing": growing, "finished": finished, "aborted": aborted}


def test_system_stats(app_client: TestClient, trees: dict[str, Any]) -> None:
    response = app_client.get("/api/v1/stats/")
    assert response.status_code == 200
    assert response.json() == {
        "all": 8,
        "active": 7,
        "active_by_lang": {"en": 5, "de": 2},
        "deleted": 1,
        "message_trees": 3,
    }


def test_tree_manager_stats(app_client: TestClient, trees: dict[str, Any]) -> None:
    counts = app_client.get("/api/v1/stats/tree_manager/state_counts").json()
    assert counts == {"growing": 1, "ready_for_export": 1, "aborted_low_grade": 1}

    active = app_client.get("/api/v1/stats/tree_manager/message_counts").json()
    assert len(active) == 1
    growing = active[0]
    assert list(growing) == [
        "message_tree_id",
        "state",
        "depth",
        "oldest",
        "youngest",
        "count",
        "goal_tree_size",
    ]
    root = trees["growing"][0]
    assert (growing["message_tree_id"], growing["state"], growing["depth"]) == (str(root.id), "growing", 2)
    assert (growing["count"], growing["goal_tree_size"]) == (4, 12)  # the deleted reply is not counted
    assert growing["oldest"] == root.created_date.isoformat()
    assert growing["youngest"] > growing["oldest"]

    everything = app_client.get(
        "/api/v1/stats/tree_manager/message_counts", params={"only_active": False}
    ).json()
    assert {row["state"] for row in everything} == {"growing", "ready_for_export", "aborted_low_grade"}

    both = app_client.get("/api/v1/stats/tree_manager").json()
    assert both == {"state_counts": counts, "message_counts": active}


def test_cached_stats_appear_after_an_update(app_client: TestClient, trees: dict[str, Any]) -> None:
    missing = app_client.get("/api/v1/stats/cached/human_messages_by_lang")
    assert (missing.status_code, missing.json()["error_code"]) == (400, 6000)
    assert app_client.get("/api/v1/stats/cached").json() == {"stats_by_name": {}}
    assert app_client.get("/api/v1/stats/cached/no_such_stat").status_code == 422

    assert app_client.post("/api/v1/stats/cached/update").status_code == 204
    one = app_client.get("/api/v1/stats/cached/human_messages_by_lang").json()
    assert list(one) == ["name", "last_updated", "stats"]
    assert one["name"] == "human_messages_by_lang" and one["last_updated"].endswith("+00:00")
    # Live, accepted, human messages only: not the synthetic, unreviewed, deleted or rejected ones.
    assert one["stats"] == {"en": 2, "de": 2}

    every = app_client.get("/api/v1/stats/cached").json()["stats_by_name"]
    assert sorted(every) == CACHED_NAMES
    assert every["human_messages_by_role"]["stats"] == {"prompter": 2, "assistant": 2}
    assert every["message_trees_by_state"]["stats"] == {
        "growing": 1,
        "ready_for_export": 1,
        "aborted_low_grade": 1,
    }
    by_lang = every["message_trees_states_by_lang"]["stats"]
    assert sorted(by_lang, key=lambda row: (row["lang"], row["state"])) == [
        {"lang": "de", "count": 1, "state": "ready_for_export"},
        {"lang": "en", "count": 1, "state": "aborted_low_grade"},
        {"lang": "en", "count": 1, "state": "growing"},
    ]
    assert every["users_accepted_tos"]["stats"] == {"count": 1}  # bob accepted but is disabled

    # Updating again replaces the values.
    app_client.put(f"/api/v1/users/{trees['finished'][0].user_id}", params={"enabled": True})
    assert app_client.post("/api/v1/stats/cached/update").status_code == 204
    again = app_client.get("/api/v1/stats/cached/users_accepted_tos").json()
    assert again["stats"] == {"count": 2} and again["last_updated"] >= one["last_updated"]


def test_stats_routes_need_the_right_client(app_client: TestClient, factory: Factory) -> None:
    _client, key = factory.api_client()
    headers = {"X-API-Key": key}
    for method, path in (
        ("GET", "/api/v1/stats/"),
        ("GET", "/api/v1/stats/tree_manager/state_counts"),
        ("GET", "/api/v1/stats/tree_manager/message_counts"),
        ("GET", "/api/v1/stats/tree_manager"),
        ("POST", "/api/v1/stats/cached/update"),
    ):
        response = app_client.request(method, path, headers=headers)
        assert (response.status_code, response.json()) == (403, {"error_code": 2, "message": "Forbidden"}), (
            path
        )
    assert app_client.get("/api/v1/stats/cached", headers=headers).status_code == 200
    assert app_client.get("/api/v1/stats/cached", headers={"X-API-Key": "nope"}).status_code == 403
