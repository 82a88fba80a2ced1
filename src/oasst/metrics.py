"""Prometheus metrics of one app: HTTP requests by route template, tasks handed out and answered, trees,
and the inference service (workers, queues, assistant messages, tokens, time to first token)."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oasst.collection.stats import repository as stats_repository
from oasst.db.session import transaction
from oasst.inference import repository as inference_repository
from oasst.protocol.collection import TreeState
from oasst.protocol.inference import MessageState

log = logging.getLogger(__name__)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Paths that match no route share one label, so scanners cannot grow the series without bound.
UNMATCHED = "<unmatched>"
REJECTION_REASONS = ("queue_full", "no_worker")


class RouteTemplates:
    """The full template of a matched route, e.g. /api/v1/tasks/{task_id}/ack.

    FastAPI leaves the route as declared in its router in the scope, without the prefixes of the routers
    that include it; the app's route table knows the full path. It is read once, on first use.
    """

    def __init__(self, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self._routes = routes
        self._templates: dict[int, str] = {}

    def __call__(self, route: Any) -> str:
        if route is None:
            return UNMATCHED
        template = self._templates.get(id(route))
        if template is None:
            templates = {
                id(context.original_route): context.path_format
                for context in iter_route_contexts(self._routes())
                if context.path_format
            }
            # A route missing from the table (a mount, say) keeps its own template; remembered either way.
            template = templates.get(id(route)) or getattr(route, "path_format", None) or UNMATCHED
            self._templates = templates | self._templates | {id(route): template}
        return template


class Metrics:
    """The collectors of one app, in a registry of its own (several apps in one process never clash)."""

    def __init__(self, routes: Callable[[], Sequence[BaseRoute]] = list) -> None:
        self.route_template = RouteTemplates(routes)
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "oasst_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "oasst_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.tasks_handed_out = Counter(
            "oasst_tasks_handed_out", "Tasks handed out, by task type.", ["type"], registry=self.registry
        )
        self.tasks_answered = Counter(
            "oasst_tasks_answered", "Tasks answered, by task type.", ["type"], registry=self.registry
        )
        self.trees = Gauge(
            "oasst_trees",
            "Message trees by state, counted at scrape time.",
            ["state"],
            registry=self.registry,
        )
        self.inference_workers = Gauge(
            "oasst_inference_workers",
            "Workers connected to this server process, by model (compat hash).",
            ["model"],
            registry=self.registry,
        )
        self.inference_queue = Gauge(
            "oasst_inference_queue_length",
            "Assistant messages waiting for a worker, by model (compat hash), counted at scrape time.",
            ["model"],
            registry=self.registry,
        )
        self.inference_messages = Gauge(
            "oasst_inference_assistant_messages",
            "Assistant messages by state, counted at scrape time.",
            ["state"],
            registry=self.registry,
        )
        self.inference_tokens = Counter(
            "oasst_inference_tokens_generated",
            "Tokens streamed by the workers connected to this process.",
            registry=self.registry,
        )
        self.inference_first_token = Histogram(
            "oasst_inference_time_to_first_token_seconds",
            "From an assistant message's creation (queue wait included) to its first token.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.inference_inter_token = Histogram(
            "oasst_inference_inter_token_seconds",
            "Time between two tokens of one assistant message.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.inference_rejected = Counter(
            "oasst_inference_rejected_requests",
            "Assistant and completion requests refused, by reason: queue_full (429), no_worker (no connected "
            "worker serves the model).",
            ["reason"],
            registry=self.registry,
        )
        for reason in REJECTION_REASONS:  # every reason shows, at 0 until it happens
            self.inference_rejected.labels(reason)
        # Label lookups take a lock and build tuples; on the hot path a dict hit is cheaper.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(method, route, str(status)),
                self.http_duration.labels(method, route),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def set_tree_counts(self, counts: dict[str, int]) -> None:
        """Replace the trees gauge: every known state (0 when empty) plus any other state found."""
        self.trees.clear()
        for state, count in ({state.value: 0 for state in TreeState} | counts).items():
            self.trees.labels(state).set(count)

    def set_inference_counts(
        self, workers: dict[str, int], queued: dict[str, int], messages: dict[str, int]
    ) -> None:
        """Replace the inference gauges: workers and queue lengths by model, messages by state."""
        for gauge, counts in (
            (self.inference_workers, workers),
            (self.inference_queue, queued),
            (self.inference_messages, {state.value: 0 for state in MessageState} | messages),
        ):
            gauge.clear()
            for label, count in counts.items():
                gauge.labels(label).set(count)


class MetricsMiddleware:
    """Pure ASGI middleware timing and counting each HTTP request under its matched route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        # An exception that escapes the app becomes a 500 further out.
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            # The router leaves the matched route in the scope (the same dict we passed down).
            route = self.metrics.route_template(scope.get("route"))
            self.metrics.observe_request(method, route, status, time.perf_counter() - start)


def install_metrics(app: FastAPI) -> Metrics:
    """Count requests on `app` and serve GET /metrics (Prometheus text format, no auth)."""
    metrics = Metrics(lambda: app.routes)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    async def scrape(request: Request) -> Response:
        try:
            async with transaction(request.app.state.sessions) as session:
                counts = await stats_repository.tree_state_counts(session)
                queued = await inference_repository.pending_by_compat_hash(session)
                messages = await inference_repository.assistant_state_counts(session)
        except SQLAlchemyError as error:
            # The other metrics are still worth a scrape; the gauges keep their last values.
            log.warning("metrics: cannot count trees and messages: %s", error)
        else:
            metrics.set_tree_counts(counts)
            workers = collections.Counter(
                connection.model.compat_hash for connection in request.app.state.inference.workers
            )
            metrics.set_inference_counts(dict(workers), queued, messages)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)
    return metrics


def _metrics(request: Request) -> Metrics | None:
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    return metrics


def record_task_handed_out(request: Request, task_type: str) -> None:
    """Count a task handed out by POST /tasks/ (does nothing when metrics are off)."""
    metrics = _metrics(request)
    if metrics is not None:
        metrics.tasks_handed_out.labels(task_type).inc()


def record_task_answered(request: Request, task_type: str) -> None:
    """Count an interaction that completed a task of `task_type` (does nothing when metrics are off)."""
    metrics = _metrics(request)
    if metrics is not None:
        metrics.tasks_answered.labels(task_type).inc()
