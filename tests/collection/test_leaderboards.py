"""Leaderboards, user stats, windows and the trollboard, after real work through the task protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oasst.collection.stats.service import LEVEL_THRESHOLDS, level
from oasst.config import Settings
from tests.collection.frontend import SMALL_TREES, Frontend, user
from tests.conftest import ADMIN_KEY
from tests.factories import Factory

# What each contributor of `Frontend.grow_tree` earns: see the score formula in the spec (§5.2).
EXPECTED_SCORES = {
    "dave": 17,  # an accepted assistant reply (4 + 4), ranked first once (9)
    "carol": 11,  # an accepted assistant reply (4 + 4), ranked second once (3)
    "bob": 3,  # a full prompt review (2) and a ranking (1)
    "erin": 2,  # a full reply review
    "frank": 2,  # a full reply review
    "alice": 0,  # one prompt: floor(0.1) + floor(0.1)
}


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(tree_manager=SMALL_TREES)


def refresh(client: TestClient, time_frame: str | None = None) -> None:
    path = "/api/v1/leaderboards/update" + (f"/{time_frame}" if time_frame else "")
    response = client.post(path)
    assert response.status_code == 204, response.text


def board(client: TestClient, time_frame: str = "total", **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/v1/leaderboards/{time_frame}", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def user_id(client: TestClient, name: str) -> str:
    return str(client.get(f"/api/v1/frontend_users/local/{name}").json()["user_id"])


def test_levels_follow_the_spec_thresholds() -> None:
    assert LEVEL_THRESHOLDS[:12] == (0, 4, 9, 16, 24, 32, 42, 53, 65, 79, 93, 109)
    assert LEVEL_THRESHOLDS[-3:] == (5767, 5883, 6000) and len(LEVEL_THRESHOLDS) == 100
    assert [level(score) for score in (0, 3, 4, 17, 5999, 6000, 10**6)] == [1, 1, 2, 4, 99, 100, 100]


def test_one_tree_ranks_the_first_ranked_reply_first(frontend: Frontend) -> None:
    client = frontend.client
    frontend.grow_tree()
    assert board(client)["leaderboard"] == []  # nothing until the first refresh
    refresh(client)

    result = board(client)
    assert result["time_frame"] == "total"
    rows = result["leaderboard"]
    assert list(rows[0]) == [
        "rank", "user_id", "highlighted", "username", "auth_method", "display_name", "leader_score", "level",
        "base_date", "modified_date", "prompts", "replies_assistant", "replies_prompter", "labels_simple",
        "labels_full", "rankings_total", "rankings_good", "accepted_prompts", "accepted_replies_assistant",
        "accepted_replies_prompter", "reply_ranked_1", "reply_ranked_2", "reply_ranked_3",
        "streak_last_day_date", "streak_days", "last_activity_date",
    ]  # fmt: skip
    assert {row["username"]: row["leader_score"] for row in rows} == EXPECTED_SCORES
    assert [row["rank"] for row in rows] == [1, 2, 3, 4, 5, 6]
    scores = [row["leader_score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    ties = [row["user_id"] for row in rows if row["leader_score"] == 2]
    assert ties == sorted(ties)  # equal scores: by user id

    dave = rows[0]
    assert (dave["username"], dave["display_name"], dave["auth_method"]) == ("dave", "Dave", "local")
    assert dave["level"] == 4
    assert (dave["replies_assistant"], dave["accepted_replies_assistant"], dave["reply_ranked_1"]) == (
        1,
        1,
        1,
    )
    assert dave["base_date"] is None and dave["modified_date"].endswith("+00:00")
    assert dave["last_activity_date"] is not None and dave["highlighted"] is False
    bob = next(row for row in rows if row["username"] == "bob")
    assert (bob["labels_full"], bob["rankings_total"], bob["level"]) == (1, 1, 1)
    alice = next(row for row in rows if row["username"] == "alice")
    assert (alice["prompts"], alice["accepted_prompts"], alice["level"]) == (1, 1, 1)
    assert result["last_updated"] == max(row["modified_date"] for row in rows)

    # The x-oasst-user header highlights its user; max_count cuts the list.
    response = client.get(
        "/api/v1/leaderboards/total", params={"max_count": 2}, headers={"x-oasst-user": "local:carol"}
    )
    top = response.json()["leaderboard"]
    assert [(row["username"], row["highlighted"]) for row in top] == [("dave", False), ("carol", True)]
    # A header naming nobody known is 404/4002, as upstream.
    unknown = client.get("/api/v1/leaderboards/total", headers={"x-oasst-user": "local:nobody"})
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, 4002)


def test_each_frame_refreshes_alone(frontend: Frontend) -> None:
    client = frontend.client
    frontend.grow_tree()
    refresh(client, "day")
    assert board(client, "week")["leaderboard"] == []
    day = board(client, "day")["leaderboard"]
    assert {row["username"]: row["leader_score"] for row in day} == EXPECTED_SCORES
    assert day[0]["base_date"] is not None
    refresh(client)
    week = board(client, "week")["leaderboard"]
    assert week[0]["base_date"].endswith("T00:00:00+00:00")  # weeks and months start at UTC midnight
    assert {row["username"]: row["leader_score"] for row in week} == EXPECTED_SCORES
    assert client.get("/api/v1/leaderboards/year").status_code == 422


def test_hidden_and_disabled_users_leave_the_board(frontend: Frontend) -> None:
    client = frontend.client
    frontend.grow_tree()
    refresh(client)
    bob, carol = user_id(client, "bob"), user_id(client, "carol")
    assert client.put(f"/api/v1/users/{bob}", params={"show_on_leaderboard": False}).status_code == 204
    assert client.put(f"/api/v1/users/{carol}", params={"enabled": False}).status_code == 204

    # Gone at once, though their stored ranks stay until the next refresh.
    rows = board(client)["leaderboard"]
    assert {row["username"] for row in rows} == {"dave", "erin", "frank", "alice"}
    assert [row["rank"] for row in rows] == [1, 4, 5, 6]
    refresh(client)
    rows = board(client)["leaderboard"]
    assert [row["rank"] for row in rows] == [1, 2, 3, 4]
    # Their stats are kept, without a rank.
    stats = client.get(f"/api/v1/users/{bob}/stats/total").json()
    assert (stats["leader_score"], stats["rank"]) == (3, None)
    assert client.get(f"/api/v1/users/{bob}/stats/total/window").json() is None
    assert client.get(f"/api/v1/users/{carol}/stats/total/window").json() is None


def test_user_stats_cover_every_frame(frontend: Frontend) -> None:
    client = frontend.client
    frontend.grow_tree()
    refresh(client, "total")
    dave = user_id(client, "dave")
    stats = client.get(f"/api/v1/users/{dave}/stats").json()
    assert list(stats) == ["day", "week", "month", "total"]
    assert (stats["total"]["leader_score"], stats["total"]["level"], stats["total"]["rank"]) == (17, 4, 1)
    # A frame not computed yet is zeroed (upstream answers 500 for it).
    assert (stats["day"]["leader_score"], stats["day"]["level"], stats["day"]["rank"]) == (0, 0, None)
    one = client.get(f"/api/v1/users/{dave}/stats/day")
    assert one.status_code == 200
    assert (one.json()["username"], one.json()["leader_score"]) == ("dave", 0)
    assert client.get(f"/api/v1/users/{dave}/stats/total").json()["reply_ranked_1"] == 1
    missing = client.get("/api/v1/users/00000000-0000-0000-0000-000000000000/stats")
    assert (missing.status_code, missing.json()["error_code"]) == (404, 4002)


def test_window_has_exactly_window_size_rows_around_the_user(frontend: Frontend) -> None:
    client = frontend.client
    frontend.grow_tree()
    refresh(client)

    def window(name: str, size: int) -> list[tuple[int, str, bool]]:
        response = client.get(
            f"/api/v1/users/{user_id(client, name)}/stats/total/window", params={"window_size": size}
        )
        assert response.status_code == 200, response.text
        assert response.json()["time_frame"] == "total"
        return [(row["rank"], row["username"], row["highlighted"]) for row in response.json()["leaderboard"]]

    around_bob = window("bob", 3)
    assert [(rank, highlighted) for rank, _, highlighted in around_bob] == [(2, False), (3, True), (4, False)]
    assert around_bob[1][1] == "bob"
    assert [rank for rank, *_ in window("carol", 3)] == [1, 2, 3]
    assert [rank for rank, *_ in window("dave", 3)] == [1, 2, 3]  # at the top: moved down, still 3 rows
    assert [rank for rank, *_ in window("alice", 2)] == [5, 6]  # at the bottom: moved up
    assert [rank for rank, *_ in window("alice", 1)] == [6]
    assert len(window("carol", 100)) == 6  # a board smaller than the window: all of it
    assert (
        client.get(f"/api/v1/users/{user_id(client, 'bob')}/stats/total/window?window_size=0").status_code
        == 422
    )


def test_trollboard_counts_flags_votes_labels_and_spam(frontend: Frontend, factory: Factory) -> None:
    client = frontend.client
    admin = factory.client_by_key(ADMIN_KEY)
    troll = factory.user(admin, "troll", display_name="Troll")
    nice = factory.user(admin, "nice", display_name="Nice")
    spam_root = factory.message(admin, troll, text="buy now")
    factory.set_tree_state(spam_root.id, "aborted_low_grade")
    rude = factory.message(admin, troll, text="you are dumb")
    good = factory.message(admin, nice, text="a fine question")
    for who in ("r1", "r2", "r3"):
        body = {"user": user(who), "op": "add", "emoji": "red_flag"}
        assert client.post(f"/api/v1/messages/{rude.id}/emoji", json=body).status_code == 202
        vote = {"user": user(who), "op": "add", "emoji": "+1"}
        assert client.post(f"/api/v1/messages/{good.id}/emoji", json=vote).status_code == 202
    down = {"user": user("r1"), "op": "add", "emoji": "-1"}
    assert client.post(f"/api/v1/messages/{rude.id}/emoji", json=down).status_code == 202
    for who, spam in (("r1", 1.0), ("r2", 0.75), ("r3", 0.0)):
        labels = {"spam": spam, "toxicity": 0.5, "pii": 1.0 if who == "r1" else 0.25}
        body = {
            "type": "text_labels",
            "user": user(who),
            "text": "",
            "labels": labels,
            "message_id": str(rude.id),
        }
        assert client.post("/api/v1/text_labels/", json=body).status_code == 204
    refresh(client, "week")

    response = client.get("/api/v1/trollboards/week")
    assert response.status_code == 200
    result = response.json()
    assert result["time_frame"] == "week"
    rows = {row["username"]: row for row in result["trollboard"]}
    top = result["trollboard"][0]
    assert list(top) == [
        "rank", "user_id", "highlighted", "username", "auth_method", "display_name", "last_activity_date",
        "enabled", "deleted", "show_on_leaderboard", "troll_score", "base_date", "modified_date",
        "red_flags", "upvotes", "downvotes", "spam_prompts", "quality", "humor", "toxicity", "violence",
        "helpfulness", "spam", "lang_mismach", "not_appropriate", "pii", "hate_speech", "sexual_content",
        "political_content",
    ]  # fmt: skip
    assert top["username"] == "troll" and top["rank"] == 1
    troll_row = rows["troll"]
    assert (troll_row["red_flags"], troll_row["downvotes"], troll_row["upvotes"]) == (3, 1, 0)
    assert (troll_row["spam_prompts"], troll_row["spam"], troll_row["pii"]) == (1, 2, 1)
    assert troll_row["toxicity"] == pytest.approx(0.5) and troll_row["quality"] is None
    # 3 red flags - 0 up + 1 down + 1 spam prompt + 1 pii (spam itself does not count)
    assert troll_row["troll_score"] == 3 * 3 + 1 + 1 + 1
    assert (rows["nice"]["upvotes"], rows["nice"]["troll_score"]) == (3, -3)
    assert result["trollboard"][-1]["username"] == "nice"

    assert client.put(f"/api/v1/users/{troll.id}", params={"enabled": False}).status_code == 204
    enabled_only = client.get("/api/v1/trollboards/week", params={"enabled": True}).json()["trollboard"]
    assert "troll" not in {row["username"] for row in enabled_only}
    disabled = client.get("/api/v1/trollboards/week", params={"enabled": False}).json()["trollboard"]
    assert [(row["username"], row["enabled"]) for row in disabled] == [("troll", False)]


def test_boards_need_the_right_client(frontend: Frontend, factory: Factory) -> None:
    client = frontend.client
    _untrusted, key = factory.api_client()
    headers = {"X-API-Key": key}
    for method, path in (
        ("POST", "/api/v1/leaderboards/update"),
        ("POST", "/api/v1/leaderboards/update/day"),
        ("GET", "/api/v1/trollboards/day"),
    ):
        response = client.request(method, path, headers=headers)
        assert (response.status_code, response.json()) == (403, {"error_code": 2, "message": "Forbidden"})
    assert client.get("/api/v1/leaderboards/day", headers=headers).status_code == 200
    assert client.get("/api/v1/leaderboards/day", headers={"X-API-Key": "wrong"}).status_code == 403
