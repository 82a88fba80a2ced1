"""A test frontend: drives /api/v1 the way the Open-Assistant website does (task, ack, interaction)."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import Client, Response

from oasst.config import TreeManagerConfig

# Small trees: a prompt and two assistant replies fill one; one review per message, one ranking per tree.
SMALL_TREES = TreeManagerConfig(
    goal_tree_size=3,
    max_tree_depth=2,
    max_children_count=2,
    num_reviews_initial_prompt=1,
    num_reviews_reply=1,
    num_required_rankings=1,
    p_lonely_child_extension=0,
)
# The tree of `Frontend.grow_tree`: alice's prompt, carol's answer (OTHER) and dave's (BEST, ranked first).
PROMPT = "What is the capital of France?"
BEST, OTHER = "It is Paris, on the Seine.", "Paris."


def user(name: str) -> dict[str, str]:
    return {"id": name, "display_name": name.title(), "auth_method": "local"}


def error(response: Response) -> tuple[int, int]:
    """An error answer's status and Open-Assistant error code."""
    return response.status_code, response.json()["error_code"]


class Frontend:
    """Thin helpers over an HTTP client (a TestClient or a real one); most return the raw response."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.acks: dict[str, str] = {}

    def request(self, who: str, kind: str = "random", lang: str = "en") -> Response:
        return self.client.post("/api/v1/tasks/", json={"type": kind, "user": user(who), "lang": lang})

    def task(self, who: str, kind: str = "random") -> dict[str, Any]:
        response = self.request(who, kind)
        assert response.status_code == 200, response.text
        return response.json()

    def ack(self, task: dict[str, Any]) -> str:
        """Ack once per task, with a fresh frontend id; later calls reuse it."""
        if task["id"] in self.acks:
            return self.acks[task["id"]]
        frontend_id = self.acks[task["id"]] = f"ack-{uuid.uuid4()}"
        response = self.client.post(f"/api/v1/tasks/{task['id']}/ack", json={"message_id": frontend_id})
        assert response.status_code == 204, response.text
        return frontend_id

    def _interact(self, kind: str, who: str, message_id: str, **fields: Any) -> Response:
        body = {"type": kind, "user": user(who), "message_id": message_id, **fields}
        return self.client.post("/api/v1/tasks/interaction", json=body)

    def reply(self, who: str, task: dict[str, Any], text: str) -> Response:
        frontend_id = self.ack(task)
        reply_id = f"msg-{uuid.uuid4()}"
        return self._interact(
            "text_reply_to_message", who, frontend_id, user_message_id=reply_id, text=text, lang="en"
        )

    def label(self, who: str, task: dict[str, Any], **values: float) -> Response:
        self.ack(task)
        labels = dict.fromkeys(task["mandatory_labels"], 0.0) | values
        fields = {"task_id": task["id"], "text": "", "labels": labels}
        return self._interact("text_labels", who, task["message_id"], **fields)

    def rank(self, who: str, task: dict[str, Any], ranking: list[int]) -> Response:
        return self._interact("message_ranking", who, self.ack(task), ranking=ranking)

    def accepted_prompt(self, who: str, text: str) -> str:
        """A new prompt of `who`, accepted by bob's review (it then waits for the prompt lottery); its id."""
        assert self.reply(who, self.task(who, "initial_prompt"), text).status_code == 200
        review = self.task("bob", "label_initial_prompt")
        assert self.label("bob", review, quality=1.0).status_code == 200
        return str(review["message_id"])

    def grow_tree(self, **review_labels: float) -> str:
        """A SMALL_TREES tree grown to ready_for_export; the id of its root.

        Alice asks PROMPT, carol answers OTHER and dave BEST; erin and frank review both answers with
        quality 0.8 and `review_labels`; bob ranks BEST first.
        """
        root_id = self.accepted_prompt("alice", PROMPT)
        for who, text in (("carol", OTHER), ("dave", BEST)):
            assert self.reply(who, self.task(who, "assistant_reply"), text).status_code == 200
        for reviewer in ("erin", "frank"):
            task = self.task(reviewer, "label_assistant_reply")
            assert self.label(reviewer, task, quality=0.8, **review_labels).status_code == 200
        ranking = self.task("bob", "rank_assistant_replies")
        texts = [m["text"] for m in ranking["reply_messages"]]
        assert self.rank("bob", ranking, [texts.index(BEST), texts.index(OTHER)]).status_code == 200
        assert self.tree_state(root_id) == "ready_for_export"
        return root_id

    def tree_state(self, message_id: str) -> str:
        response = self.client.get(f"/api/v1/messages/{message_id}/tree/state")
        assert response.status_code == 200, response.text
        return str(response.json()["state"])
