"""A test frontend: drives /api/v1 the way the Open-Assistant website does (task, ack, interaction)."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import Client, Response


def user(name: str) -> dict[str, str]:
    return {"id": name, "display_name": name.title(), "auth_method": "local"}


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

    def reply(self, who: str, task: dict[str, Any], text: str) -> Response:
        frontend_id = self.ack(task)
        return self.client.post(
            "/api/v1/tasks/interaction",
            json={
                "type": "text_reply_to_message",
                "user": user(who),
                "message_id": frontend_id,
                "user_message_id": f"msg-{uuid.uuid4()}",
                "text": text,
                "lang": "en",
            },
        )

    def label(self, who: str, task: dict[str, Any], **values: float) -> Response:
        self.ack(task)
        labels = dict.fromkeys(task["mandatory_labels"], 0.0) | values
        return self.client.post(
            "/api/v1/tasks/interaction",
            json={
                "type": "text_labels",
                "user": user(who),
                "message_id": task["message_id"],
                "task_id": task["id"],
                "text": "",
                "labels": labels,
            },
        )

    def rank(self, who: str, task: dict[str, Any], ranking: list[int]) -> Response:
        frontend_id = self.ack(task)
        return self.client.post(
            "/api/v1/tasks/interaction",
            json={
                "type": "message_ranking",
                "user": user(who),
                "message_id": frontend_id,
                "ranking": ranking,
            },
        )

    def tree_state(self, message_id: str) -> str:
        response = self.client.get(f"/api/v1/messages/{message_id}/tree/state")
        assert response.status_code == 200, response.text
        return str(response.json()["state"])
