"""The health route answers without a key."""

from fastapi.testclient import TestClient


def test_health_answers_ok(app_client: TestClient) -> None:
    response = app_client.get("/health", headers={"X-API-Key": ""})
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
