"""SQL statements and CPU time per endpoint of the task loop, measured in-process (deterministic, no server).

K simulated contributors take turns doing "request a random task, ack it, answer it" N times each against
`create_app` over `httpx.ASGITransport`, on a fresh database with the load benchmark's configuration
(bench/collection_load.py). A `before_cursor_execute` listener counts the statements each endpoint sends;
the process's CPU time is taken around each call. The app's random generator is seeded, so on an otherwise
unchanged code base two runs count the same statements, however busy the machine is. BEGIN and COMMIT
(two round trips per request, but none for an ack, which runs without a transaction) are not cursor
executions and are not counted.

    .venv/bin/python bench/collection_statements.py --users 8 --loops 50
    .venv/bin/python bench/collection_statements.py --show 10   # also the most frequent statements
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

from collection_load import BASELINE_ENV, ENDPOINTS, KEY, answer, over_socket
from common import drop_database, fresh_database
from oasst.app import create_app
from oasst.config import Settings


class Meter:
    """Statements and CPU seconds per endpoint; `current` names the endpoint being called."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.calls: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self.cpu: Counter[str] = Counter()
        self.texts: dict[str, Counter[str]] = defaultdict(Counter)

    def on_statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.current is not None:
            self.statements[self.current] += 1
            self.texts[self.current][" ".join(statement.split())[:110]] += 1


async def run(engine: str, users: int, loops: int, seed: int, show: int, socket_dir: str | None) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        database_url = fresh_database(engine, Path(workdir), "statements")
        os.environ.update(
            {
                **BASELINE_ENV,
                "OASST_DATABASE_URL": over_socket(database_url, socket_dir),
                "OASST_BOOTSTRAP_API_KEY": KEY,
                "OASST_DATA_DIR": workdir,
                "OASST_JOBS_ENABLED": "false",
                "OASST_LOG_LEVEL": "warning",
            }
        )
        app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
        app.state.rng = random.Random(seed)
        meter = Meter()
        try:
            async with app.router.lifespan_context(app):
                event.listen(app.state.engine.sync_engine, "before_cursor_execute", meter.on_statement)
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://bench", headers={"X-API-Key": KEY}
                ) as http:
                    completed = await drive(http, meter, users, loops, random.Random(seed))
        finally:
            drop_database(database_url)
    report(meter, engine, users, loops, completed, show)


async def drive(http: httpx.AsyncClient, meter: Meter, users: int, loops: int, rng: random.Random) -> int:
    """The contributors in turn, one loop each per round; returns the loops whose answer was taken."""
    people = [
        {"id": f"bench-{i}", "display_name": f"Bench {i}", "auth_method": "local"} for i in range(users)
    ]
    for user in people:
        await http.post("/api/v1/frontend_users/", json={**user, "tos_acceptance": True})

    async def call(name: str, path: str, body: Any) -> httpx.Response:
        meter.current = name
        start = time.process_time()
        response = await http.post(path, json=body)
        meter.cpu[name] += time.process_time() - start
        meter.calls[name] += 1
        meter.current = None
        return response

    completed = 0
    for _ in range(loops):
        for user in people:
            got = await call("POST /tasks/", "/api/v1/tasks/", {"type": "random", "user": user, "lang": "en"})
            if got.status_code != 200:
                continue
            task = got.json()
            frontend_id = str(uuid.UUID(int=rng.getrandbits(128)))
            await call("ack", f"/api/v1/tasks/{task['id']}/ack", {"message_id": frontend_id})
            done = await call(
                "interaction", "/api/v1/tasks/interaction", answer(task, user, frontend_id, rng)
            )
            completed += done.status_code == 200
    return completed


def report(meter: Meter, engine: str, users: int, loops: int, completed: int, show: int) -> None:
    print(f"{engine}, {users} users x {loops} loops: {completed} tasks completed")
    print("| endpoint | calls | statements / call | CPU ms / call |")
    print("|---|---|---|---|")
    for name in ENDPOINTS:
        calls = meter.calls[name] or 1
        statements, cpu_ms = meter.statements[name] / calls, meter.cpu[name] / calls * 1000
        print(f"| {name} | {meter.calls[name]} | {statements:.2f} | {cpu_ms:.2f} |")
    done = completed or 1
    total = sum(meter.statements.values())
    cpu = sum(meter.cpu.values())
    print(f"| per completed loop | {completed} | {total / done:.2f} | {cpu / done * 1000:.2f} |")
    for name in ENDPOINTS if show else ():
        print(f"\n{name}: the {show} most frequent statements (count, start of the SQL)")
        for text, count in meter.texts[name].most_common(show):
            print(f"{count:7d}  {text}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--users", type=int, default=8, help="simulated contributors (default 8)")
    parser.add_argument("--loops", type=int, default=50, help="task loops per contributor (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the app's and the answers' randomness")
    parser.add_argument(
        "--show", type=int, default=0, help="also list the N most frequent statements per endpoint"
    )
    parser.add_argument("--socket", metavar="DIR", help="reach PostgreSQL through its Unix socket in DIR")
    args = parser.parse_args()
    asyncio.run(run(args.engine, args.users, args.loops, args.seed, args.show, args.socket))


if __name__ == "__main__":
    main()
