"""A small generated OASST export whose rankings are easy to learn: the training tests' data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# fmt: off
TOPICS = [
    "apples", "rivers", "clocks", "violins", "mountains", "bicycles", "coffee", "dragons",
    "gardens", "rockets", "oceans", "pencils", "castles", "tigers", "bridges", "candles",
    "forests", "planets", "robots", "cookies", "islands", "lanterns", "meadows", "kettles",
    "comets", "harbors", "owls", "tulips", "deserts", "mirrors", "engines", "glaciers",
    "parrots", "pianos", "canyons", "ladders", "marbles", "volcanoes", "wagons", "zebras",
]
# fmt: on
GOOD = "Sure! {topic} are wonderful and I like {topic} a lot."
FAIR = "Hmm, {topic} are fine."
BAD = "No. Go away."
FOLLOW_UP = "Thanks! Tell me more."
GOOD_MORE = "Of course! {topic} are even better up close."
BAD_MORE = "No."


def node(message_id: str, text: str, role: str, rank: int | None = None, **extra: Any) -> dict[str, Any]:
    """A message of our export layout (accepted unless `extra` says otherwise)."""
    message = {"message_id": message_id, "text": text, "role": role, "lang": "en", "review_count": 3}
    message |= {"review_result": True, "deleted": False, "synthetic": False, "replies": []}
    if rank is not None:
        message["rank"] = rank
    return message | extra


def tree(index: int, topic: str, state: str = "ready_for_export", lang: str = "en") -> dict[str, Any]:
    """A prompt about `topic` with a good, a fair and a bad ranked reply; a follow-up under the good one."""
    t = f"t{index}"
    good = node(f"{t}-a0", GOOD.format(topic=topic), "assistant", 0)
    good["replies"] = [node(f"{t}-p1", FOLLOW_UP, "prompter")]
    good["replies"][0]["replies"] = [
        node(f"{t}-a10", GOOD_MORE.format(topic=topic), "assistant", 0, parent_id=f"{t}-p1"),
        node(f"{t}-a11", BAD_MORE, "assistant", 1, parent_id=f"{t}-p1"),
    ]
    prompt = node(t, f"Tell me about {topic}.", "prompter", lang=lang)
    prompt["replies"] = [
        good,
        node(f"{t}-a1", FAIR.format(topic=topic), "assistant", 1),
        node(f"{t}-a2", BAD, "assistant", 2),
        node(f"{t}-x", "Deleted reply.", "assistant", deleted=True),
        node(f"{t}-s", "Spam reply.", "assistant", review_result=False),
    ]
    return {"message_tree_id": t, "tree_state": state, "prompt": prompt}


def write_export(path: Path, count: int = len(TOPICS)) -> Path:
    """`count` ready trees (one per topic), plus one German tree and one still growing."""
    trees = [tree(i, TOPICS[i % len(TOPICS)]) for i in range(count)]
    trees += [tree(count, "Katzen", lang="de"), tree(count + 1, "bees", state="growing")]
    path.write_text("".join(json.dumps(t) + "\n" for t in trees))
    return path
