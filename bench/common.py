"""What the benchmarks share: a PostgreSQL or SQLite database of their own, a free port, a server's start-up,
percentiles."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import URL, make_url

from oasst.db.migrations import upgrade

PG_ADMIN = os.environ.get("OASST_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def fresh_database(engine: str, workdir: Path, tag: str) -> str:
    """A new, migrated database: a file in `workdir`, or `oasst_bench_<tag>_<pid>` on PG_ADMIN's server."""
    if engine == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        name = f"oasst_bench_{tag}_{os.getpid()}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    upgrade(url)
    return url


def over_socket(database_url: str, socket_dir: str | None) -> str:
    """The PostgreSQL URL through the Unix socket in `socket_dir` (None, or SQLite: unchanged)."""
    url = make_url(database_url)
    if socket_dir is None or url.get_backend_name() != "postgresql":
        return database_url
    return URL.create(
        url.drivername,
        username=url.username,
        password=url.password,
        database=url.database,
        query={"host": socket_dir},
    ).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(base_url: str, seconds: float = 30) -> None:
    """Wait until the server at `base_url` answers /health."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server at {base_url} did not start in {seconds:.0f} s")


def pct(values: list[float], q: float) -> float:
    """The q-quantile of latencies in seconds, in ms (nan when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
