"""Latency the course gateway adds over calling the same worker path directly, with budgets on.

Runs `oasst serve` (no embedded worker) on a fresh database and one `oasst worker --backend fake` (it echoes
at once, so the model costs nothing and what is left is the serving path; it takes as many requests at once
as there are clients), then times three calls of the
same question, each answered by the same worker through the same queue:

- direct:  POST /v1/chat/completions with the operator key (no account, no budget);
- v1-key:  the same call with a gateway account key (reserved and settled on the account's budget);
- ask:     the Parrot API's POST /api/chats/{id}/messages (history read, budget reserved and settled,
           the question and reply stored), each request on a fresh chat made beforehand.

Each mode runs N requests from C concurrent clients (kept connected throughout) after a warm-up, in turns
of ten requests per client that rotate between the modes, the order changing from round to round, so that the
machine's drift and its noisy moments fall on every mode alike.

    .venv/bin/python bench/gateway_overhead.py --engines sqlite,postgresql --concurrency 1,32 --requests 400

With `--socket /var/run/postgresql` the server reaches PostgreSQL through its Unix socket instead of TCP on
127.0.0.1 (a database on the same host; a round trip then costs a third as much).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from common import free_port, fresh_database, over_socket, pct, wait_healthy

KEY = "bench-operator-key-0123456789"
ADMIN = "bench-gateway-admin-0123456789"
MODEL = "fake-model"
QUESTION = "hello there, how are you today?"
MAX_TOKENS = 16
MODES = ("direct", "v1-key", "ask")
TURN = 10  # requests of each client per mode in a turn

Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def added_ms(latencies: list[float], direct: list[float], q: float) -> str:
    return f"{pct(latencies, q) - pct(direct, q):+.1f}"


async def run_mode(clients: list[httpx.AsyncClient], call: Call, per_client: int) -> list[float]:
    """`per_client` calls from each client at once, each client's in turn; the latency of each, in seconds."""
    latencies: list[float] = []

    async def run(http: httpx.AsyncClient) -> None:
        for _ in range(per_client):
            start = time.perf_counter()
            response = await call(http)
            latencies.append(time.perf_counter() - start)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"{response.status_code}: {response.text}")

    await asyncio.gather(*(run(http) for http in clients))
    return latencies


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    base_url: str, server_pid: int, concurrency: int, requests: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Latencies per mode, and the server's CPU milliseconds per request per mode."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    rounds = max(1, requests // (TURN * concurrency))
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        made = await http.post(
            "/api/accounts",
            json={"name": f"bench {concurrency}", "course": "bench", "budget": 10**12},
            headers=admin,
        )
        account_key = made.json()["api_key"]
        account = {"Authorization": f"Bearer {account_key}"}
        chats: list[int] = []
        for _ in range((rounds * TURN + 1) * concurrency):  # a fresh chat for every ask
            chats.append(
                (await http.post("/api/chats", json={"name": "bench"}, headers=account)).json()["id"]
            )
    body = {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], "max_tokens": MAX_TOKENS}

    def v1(key: str) -> Call:
        headers = {"Authorization": f"Bearer {key}"}
        return lambda http: http.post("/v1/chat/completions", json=body, headers=headers)

    async def ask(http: httpx.AsyncClient) -> httpx.Response:
        question = {"content": QUESTION, "model_args": {"max_tokens": MAX_TOKENS}}
        return await http.post(f"/api/chats/{chats.pop()}/messages", json=question, headers=account)

    calls: dict[str, Call] = {"direct": v1(KEY), "v1-key": v1(account_key), "ask": ask}
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, float] = dict.fromkeys(MODES, 0.0)
    clients = [httpx.AsyncClient(base_url=base_url, timeout=60) for _ in range(concurrency)]
    try:
        for mode in MODES:  # warm-up: connections, statement caches
            await run_mode(clients, calls[mode], 1)
        for round_ in range(rounds):
            for mode in MODES[round_ % 3 :] + MODES[: round_ % 3]:
                before = cpu_seconds(server_pid)
                samples[mode] += await run_mode(clients, calls[mode], TURN)
                cpu[mode] += cpu_seconds(server_pid) - before
    finally:
        for http in clients:
            await http.aclose()
    return samples, {mode: 1000 * cpu[mode] / len(samples[mode]) for mode in MODES}


def run_engine(engine: str, concurrencies: list[int], requests: int, socket_dir: str | None) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        database_url = fresh_database(engine, Path(workdir), "gateway")
        port = free_port()
        env = {
            **os.environ,
            "OASST_DATABASE_URL": over_socket(database_url, socket_dir),
            "OASST_BOOTSTRAP_API_KEY": KEY,
            "OASST_GATEWAY_ADMIN_TOKEN": ADMIN,
            "OASST_LOG_LEVEL": "warning",
            "OASST_DATA_DIR": workdir,
            "OASST_JOBS_ENABLED": "false",
            "OASST_ENABLE_PROM_METRICS": "false",
        }
        base_url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "oasst.cli.main"]
        server = subprocess.Popen([*command, "serve", "--port", str(port), "--no-worker"], env=env)
        worker = None
        try:
            wait_healthy(base_url)
            minted = httpx.put(
                f"{base_url}/inference/admin/workers",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {KEY}"},
            )
            worker_args = ["--server", base_url, "--api-key", minted.json()["api_key"], "--backend", "fake"]
            # As many requests at once as there are clients: what is timed is the server, not a queue.
            worker_args += ["--max-parallel-requests", str(max(concurrencies))]
            worker = subprocess.Popen(
                [*command, "worker", *worker_args, "--model", MODEL], env=env, stderr=subprocess.DEVNULL
            )
            for _ in range(300):
                models = httpx.get(f"{base_url}/v1/models", headers={"Authorization": f"Bearer {KEY}"})
                if models.status_code == 200 and models.json()["data"]:
                    break
                time.sleep(0.1)
            for concurrency in concurrencies:
                samples, cpu = asyncio.run(measure(base_url, server.pid, concurrency, requests))
                direct = samples["direct"]
                for mode in MODES:
                    lat = samples[mode]
                    added = (
                        ""
                        if mode == "direct"
                        else f"{added_ms(lat, direct, 0.5)} / {added_ms(lat, direct, 0.99)}"
                    )
                    rows.append(
                        f"| {engine} | {concurrency} | {mode} | {len(lat)} | {pct(lat, 0.5):.1f} | "
                        f"{pct(lat, 0.99):.1f} | {added} | {cpu[mode]:.1f} |"
                    )
                    print(rows[-1], flush=True)
        finally:
            for process in (worker, server):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--requests", type=int, default=400, help="per mode and concurrency")
    parser.add_argument("--socket", metavar="DIR", help="reach PostgreSQL through its Unix socket in DIR")
    args = parser.parse_args()
    print("| engine | clients | mode | requests | p50 ms | p99 ms | added p50 / p99 ms | server CPU ms/req |")
    print("|---|---|---|---|---|---|---|---|")
    for engine in args.engines.split(","):
        run_engine(engine, [int(c) for c in args.concurrency.split(",")], args.requests, args.socket)


if __name__ == "__main__":
    main()
