"""Load benchmark of the task protocol: N contributors loop "request a random task, ack it, answer it".

Runs `oasst serve` (one process) on a fresh database with the configuration of the upstream baseline,
drives it over HTTP with no think time, and reports completed tasks/s, the server process's CPU time per
completed task, latency percentiles per endpoint, errors, trees by state, and whether the tree manager's
limits held.

    .venv/bin/python bench/collection_load.py --engines sqlite,postgresql --contributors 1,8,32 --duration 60

With `--socket /var/run/postgresql` the server reaches PostgreSQL through its Unix socket instead of TCP on
127.0.0.1 (on these virtual machines a loopback TCP round trip costs several times as much).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from common import drop_database, free_port, fresh_database, over_socket, pct, wait_healthy
from oasst.db.session import sync_url

KEY = "bench-key-0123456789abcdef"
# The upstream baseline's configuration (shared spec: collection-baseline.md).
BASELINE_ENV = {
    "RATE_LIMIT": "false",
    "DEBUG_IGNORE_TOS_ACCEPTANCE": "false",
    "DEBUG_ALLOW_SELF_LABELING": "true",
    "DEBUG_ALLOW_SELF_RANKING": "true",
    "DEBUG_ALLOW_DUPLICATE_TASKS": "false",
    "TREE_MANAGER__MAX_ACTIVE_TREES": "10",
    "TREE_MANAGER__MAX_TREE_DEPTH": "2",
    "TREE_MANAGER__MAX_CHILDREN_COUNT": "2",
    "TREE_MANAGER__GOAL_TREE_SIZE": "5",
    "TREE_MANAGER__NUM_REVIEWS_INITIAL_PROMPT": "1",
    "TREE_MANAGER__NUM_REVIEWS_REPLY": "1",
    "TREE_MANAGER__NUM_REQUIRED_RANKINGS": "3",
}
WORDS = "the a sky river blue green answer question why how light water stone tree small large".split()  # noqa: SIM905
ENDPOINTS = ("POST /tasks/", "ack", "interaction")


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    completed: int = 0


def answer(
    task: dict[str, Any], user: dict[str, str], frontend_id: str, rng: random.Random
) -> dict[str, Any]:
    kind = task["type"]
    if kind in ("initial_prompt", "prompter_reply", "assistant_reply"):
        words = " ".join(rng.choice(WORDS) for _ in range(8))
        return {
            "type": "text_reply_to_message",
            "user": user,
            "message_id": frontend_id,
            "user_message_id": str(uuid.uuid4()),
            "text": f"{words} {uuid.uuid4().hex[:8]}",
            "lang": "en",
        }
    if kind.startswith("rank_"):
        ranking = list(range(len(task["reply_messages"])))
        rng.shuffle(ranking)
        return {"type": "message_ranking", "user": user, "message_id": frontend_id, "ranking": ranking}
    labels = {name: rng.random() for name in task["valid_labels"]}
    labels.update({"spam": 0.0, "lang_mismatch": 0.0} if "lang_mismatch" in labels else {"spam": 0.0})
    return {
        "type": "text_labels",
        "user": user,
        "message_id": task["message_id"],
        "task_id": task["id"],
        "text": "",
        "labels": labels,
    }


async def contributor(base_url: str, index: int, deadline: float, stats: Stats) -> None:
    rng = random.Random(index)
    user = {"id": f"bench-{index}", "display_name": f"Bench {index}", "auth_method": "local"}
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": KEY}, timeout=30) as http:
        await http.post("/api/v1/frontend_users/", json={**user, "tos_acceptance": True})

        async def call(name: str, path: str, body: Any) -> httpx.Response:
            start = time.perf_counter()
            response = await http.post(path, json=body)
            stats.latencies[name].append(time.perf_counter() - start)
            stats.statuses[f"{name} {response.status_code}"] += 1
            return response

        while time.monotonic() < deadline:
            got = await call("POST /tasks/", "/api/v1/tasks/", {"type": "random", "user": user, "lang": "en"})
            if got.status_code != 200:
                continue
            task = got.json()
            frontend_id = str(uuid.uuid4())
            await call("ack", f"/api/v1/tasks/{task['id']}/ack", {"message_id": frontend_id})
            done = await call(
                "interaction", "/api/v1/tasks/interaction", answer(task, user, frontend_id, rng)
            )
            if done.status_code == 200:
                stats.completed += 1


def limits_report(database_url: str) -> tuple[dict[str, int], list[str]]:
    """Trees by state, and any place where a tree manager limit was exceeded."""
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        states = dict(
            conn.execute(text("SELECT state, count(*) FROM message_tree_state GROUP BY state")).all()
        )
        over: list[str] = []
        children = conn.execute(
            text(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM message WHERE parent_id IS NOT NULL "
                "AND NOT deleted GROUP BY parent_id) AS c"
            )
        ).scalar()
        if children and children > int(BASELINE_ENV["TREE_MANAGER__MAX_CHILDREN_COUNT"]):
            over.append(f"{children} children under one parent")
        reviews = conn.execute(text("SELECT max(review_count) FROM message")).scalar()
        if reviews and reviews > 1:
            over.append(f"{reviews} reviews on one message")
        ranking = conn.execute(text("SELECT max(ranking_count) FROM message")).scalar()
        if ranking and ranking > int(BASELINE_ENV["TREE_MANAGER__NUM_REQUIRED_RANKINGS"]):
            over.append(f"ranking_count {ranking}")
        growing = states.get("growing", 0)
        if growing > int(BASELINE_ENV["TREE_MANAGER__MAX_ACTIVE_TREES"]):
            over.append(f"{growing} growing trees")
        sizes = conn.execute(
            text(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM message WHERE NOT deleted "
                "GROUP BY message_tree_id) AS t"
            )
        ).scalar()
        if sizes and sizes > int(BASELINE_ENV["TREE_MANAGER__GOAL_TREE_SIZE"]):
            over.append(f"a tree of {sizes} messages")
    engine.dispose()
    return {str(k): int(v) for k, v in states.items()}, over


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux: /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(engine: str, contributors: int, duration: float, socket_dir: str | None = None) -> str:
    with tempfile.TemporaryDirectory() as workdir:
        database_url = fresh_database(engine, Path(workdir), "load")
        port = free_port()
        env = {
            **os.environ,
            **BASELINE_ENV,
            "OASST_DATABASE_URL": over_socket(database_url, socket_dir),
            "OASST_BOOTSTRAP_API_KEY": KEY,
            "OASST_LOG_LEVEL": "warning",
            "OASST_DATA_DIR": workdir,
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "oasst.cli.main", "serve", "--port", str(port), "--no-worker"], env=env
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base_url)
            stats = Stats()
            cpu_before = cpu_seconds(server.pid)
            start = time.monotonic()

            async def drive() -> None:
                deadline = start + duration
                await asyncio.gather(
                    *(contributor(base_url, i, deadline, stats) for i in range(contributors))
                )

            asyncio.run(drive())
            elapsed = time.monotonic() - start
            server_cpu = cpu_seconds(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(timeout=30)
        states, over = limits_report(database_url)
        drop_database(database_url)
    no_task = stats.statuses.get("POST /tasks/ 503", 0)  # 1006: nothing to do right now, not a failure
    five_xx = sum(n for key, n in stats.statuses.items() if key.split()[-1].startswith("5")) - no_task
    latency = " | ".join(
        f"{pct(stats.latencies[name], 0.5):.0f} / {pct(stats.latencies[name], 0.95):.0f} / "
        f"{pct(stats.latencies[name], 0.99):.0f}"
        for name in ENDPOINTS
    )
    trees = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
    return (
        f"| {engine} | {contributors} | {stats.completed / elapsed:.1f} "
        f"| {server_cpu / max(stats.completed, 1) * 1000:.1f} | {latency} | {five_xx} | "
        f"{no_task} | {trees} | {'held' if not over else '; '.join(over)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--contributors", default="1,8,32")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--socket", metavar="DIR", help="reach PostgreSQL through its Unix socket in DIR")
    args = parser.parse_args()
    print(
        "| engine | contributors | completed tasks/s | server CPU ms / task "
        "| POST /tasks/ p50 / p95 / p99 ms | ack p50 / p95 / p99 ms | interaction p50 / p95 / p99 ms "
        "| 5xx | 503 no task | trees by state | limits |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for engine in args.engines.split(","):
        for n in (int(x) for x in args.contributors.split(",")):
            print(run_one(engine, n, args.duration, args.socket), flush=True)


if __name__ == "__main__":
    main()
