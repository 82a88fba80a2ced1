"""Server time per page of the web UI on a database with many messages (the target: p50 under 50 ms).

Imports N generated trees (the generator of bench/export_import.py, about 10 messages each) into a fresh
database, refreshes the leaderboards, then times every page for one signed-in volunteer with a prompt of their
own and an open task. The app runs in-process behind Starlette's TestClient (no network, no other load), so
the figures are the server's time per page.

    .venv/bin/python bench/web_pages.py --engines sqlite,postgresql --trees 10000 --requests 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from common import drop_database, fresh_database
from export_import import generate
from oasst.app import create_app
from oasst.collection.stats import service as stats_service
from oasst.config import Settings
from oasst.db.session import create_engine as create_async_engine
from oasst.db.session import sessionmaker, sync_url, transaction

OASST = str(Path(sys.executable).with_name("oasst"))
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def refresh_leaderboards(url: str) -> None:
    async def run() -> None:
        engine = create_async_engine(url)
        async with transaction(sessionmaker(engine)) as session:
            await stats_service.refresh_all(session)
        await engine.dispose()

    asyncio.run(run())


def sample_messages(url: str, count: int) -> list[str]:
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id FROM message ORDER BY random() LIMIT :n"), {"n": count}).all()
    engine.dispose()
    return [str(row[0]) for row in rows]


def timed(client: TestClient, path: str, requests: int) -> list[float]:
    """Milliseconds of `requests` GETs of `path` (after a warm-up); every answer must be a 200."""
    for _ in range(3):
        client.get(path)
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, f"{path}: {response.status_code}"
    return samples


def bench(engine: str, data: Path, workdir: Path, requests: int) -> list[tuple[str, list[float]]]:
    url = fresh_database(engine, workdir, "web")
    try:
        env = {**os.environ, "OASST_DATABASE_URL": url, "OASST_DATA_DIR": str(workdir)}
        subprocess.run([OASST, "import", str(data)], env=env, check=True, capture_output=True)
        refresh_leaderboards(url)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=url,
            data_dir=workdir,
            debug=True,
            rate_limit=False,
            jobs_enabled=False,
        )
        with TestClient(create_app(settings)) as client:
            token = CSRF.findall(client.get("/signin").text)[0]
            client.post("/signin/dev", data={"name": "volunteer", "csrf_token": token})
            token = CSRF.findall(client.get("/contribute").text)[0]
            form = {"kind": "initial_prompt", "lang": "en", "csrf_token": token}
            task = client.post("/contribute", data=form).url.path
            client.post(
                task, data={"kind": "initial_prompt", "text": "How do tides work?", "csrf_token": token}
            )
            open_task = client.post("/contribute", data=form).url.path
            pages = [
                ("/", "/"),
                ("/signin", "/signin"),
                ("/contribute", "/contribute"),
                ("/tasks/{id}", open_task),
                *(
                    (f"/messages/{{id}} #{n}", f"/messages/{m}")
                    for n, m in enumerate(sample_messages(url, 3))
                ),
                ("/profile", "/profile"),
                ("/leaderboard?frame=total", "/leaderboard?frame=total"),
                ("/leaderboard?frame=week", "/leaderboard?frame=week"),
            ]
            return [(name, timed(client, path, requests)) for name, path in pages]
    finally:
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--trees", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oasst-bench-") as tmp:
        workdir = Path(tmp)
        data = workdir / "trees.jsonl"
        messages = generate(data, args.trees)
        print(f"{args.trees} trees, {messages} messages; {args.requests} requests per page")
        print(f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}\n")
        print("| engine | page | p50 ms | p95 ms | max ms |")
        print("|---|---|---:|---:|---:|")
        for engine in args.engines.split(","):
            for name, samples in bench(engine, data, workdir, args.requests):
                p95 = statistics.quantiles(samples, n=20, method="inclusive")[-1]
                row = f"{statistics.median(samples):.1f} | {p95:.1f} | {max(samples):.1f}"
                print(f"| {engine} | {name} | {row} |", flush=True)


if __name__ == "__main__":
    main()
