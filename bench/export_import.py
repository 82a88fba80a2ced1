"""Export/import benchmark: `oasst import` of a generated OASST file, then `oasst export` of the result.

Builds a file of N trees (about 10 messages each, with labels, emojis and ranking events), imports it into a
fresh database, exports it back (plain, then with labels and events), and reports messages/s and the peak
memory of each step (each one a child process, measured with wait4). On PostgreSQL the same run also times
`COPY (SELECT row_to_json(m) FROM message m) TO STDOUT` over the same rows: the ceiling for an export.

    .venv/bin/python bench/export_import.py --engines sqlite,postgresql --trees 10000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import drop_database, fresh_database

OASST = str(Path(sys.executable).with_name("oasst"))
WORDS = [
    *("the", "a", "sky", "river", "blue", "green", "answer", "question", "why", "how", "light", "water"),
    *("stone", "tree", "small", "large", "write", "explain", "code", "list", "number", "reason", "history"),
    *("science", "music", "people", "city", "world", "language", "model", "good", "better", "best"),
]
LABELS = ("spam", "lang_mismatch", "quality", "creativity", "humor", "toxicity", "helpfulness")
EMOJIS = ("+1", "-1", "red_flag", "_skip_reply", "heart_eyes")


@dataclass
class Step:
    name: str
    seconds: float
    peak_mb: float
    messages: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def generate(path: Path, trees: int, seed: int = 1) -> int:
    """An OASST file of `trees` ready_for_export trees: a prompt, 3 answers, 1-2 follow-ups each, answers."""
    rng = random.Random(seed)
    users = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(500)]
    clock = datetime(2025, 1, 1, tzinfo=UTC)
    messages = 0

    def node(parent: dict[str, object] | None, role: str, rank: int | None) -> dict[str, object]:
        nonlocal clock, messages
        clock += timedelta(seconds=rng.randint(1, 90), microseconds=rng.randint(0, 999_999))
        messages += 1
        result: dict[str, object] = {"message_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
        if parent is not None:
            result["parent_id"] = parent["message_id"]
        result |= {
            "user_id": rng.choice(users),
            "created_date": clock.isoformat(),
            "text": " ".join(sentence(rng, rng.randint(5, 20)) for _ in range(rng.randint(1, 6))),
            "role": role,
            "lang": "en" if rng.random() < 0.8 else "de",
            "review_count": 3,
            "review_result": True,
            "deleted": False,
        }
        if rank is not None:
            result["rank"] = rank
        result["synthetic"] = False
        if rng.random() < 0.3:
            result["emojis"] = {e: rng.randint(1, 3) for e in rng.sample(EMOJIS, rng.randint(1, 2))}
        result["replies"] = []
        result["labels"] = {
            name: {"value": round(rng.random(), 3), "count": 3} for name in rng.sample(LABELS, 3)
        }
        return result

    def ranking(parent: dict[str, object], replies: list[dict[str, object]], tree_id: str) -> None:
        order = list(range(len(replies)))
        rng.shuffle(order)
        parent["events"] = {
            "ranking": [
                {
                    "type": "ranking",
                    "user_id": rng.choice(users),
                    "ranking": order,
                    "ranked_message_ids": [str(r["message_id"]) for r in replies],
                    "ranking_parent_id": parent["message_id"],
                    "message_tree_id": tree_id,
                }
            ]
        }

    with path.open("w", encoding="utf-8") as out:
        for _ in range(trees):
            root = node(None, "prompter", None)
            answers = [node(root, "assistant", rank) for rank in range(3)]
            root["replies"] = answers
            ranking(root, answers, str(root["message_id"]))
            for answer in answers:
                follow_ups = [node(answer, "prompter", None) for _ in range(rng.randint(0, 2))]
                answer["replies"] = follow_ups
                for follow_up in follow_ups:
                    follow_up["replies"] = [node(follow_up, "assistant", 0)]
            tree = {"message_tree_id": root["message_id"], "tree_state": "ready_for_export", "prompt": root}
            out.write(json.dumps(tree, separators=(",", ":")) + "\n")
    return messages


def run(name: str, command: list[str], env: dict[str, str], messages: int, repeat: int = 1) -> Step:
    """Run one step as a child process (best of `repeat`): wall time and the child's own peak RSS (wait4)."""
    best: Step | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert child.stderr is not None
        errors = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"{name} failed ({child.returncode}): {errors.decode()[-2000:]}")
        step = Step(name, seconds, usage.ru_maxrss / 1024, messages)
        if best is None or step.seconds < best.seconds:
            best = step
    assert best is not None
    return best


COPY_SCRIPT = """
import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn, open(sys.argv[2], "wb") as out:
    with conn.cursor().copy("COPY (SELECT row_to_json(m) FROM message m) TO STDOUT") as copy:
        for block in copy:
            out.write(block)
"""


def count_lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(1 for _ in file)


def bench(engine: str, data: Path, messages: int, workdir: Path, repeat: int) -> list[Step]:
    url = fresh_database(engine, workdir, "export")
    env = {**os.environ, "OASST_DATABASE_URL": url}
    out = workdir / f"export-{engine}.jsonl"
    try:
        steps = [run("import", [OASST, "import", str(data)], env, messages)]
        steps.append(run("export", [OASST, "export", "--export-file", str(out)], env, messages, repeat))
        if count_lines(out) != count_lines(data):
            raise SystemExit(f"export wrote {count_lines(out)} trees, expected {count_lines(data)}")
        labels_events = [OASST, "export", "--export-file", str(out), "--export-labels", "--export-events"]
        steps.append(run("export --export-labels --export-events", labels_events, env, messages, repeat))
        if engine == "postgresql":
            dsn = url.replace("postgresql+psycopg://", "postgresql://")
            copy_out = workdir / "copy.jsonl"
            copy = [sys.executable, "-c", COPY_SCRIPT, dsn, str(copy_out)]
            steps.append(
                run("COPY (SELECT row_to_json(m) FROM message m) TO STDOUT", copy, env, messages, repeat)
            )
            if count_lines(copy_out) != messages:
                raise SystemExit(f"COPY wrote {count_lines(copy_out)} rows, expected {messages}")
        return steps
    finally:
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--trees", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each export step; the best counts.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oasst-bench-") as tmp:
        workdir = Path(tmp)
        data = workdir / "trees.jsonl"
        messages = generate(data, args.trees)
        size = data.stat().st_size / 1e6
        print(f"{args.trees} trees, {messages} messages, {size:.0f} MB of jsonl")
        print(f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}\n")
        print("| engine | step | seconds | messages/s | peak RSS (MB) |")
        print("|---|---|---:|---:|---:|")
        for engine in args.engines.split(","):
            steps = bench(engine, data, messages, workdir, args.repeat)
            for step in steps:
                row = f"{step.seconds:.2f} | {step.rate:,.0f} | {step.peak_mb:.0f}"
                print(f"| {engine} | {step.name} | {row} |", flush=True)
            if engine == "postgresql":
                export, copy = steps[1], steps[-1]
                print(f"| {engine} | export / COPY | | {export.rate / copy.rate:.2f} | |", flush=True)


if __name__ == "__main__":
    main()
