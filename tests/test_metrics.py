"""Prometheus metrics: requests by route template, task counters, trees by state, switched off."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi import Request
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from oasst.app import create_app
from oasst.config import Settings
from oasst.db.models import ApiClient, Message, MessageTreeState
from oasst.db.session import sync_url
from oasst.metrics import UNMATCHED, record_task_answered, record_task_handed_out


def _samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics", headers={"X-API-Key": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_requests_are_counted_under_their_route_template(app_client: TestClient) -> None:
    for name in ("alice", "bob"):
        app_client.get(f"/api/v1/frontend_users/local/{name}")
    samples = _samples(app_client)
    template = "/api/v1/frontend_users/{auth_method}/{username}"
    counted = {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == "oasst_http_requests_total" and dict(labels)["route"] == template
    }
    assert sum(counted.values()) == 2
    assert _value(samples, "oasst_http_request_duration_seconds_count", method="GET", route=template) == 2
    assert not any("alice" in value for _name, labels in samples for _key, value in labels)


def test_unmatched_paths_share_one_label(app_client: TestClient) -> None:
    app_client.get("/no/such/path/1")
    app_client.get("/no/such/path/2")
    samples = _samples(app_client)
    assert _value(samples, "oasst_http_requests_total", method="GET", route=UNMATCHED, status="404") == 2


def test_an_unhandled_error_counts_as_500(settings: Settings) -> None:
    app = create_app(settings)

    async def broken() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/test/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/test/broken").status_code == 500
        samples = _samples(client)
    assert _value(samples, "oasst_http_requests_total", method="GET", route="/test/broken", status="500") == 1


def test_task_counters(settings: Settings) -> None:
    app = create_app(settings)

    async def hand_out_and_answer(request: Request) -> None:
        record_task_handed_out(request, "initial_prompt")
        record_task_handed_out(request, "initial_prompt")
        record_task_answered(request, "initial_prompt")

    app.add_api_route("/test/tasks", hand_out_and_answer, methods=["POST"])
    with TestClient(app) as client:
        client.post("/test/tasks")
        samples = _samples(client)
    assert _value(samples, "oasst_tasks_handed_out_total", type="initial_prompt") == 2
    assert _value(samples, "oasst_tasks_answered_total", type="initial_prompt") == 1


def _insert_tree(database_url: str, state: str) -> None:
    engine = create_engine(sync_url(database_url))
    try:
        with Session(engine) as session, session.begin():
            api_client_id = session.scalars(select(ApiClient.id)).first()
            assert api_client_id is not None
            root_id = uuid.uuid4()
            session.add(
                Message(
                    id=root_id,
                    message_tree_id=root_id,
                    role="prompter",
                    api_client_id=api_client_id,
                    frontend_message_id=f"root-{root_id}",
                    text="What is a fixed window?",
                )
            )
            session.flush()
            session.add(
                MessageTreeState(
                    message_tree_id=root_id,
                    goal_tree_size=12,
                    max_depth=3,
                    max_children_count=3,
                    state=state,
                    active=True,
                    lang="en",
                )
            )
    finally:
        engine.dispose()


def test_trees_gauge_counts_trees_by_state_at_scrape_time(app_client: TestClient, database_url: str) -> None:
    samples = _samples(app_client)
    assert _value(samples, "oasst_trees", state="growing") == 0
    _insert_tree(database_url, "growing")
    _insert_tree(database_url, "growing")
    _insert_tree(database_url, "ranking")
    samples = _samples(app_client)
    assert _value(samples, "oasst_trees", state="growing") == 2
    assert _value(samples, "oasst_trees", state="ranking") == 1
    assert _value(samples, "oasst_trees", state="ready_for_export") == 0


def test_apps_in_one_process_keep_their_own_counts(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings())) as first, TestClient(create_app(make_settings())) as second:
        first.get("/no/such/path")
        assert _value(
            _samples(first), "oasst_http_requests_total", method="GET", route=UNMATCHED, status="404"
        )
        assert (
            _value(_samples(second), "oasst_http_requests_total", method="GET", route=UNMATCHED, status="404")
            is None
        )


def test_metrics_can_be_switched_off(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(enable_prom_metrics=False))

    async def hand_out(request: Request) -> None:
        record_task_handed_out(request, "random")
        record_task_answered(request, "random")

    app.add_api_route("/test/tasks", hand_out, methods=["POST"])
    with TestClient(app) as client:
        assert client.post("/test/tasks").status_code == 200
        assert client.get("/metrics").status_code == 404
