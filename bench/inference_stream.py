"""Streaming speed of the inference service: server + worker + SSE against the backend alone.

Starts one `oasst serve --no-worker` on a fresh database and `oasst worker` processes, signs in through the
debug login (one user per concurrent stream: a user's new request cancels their pending ones elsewhere), and
reads replies over the SSE stream of the chat API, as a client does. Three parts, each side by side with the
same backend called in this process:

  smollm2  (a) tokens/s of the bundled SmolLM2-135M-Instruct (transformers backend, 1 torch thread): served
           (POST to the final `message` event, tokens counted by the worker) against TransformersBackend
           .generate() on the same thread and sampling, runs alternating. Target: served >= 95% of in-process.
           The CPU time per token of each side (worker + server processes, against this one) is shown too:
           on a shared machine it says what the serving path costs whatever the others run.
  fake     (b) the `fake` backend at full speed (no token delay; it echoes the prompt one word a token, so a
           prompt of N words gives N + 2 tokens): one long stream, then 128 concurrent streams (one worker
           taking them all at once). Targets: >= 5,000 streamed tokens/s through the one server process, and
           no stream that fails or loses a token. The server's CPU time per streamed token is shown too: what
           one core would stream, whatever else the machine runs.
  ttft     (c) time to first token added by the server: sequential short requests; the server's own time to
           first token (message created -> first token published, its Prometheus histogram, p50 interpolated
           within the bucket) minus the fake backend's own (generate() -> first token, in process). The time
           to the first token the client reads (the POST sent -> first token event) is shown beside it.
           Target: p50 under 10 ms.

A summary table comes at the end. Example (the figures in docs/benchmarks.md):

    .venv/bin/python bench/inference_stream.py --parts fake,ttft,smollm2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from common import free_port

ADMIN_KEY = "bench-inference-key-0123456789"
FAKE_MODEL = "fake-model"
STORY = "Write a long, detailed story about a lighthouse keeper and a storm."
TIMEOUT = httpx.Timeout(600.0, connect=30.0)


# --- processes ----------------------------------------------------------------------------------------------


def wait_for(check: str, seconds: float, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {check}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    url: str
    pid: int


@contextmanager
def server(workdir: Path) -> Iterator[Server]:
    """`oasst serve --no-worker` on a fresh SQLite database."""
    port = free_port()
    env = {
        **os.environ,
        "OASST_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "OASST_DATA_DIR": str(workdir),
        "OASST_BOOTSTRAP_API_KEY": ADMIN_KEY,
        "OASST_ALLOW_DEBUG_AUTH": "true",
        "OASST_RATE_LIMIT": "false",
        "OASST_JOBS_ENABLED": "false",
        "OASST_LOG_LEVEL": "warning",
        "OASST_EMBEDDED_WORKER": "false",
    }
    env.pop("OASST_REDIS_URL", None)
    command = [sys.executable, "-m", "oasst.cli.main", "serve", "--no-worker", "--port", str(port)]
    process = subprocess.Popen(command, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for("the server", 120, lambda: httpx.get(f"{base_url}/health").status_code == 200)
        yield Server(base_url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def worker(base_url: str, model: str, *options: str) -> Iterator[int]:
    """An `oasst worker` serving `model`, once the server lists it; yields its process id."""
    minted = httpx.put(
        f"{base_url}/inference/admin/workers",
        json={"name": f"bench {model}"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    command = [
        sys.executable,
        "-m",
        "oasst.cli.main",
        "worker",
        "--server",
        base_url,
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "OASST_WORKER_API_KEY": minted.json()["api_key"], "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([*command, *options], env=env)
    try:

        def served() -> bool:
            configs = httpx.get(f"{base_url}/inference/configs/model_configs").json()
            return model in [config["name"] for config in configs]

        wait_for(f"a worker serving {model}", 300, served)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- a client of the chat API -------------------------------------------------------------------------------


@dataclass
class Reply:
    sent: float  # time.time() when the request left
    first_token: float
    finished: float
    tokens: int  # token events read
    completion_tokens: int | None  # the worker's own count, when it sends one
    text: str
    final: dict[str, object]


async def sign_in(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await http.get(
        "/inference/auth/login/debug", params={"username": username}, follow_redirects=True
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']['access_token']}"}


async def ask(
    http: httpx.AsyncClient, headers: dict[str, str], model: str, content: str, max_new_tokens: int
) -> Reply:
    """A new chat, a prompter message, an assistant message, and its SSE stream read to the end."""
    chat = (await http.post("/inference/chats", json={}, headers=headers)).json()["id"]
    prompter = await http.post(
        f"/inference/chats/{chat}/prompter_message", json={"content": content}, headers=headers
    )
    body = {
        "parent_id": prompter.json()["id"],
        "model_config_name": model,
        "sampling_parameters": {"max_new_tokens": max_new_tokens},
    }
    sent = time.time()
    assistant = await http.post(f"/inference/chats/{chat}/assistant_message", json=body, headers=headers)
    assistant.raise_for_status()
    message = assistant.json()
    first_token, tokens, pieces = 0.0, 0, []
    final: dict[str, object] = {}
    url = f"/inference/chats/{chat}/messages/{message['id']}/events"
    async with http.stream("GET", url, headers=headers) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event["event_type"] == "token":
                tokens += 1
                pieces.append(event["text"])
                first_token = first_token or time.time()
            elif event["event_type"] != "pending":
                final = event
                break
    usage = final.get("usage")
    completion = usage["completion_tokens"] if isinstance(usage, dict) else None
    return Reply(sent, first_token, time.time(), tokens, completion, "".join(pieces), final)


def fake_prompt(tokens: int) -> str:
    """A prompt whose fake reply ("You said: " + prompt) is `tokens` tokens long."""
    return " ".join("w" for _ in range(tokens - 2))  # short words: a long reply within the length limit


def rate(replies: list[Reply]) -> float:
    """Tokens per second over the wall time of the replies (first request sent to last reply ended)."""
    return sum(reply.tokens for reply in replies) / (
        max(r.finished for r in replies) - min(r.sent for r in replies)
    )


# --- (b) the fake backend at full speed ---------------------------------------------------------------------


async def fake_streams(served: Server, long_tokens: int, streams: int, stream_tokens: int) -> list[str]:
    rows = []
    async with httpx.AsyncClient(base_url=served.url, timeout=TIMEOUT) as http:
        headers = [await sign_in(http, f"bench-{index}") for index in range(streams)]
        await ask(http, headers[0], FAKE_MODEL, fake_prompt(20), 64)  # warm-up
        cpu = cpu_seconds(served.pid)
        singles = [
            await ask(http, headers[0], FAKE_MODEL, fake_prompt(long_tokens), long_tokens) for _ in range(3)
        ]
        per_token = (cpu_seconds(served.pid) - cpu) / sum(reply.tokens for reply in singles)
        assert all(reply.tokens == long_tokens for reply in singles), [r.tokens for r in singles]
        single = statistics.median(rate([reply]) for reply in singles)
        label = f"(b) fake, 1 stream of {long_tokens} tokens (median of 3)"
        rows.append(f"| {label} | {single:,.0f} tokens/s | >= 5,000 |")
        rows.append(
            f"| (b) server CPU per streamed token (the same 3 streams) | {per_token * 1e6:.0f} us = "
            f"{1 / per_token:,.0f} tokens/s per core | |"
        )

        prompt = fake_prompt(stream_tokens)
        results = await asyncio.gather(
            *(ask(http, header, FAKE_MODEL, prompt, stream_tokens) for header in headers),
            return_exceptions=True,
        )
    replies = [result for result in results if isinstance(result, Reply)]
    expected = "You said: " + prompt
    failed = [
        result
        for result in results
        if not isinstance(result, Reply)
        or result.final.get("event_type") != "message"
        or result.text != expected
    ]
    total = rate(replies) if replies else 0.0
    rows.append(
        f"| (b) fake, {streams} concurrent streams of {stream_tokens} tokens | {total:,.0f} tokens/s, "
        f"{len(failed)} failed of {streams} | no failure |"
    )
    for result in failed[:3]:
        print(f"failed stream: {result!r}"[:500], file=sys.stderr)
    return rows


# --- (c) time to first token added by the server ------------------------------------------------------------


def ttft_histogram(base_url: str) -> dict[float, float]:
    """Cumulative bucket counts (upper bound -> count) of the server's time-to-first-token histogram."""
    text = httpx.get(f"{base_url}/metrics").text
    return {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "oasst_inference_time_to_first_token_seconds_bucket"
    }


def histogram_p50(before: dict[float, float], after: dict[float, float]) -> float:
    """The median of the samples added between two scrapes, interpolated within its bucket (seconds)."""
    bounds = sorted(after)
    counts = [after[bound] - before.get(bound, 0.0) for bound in bounds]
    half = counts[-1] / 2
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= half:
            return lower + (bound - lower) * (half - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return bounds[-2]


async def backend_ttft(requests: int) -> float:
    """The fake backend's own time to first token, in process (seconds, p50)."""
    from oasst.protocol.inference import ModelConfig, SamplingParameters
    from oasst.worker.backends.base import Generation, Token
    from oasst.worker.backends.fake import FakeBackend
    from oasst.worker.prompts import Turn

    backend = FakeBackend(ModelConfig(model_id=FAKE_MODEL))
    generation = Generation("", [Turn("user", "hello there, how are you")], SamplingParameters(), 0, True)
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        async for item in backend.generate(generation):
            if isinstance(item, Token):
                times.append(time.perf_counter() - start)
                break
    return statistics.median(times)


async def ttft(base_url: str, requests: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT) as http:
        headers = await sign_in(http, "bench-ttft")
        for _ in range(5):  # warm-up
            await ask(http, headers, FAKE_MODEL, "hello there, how are you", 16)
        before = ttft_histogram(base_url)
        replies = [
            await ask(http, headers, FAKE_MODEL, "hello there, how are you", 16) for _ in range(requests)
        ]
        after = ttft_histogram(base_url)
    server_p50 = histogram_p50(before, after)
    own = await backend_ttft(requests)
    client_p50 = statistics.median(reply.first_token - reply.sent for reply in replies)
    return [
        f"| (c) time to first token added by the server, p50 ({requests} requests) | "
        f"{(server_p50 - own) * 1000:.1f} ms (server {server_p50 * 1000:.1f} ms - backend "
        f"{own * 1000:.3f} ms; client sees {client_p50 * 1000:.1f} ms) | < 10 ms |"
    ]


# --- (a) SmolLM2, served against in process ----------------------------------------------------------------


async def smollm2(
    served_by: Server, worker_pid: int, cache: Path, max_new_tokens: int, runs: int
) -> list[str]:
    from oasst.protocol.inference import (
        MessageRead,
        MessageState,
        ModelConfig,
        SamplingParameters,
        WorkParameters,
    )
    from oasst.worker.backends.base import Generation, Token
    from oasst.worker.backends.hf import BUNDLED_MODEL, TransformersBackend, bundled_model_dir
    from oasst.worker.prompts import STOP_SEQUENCES

    model = ModelConfig(model_id=BUNDLED_MODEL, max_input_length=2048, max_total_length=4096)
    backend = TransformersBackend(model, path=bundled_model_dir(cache), threads=1)
    await backend.start()
    prompter = MessageRead(
        id=uuid.uuid4(),
        chat_id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        role="prompter",
        state=MessageState.manual,
        content=STORY,
    )

    async def in_process(seed: int) -> tuple[float, float]:
        """(tokens/s, CPU seconds of this process per token) of one reply generated here."""
        parameters = WorkParameters(
            model=model,
            sampling_parameters=SamplingParameters(max_new_tokens=max_new_tokens),
            do_sample=True,
            seed=seed,
        )
        generation = Generation.build([prompter], parameters, STOP_SEQUENCES)
        cpu, start, tokens = cpu_seconds(os.getpid()), time.perf_counter(), 0
        async for item in backend.generate(generation):
            tokens += isinstance(item, Token)
        return tokens / (time.perf_counter() - start), (cpu_seconds(os.getpid()) - cpu) / tokens

    async def through_server(http: httpx.AsyncClient, headers: dict[str, str]) -> tuple[float, float]:
        """(tokens/s, CPU seconds of worker and server per token) of one reply read over SSE."""
        pids = (worker_pid, served_by.pid)
        cpu = sum(map(cpu_seconds, pids))
        reply = await ask(http, headers, BUNDLED_MODEL, STORY, max_new_tokens)
        tokens = reply.completion_tokens or reply.tokens
        return tokens / (reply.finished - reply.sent), (sum(map(cpu_seconds, pids)) - cpu) / tokens

    local: list[tuple[float, float]] = []
    served: list[tuple[float, float]] = []
    async with httpx.AsyncClient(base_url=served_by.url, timeout=TIMEOUT) as http:
        headers = await sign_in(http, "bench-smollm2")
        await ask(http, headers, BUNDLED_MODEL, STORY, 8)  # warm-up
        await in_process(0)
        for run in range(runs):  # alternating which side goes first, so drift falls on both alike
            if run % 2:
                served.append(await through_server(http, headers))
                local.append(await in_process(run + 1))
            else:
                local.append(await in_process(run + 1))
                served.append(await through_server(http, headers))
            print(
                f"smollm2 run {run + 1}: in process {local[-1][0]:.1f}, served {served[-1][0]:.1f} tokens/s; "
                f"CPU per token {local[-1][1] * 1000:.1f} vs {served[-1][1] * 1000:.1f} ms",
                flush=True,
            )
    await backend.close()
    speed = [statistics.median(side[0] for side in runs_) for runs_ in (served, local)]
    cost = [statistics.median(side[1] for side in runs_) for runs_ in (served, local)]
    return [
        f"| (a) SmolLM2 through server + worker + SSE vs in process, 1 stream ({runs} runs each, median) | "
        f"{speed[0]:.1f} vs {speed[1]:.1f} tokens/s = {speed[0] / speed[1]:.0%} | >= 95% |",
        f"| (a) SmolLM2 CPU time per token, worker + server vs in process (same runs, median) | "
        f"{cost[0] * 1000:.1f} vs {cost[1] * 1000:.1f} ms = {cost[1] / cost[0]:.0%} of the speed | |",
    ]


# --- main ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--parts", default="fake,ttft,smollm2", help="which of fake, ttft, smollm2 to run")
    parser.add_argument("--long-tokens", type=int, default=3000, help="fake: tokens of the single stream")
    parser.add_argument("--streams", type=int, default=128, help="fake: concurrent streams")
    parser.add_argument(
        "--stream-tokens", type=int, default=200, help="fake: tokens of each concurrent stream"
    )
    parser.add_argument("--ttft-requests", type=int, default=200, help="ttft: sequential requests")
    parser.add_argument("--smollm2-tokens", type=int, default=128, help="smollm2: max_new_tokens per reply")
    parser.add_argument("--smollm2-runs", type=int, default=6, help="smollm2: runs of each side")
    parser.add_argument(
        "--model-cache",
        type=Path,
        default=None,
        help="smollm2: where the bundled model is converted once, about 30 s the first time (default: the "
        "worker's own, OASST_DATA_DIR/models)",
    )
    args = parser.parse_args()
    parts = args.parts.split(",")
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as workdir, server(Path(workdir)) as served:
        base_url = served.url
        if "fake" in parts or "ttft" in parts:
            worker_options = [
                "--backend",
                "fake",
                "--model",
                FAKE_MODEL,
                "--max-parallel-requests",
                str(args.streams),
            ]
            with worker(base_url, FAKE_MODEL, *worker_options):
                if "fake" in parts:
                    rows += asyncio.run(
                        fake_streams(served, args.long_tokens, args.streams, args.stream_tokens)
                    )
                    print("\n".join(rows), flush=True)
                if "ttft" in parts:
                    rows += asyncio.run(ttft(base_url, args.ttft_requests))
                    print(rows[-1], flush=True)
        if "smollm2" in parts:
            from oasst.config import Settings
            from oasst.worker.backends.hf import BUNDLED_MODEL, bundled_model_dir

            cache = args.model_cache or Settings().models_dir
            bundled_model_dir(cache)  # convert once, before either side is timed
            options = ["--backend", "transformers", "--threads", "1", "--cache-dir", str(cache)]
            with worker(base_url, BUNDLED_MODEL, *options) as worker_pid:
                rows += asyncio.run(
                    smollm2(served, worker_pid, cache, args.smollm2_tokens, args.smollm2_runs)
                )
    print("\n| measurement | result | target |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
