"""Contributors racing over real HTTP for the last slot of a tree leave exact counts and states."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from oasst.config import Settings
from tests.collection.frontend import SMALL_TREES, Frontend
from tests.conftest import ADMIN_KEY
from tests.live import serve

RACERS = 8
CONFIG = SMALL_TREES.model_copy(update={"num_required_rankings": 2})


@pytest.fixture
def base_url(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve(make_settings(tree_manager=CONFIG)) as url:
        yield url


def race(base_url: str, action: Callable[[Frontend, str], Any]) -> list[Any]:
    """Run `action(frontend, racer_name)` for every racer at once, each on its own connection."""
    barrier = threading.Barrier(RACERS)

    def run(i: int) -> Any:
        with httpx.Client(base_url=base_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as http:
            barrier.wait()
            return action(Frontend(http), f"racer{i}")

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(run, range(RACERS)))


def test_races_for_replies_reviews_and_rankings(base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as http:
        front = Frontend(http)
        front.reply("alice", front.task("alice", "initial_prompt"), "Name a prime number.")
        review = front.task("bob", "label_initial_prompt")
        root_id = review["message_id"]
        assert front.label("bob", review).status_code == 200

    # One reply task per parent at a time: of eight racers exactly one gets it.
    got = race(base_url, lambda f, who: f.request(who, "assistant_reply"))
    assert sorted(r.status_code for r in got) == [200] + [503] * (RACERS - 1)

    with httpx.Client(base_url=base_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as http:
        front = Frontend(http)
        winner = next(i for i, r in enumerate(got) if r.status_code == 200)
        assert front.reply(f"racer{winner}", got[winner].json(), "Two.").status_code == 200
        assert front.reply("carol", front.task("carol", "assistant_reply"), "Seven.").status_code == 200
        # The tree is full (root + two replies): nobody gets a third reply slot.
        assert front.request("dave", "assistant_reply").status_code == 503

    # One review is needed per reply and there are two replies: exactly two racers get review tasks.
    reviews = race(base_url, lambda f, who: f.request(who, "label_assistant_reply"))
    assert sorted(r.status_code for r in reviews) == [200, 200] + [503] * (RACERS - 2)
    winners = [(i, r.json()) for i, r in enumerate(reviews) if r.status_code == 200]
    assert len({task["message_id"] for _, task in winners}) == 2  # one reviewer per reply, never two

    def answer_review(f: Frontend, who: str) -> int:
        index = int(who.removeprefix("racer"))
        mine = dict(winners).get(index)
        return f.label(who, mine, quality=1.0).status_code if mine else 0

    assert sorted(race(base_url, answer_review), reverse=True)[:2] == [200, 200]

    with httpx.Client(base_url=base_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as http:
        assert Frontend(http).tree_state(root_id) == "ranking"

    # Two rankings are needed: exactly two racers get ranking tasks, and both answers count once.
    rankings = race(base_url, lambda f, who: f.request(who, "rank_assistant_replies"))
    assert sorted(r.status_code for r in rankings) == [200, 200] + [503] * (RACERS - 2)
    rank_winners = {i: r.json() for i, r in enumerate(rankings) if r.status_code == 200}

    def answer_ranking(f: Frontend, who: str) -> int:
        task = rank_winners.get(int(who.removeprefix("racer")))
        return f.rank(who, task, [0, 1]).status_code if task else 0

    assert sorted(race(base_url, answer_ranking), reverse=True)[:2] == [200, 200]

    with httpx.Client(base_url=base_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as http:
        front = Frontend(http)
        assert front.tree_state(root_id) == "ready_for_export"
        children = http.get(f"/api/v1/messages/{root_id}/children").json()
        assert len(children) == 2
        assert all(child["ranking_count"] == 2 for child in children)
        assert sorted(child["rank"] for child in children) == [0, 1]
