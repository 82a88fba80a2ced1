"""Server time per page of the web UI on a database with many messages (the target: p50 under 50 ms).

Imports N generated trees (the generator of bench/export_import.py, about 10 messages each) into a fresh
database, refreshes the leaderboards and adds what the other pages show, at the same scale:

- through the pages: 40 gateway accounts (4 closed) and 5 API clients made by an admin; a local account of a
  student who registered and joined a course with its key; a volunteer's prompt and open task and 100
  messages they red-flagged; a message a moderator edited 3 times; 5 contributors a moderator banned;
- straight into the tables: 500 more local accounts, 1,000 people who signed in through OAuth, 25 gateway
  users per gateway account, and N chats of 4-18 messages (1,000 people), among them the student's 40 chats,
  one of 24 turns with a regenerated reply and a report.

Then it times every page a person opens (every GET of the web router but the OAuth redirects and a reply's
event stream) as the role that opens it: nobody signed in, a volunteer, the student, a moderator or an admin,
each signed in with the development sign-in (the student with their password). The app runs in-process
behind Starlette's TestClient (no network, no other load), so the figures are the server's time per page.

    .venv/bin/python bench/web_pages.py --engines sqlite,postgresql --trees 10000 --requests 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, insert, text

from common import drop_database, fresh_database
from export_import import generate, sentence
from oasst.accounts.service import hash_password
from oasst.app import create_app
from oasst.collection.stats import service as stats_service
from oasst.config import Settings
from oasst.db.models import (
    Chat,
    ChatMessage,
    ChatReport,
    GatewayUser,
    InferenceUser,
    LocalAccount,
    OAuthAccount,
)
from oasst.db.models.inference import uuid7
from oasst.db.session import create_engine as create_async_engine
from oasst.db.session import sessionmaker, sync_url, transaction
from oasst.protocol.inference import ModelConfig, WorkParameters

OASST = str(Path(sys.executable).with_name("oasst"))
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
KEY = re.compile(r'value="([^"]+)" readonly data-key')
PASSWORD = "tides-and-rivers-42"
MODEL = ModelConfig(model_id="HuggingFaceTB/SmolLM2-135M-Instruct")
WORK = WorkParameters(model=MODEL).model_dump(mode="json")
FRAMES = ("day", "week", "month", "total")


@dataclass(frozen=True)
class Seeded:
    """What the pages with an id in their path open."""

    task: str  # the volunteer's open task
    messages: list[str]  # three messages anywhere
    edited: str  # a message a moderator edited 3 times
    user: str  # the contributor with the most messages
    chat: str  # the student's long chat


@dataclass(frozen=True)
class Page:
    """A page to time: its row in the table, who opens it and its path."""

    name: str
    role: str
    path: str


# --- the data behind the pages ------------------------------------------------------------------------------


def refresh_leaderboards(url: str) -> None:
    async def run() -> None:
        engine = create_async_engine(url)
        async with transaction(sessionmaker(engine)) as session:
            await stats_service.refresh_all(session)
        await engine.dispose()

    asyncio.run(run())


def query(url: str, sql: str, **params: Any) -> list[str]:
    """The first column of a query's rows, as strings."""
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).all()
    engine.dispose()
    return [str(row[0]) for row in rows]


def sample_messages(url: str, count: int) -> list[str]:
    return query(url, "SELECT id FROM message ORDER BY random() LIMIT :n", n=count)


def insert_rows(conn: Connection, model: Any, rows: Iterator[dict[str, Any]], batch: int = 5000) -> None:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == batch:
            conn.execute(insert(model), chunk)
            chunk = []
    if chunk:
        conn.execute(insert(model), chunk)


def chat_messages(
    rng: random.Random, chat_id: uuid.UUID, turns: int, start: datetime
) -> list[dict[str, Any]]:
    """A thread of `turns` messages, prompter and assistant in turn, the replies complete."""
    rows: list[dict[str, Any]] = []
    parent = None
    for turn in range(turns):
        assistant = turn % 2 == 1
        sentences = rng.randint(3, 8) if assistant else 1
        row = {
            "id": uuid7(),
            "chat_id": chat_id,
            "parent_id": parent,
            "role": "assistant" if assistant else "prompter",
            "created_at": start + timedelta(seconds=20 * turn),
            "content": " ".join(sentence(rng, rng.randint(6, 18)) for _ in range(sentences)),
            "state": "complete" if assistant else "manual",
            "work_parameters": WORK if assistant else None,
            "worker_compat_hash": MODEL.compat_hash if assistant else None,
        }
        rows.append(row)
        parent = row["id"]
    return rows


def seed_tables(url: str, student_chat_user: str, chats: int) -> str:
    """Local accounts, gateway users and chats (see the module's docstring); the student's long chat."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    engine = create_engine(sync_url(url))
    password_hash = hash_password(PASSWORD)
    with engine.begin() as conn:
        insert_rows(
            conn,
            LocalAccount,
            (
                {
                    "id": uuid.uuid4(),
                    "username": f"member{n}",
                    "password_hash": password_hash,
                    "display_name": f"Member {n}",
                    "role": "moderator" if n % 50 == 0 else "user",
                    "enabled": n % 40 != 0,
                    "created_at": now - timedelta(days=n % 300),
                }
                for n in range(500)
            ),
        )
        insert_rows(
            conn,
            OAuthAccount,
            (
                {
                    "id": uuid.uuid4(),
                    "provider": ("discord", "github", "google")[n % 3],
                    "account_id": str(10**17 + n),
                    "display_name": f"Person {n}",
                    "role": "moderator" if n % 100 == 0 else "user",
                    "created_at": now - timedelta(days=n % 300),
                    "signed_in_at": now - timedelta(hours=n),
                }
                for n in range(1000)
            ),
        )
        accounts = [int(row) for row in conn.execute(text("SELECT id FROM gateway_account")).scalars()]
        insert_rows(
            conn,
            GatewayUser,
            (
                {"name": f"Student {account}-{n}", "code": f"s{account:03d}{n:03d}", "account_id": account}
                for account in accounts
                for n in range(25)
            ),
        )
        people = [str(uuid.uuid4()) for _ in range(1000)]
        insert_rows(
            conn,
            InferenceUser,
            (
                {
                    "id": person,
                    "provider": "debug",
                    "provider_account_id": f"person{n}",
                    "display_name": f"P{n}",
                }
                for n, person in enumerate(people)
            ),
        )
        # The student's 40 chats first, the last of them the long one; then everybody else's.
        owners = [student_chat_user] * 40 + [rng.choice(people) for _ in range(max(0, chats - 40))]
        chat_rows, message_rows = [], []
        for n, owner in enumerate(owners):
            chat_id, start = uuid7(), now - timedelta(minutes=len(owners) - n)
            long = n == 39
            thread = chat_messages(rng, chat_id, 24 if long else rng.randint(2, 9) * 2, start)
            tail = thread[-1]
            if long:  # the 4th reply was regenerated: its first draft is a sibling, shown as "1 of 2"
                reply = thread[7]
                draft = {"id": uuid7(), "created_at": reply["created_at"] - timedelta(seconds=10)}
                thread.append({**reply, **draft, "content": sentence(rng, 30)})
            chat_rows.append(
                {
                    "id": chat_id,
                    "user_id": owner,
                    "created_at": start,
                    "modified_at": tail["created_at"],
                    "title": thread[0]["content"][:100],
                    "active_thread_tail_message_id": tail["id"] if long else None,
                }
            )
            message_rows.extend(thread)
        insert_rows(conn, Chat, iter(chat_rows))
        insert_rows(conn, ChatMessage, iter(message_rows))
        long_chat = chat_rows[39]["id"]
        reply = next(
            row for row in message_rows if row["chat_id"] == long_chat and row["role"] == "assistant"
        )
        conn.execute(
            insert(ChatReport),
            {
                "id": uuid7(),
                "message_id": reply["id"],
                "user_id": student_chat_user,
                "report_type": "feedback",
                "reason": "Too long",
            },
        )
    engine.dispose()
    return str(long_chat)


# --- signing in and posting forms ---------------------------------------------------------------------------


def post(client: TestClient, path: str, form: dict[str, str], token_from: str = "/signin") -> Any:
    """POST a form with the session's CSRF token (read from `token_from`); fails on an error answer."""
    token = CSRF.findall(client.get(token_from).text)[0]
    response = client.post(path, data={**form, "csrf_token": token})
    assert response.status_code < 400, f"POST {path}: {response.status_code}"
    return response


def dev_sign_in(client: TestClient, name: str, role: str) -> None:
    client.cookies.clear()
    post(client, "/signin/dev", {"name": name, "role": role})


def prepare(client: TestClient, url: str, chats: int) -> Seeded:
    """Make the data of the pages (see the module's docstring)."""
    dev_sign_in(client, "admin", "admin")
    made = [
        post(client, "/admin/gateway", {"name": f"team-{n}", "course": f"course-{n % 8}"}) for n in range(40)
    ]
    keys = [KEY.findall(page.text)[0] for page in made]
    for account in query(url, "SELECT id FROM gateway_account ORDER BY id DESC LIMIT 4"):
        post(client, f"/admin/gateway/{account}/deactivate", {})
    for n in range(5):
        post(client, "/admin/api_clients", {"description": f"Frontend {n}", "frontend_type": f"bench-{n}"})

    client.cookies.clear()
    form = {"username": "student", "password": PASSWORD, "password_again": PASSWORD}
    post(client, "/register", {**form, "display_name": "A student"}, token_from="/register")
    post(client, "/account/course", {"key": keys[0]})
    client.get("/chat")  # the student's chat user
    student = query(url, "SELECT id FROM inference_user WHERE provider = 'local'")[0]
    chat = seed_tables(url, student, chats)

    dev_sign_in(client, "volunteer", "user")
    form = {"kind": "initial_prompt", "lang": "en"}
    prompt = post(client, "/contribute", form).url.path
    post(client, prompt, {"kind": "initial_prompt", "text": "How do tides work?"})
    task = post(client, "/contribute", form).url.path
    sampled = sample_messages(url, 104)
    for message in sampled[:100]:
        post(client, f"/messages/{message}/react", {"emoji": "red_flag"})

    dev_sign_in(client, "moderator", "moderator")
    edited = sampled[100]
    for n in range(3):
        post(client, f"/messages/{edited}/edit", {"text": f"Edit {n}: " + sentence(random.Random(n), 40)})
    busiest = "SELECT user_id FROM message GROUP BY user_id ORDER BY count(*) DESC LIMIT :n"
    user, *banned = query(url, busiest, n=6)
    for other in banned:
        post(client, f"/moderation/users/{other}", {"enabled": "false"})
    return Seeded(task, sampled[101:], edited, user, chat)


def pages(ids: Seeded) -> list[Page]:
    """Every page a person opens, each with the role that opens it."""
    return [
        Page("/signin", "nobody", "/signin"),
        Page("/register", "nobody", "/register"),
        Page("/account/deleted", "nobody", "/account/deleted"),
        Page("/", "volunteer", "/"),
        Page("/tos", "volunteer", "/tos"),
        Page("/contribute", "volunteer", "/contribute"),
        Page("/tasks/{id}", "volunteer", ids.task),
        Page("/messages", "volunteer", "/messages"),
        *(Page(f"/messages/{{id}} #{n}", "volunteer", f"/messages/{m}") for n, m in enumerate(ids.messages)),
        Page("/profile", "volunteer", "/profile"),
        *(Page(f"/leaderboard?frame={f}", "volunteer", f"/leaderboard?frame={f}") for f in FRAMES),
        Page("/account", "student", "/account"),
        Page("/account/delete", "student", "/account/delete"),
        Page("/chat", "student", "/chat"),
        Page("/chat/{id} (24 turns)", "student", f"/chat/{ids.chat}"),
        Page("/messages/{id} (edited)", "moderator", f"/messages/{ids.edited}"),
        Page("/messages/{id}/edit", "moderator", f"/messages/{ids.edited}/edit"),
        Page("/moderation (100 flags)", "moderator", "/moderation"),
        *(
            Page(f"/moderation/trollboard?frame={f}", "moderator", f"/moderation/trollboard?frame={f}")
            for f in FRAMES
        ),
        Page("/moderation/trollboard?banned=true", "moderator", "/moderation/trollboard?banned=true"),
        Page("/moderation/users/{id}", "moderator", f"/moderation/users/{ids.user}"),
        Page("/admin/accounts", "admin", "/admin/accounts"),
        Page("/admin/people", "admin", "/admin/people"),
        Page("/admin/people?q=Person 12", "admin", "/admin/people?q=Person%2012"),
        Page("/admin/gateway", "admin", "/admin/gateway"),
        Page("/admin/gateway?inactive=true", "admin", "/admin/gateway?inactive=true"),
        Page("/admin/api_clients", "admin", "/admin/api_clients"),
        Page("/admin/status", "admin", "/admin/status"),
    ]


# --- timing -------------------------------------------------------------------------------------------------


def sign_in_as(client: TestClient, role: str) -> None:
    if role == "nobody":
        client.cookies.clear()
    elif role == "student":
        client.cookies.clear()
        post(client, "/signin", {"username": "student", "password": PASSWORD})
    else:
        dev_sign_in(client, role, "user" if role == "volunteer" else role)


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


def bench(
    engine: str, data: Path, workdir: Path, requests: int, chats: int
) -> Iterator[tuple[Page, list[float]]]:
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
            allow_registration=True,
        )
        with TestClient(create_app(settings)) as client:
            role = ""
            for page in pages(prepare(client, url, chats)):
                if page.role != role:
                    sign_in_as(client, role := page.role)
                yield page, timed(client, page.path, requests)
    finally:
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--trees", type=int, default=10_000)
    parser.add_argument(
        "--chats", type=int, default=None, help="chats of 10 messages (default: as many as trees)"
    )
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    chats = args.trees if args.chats is None else args.chats
    with tempfile.TemporaryDirectory(prefix="oasst-bench-") as tmp:
        workdir = Path(tmp)
        data = workdir / "trees.jsonl"
        messages = generate(data, args.trees)
        print(f"{args.trees} trees, {messages} messages, {chats} chats; {args.requests} requests per page")
        print(f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}\n")
        print("| engine | page | opened by | p50 ms | p95 ms | max ms |")
        print("|---|---|---|---:|---:|---:|")
        for engine in args.engines.split(","):
            for page, samples in bench(engine, data, workdir, args.requests, chats):
                p95 = statistics.quantiles(samples, n=20, method="inclusive")[-1]
                row = f"{statistics.median(samples):.1f} | {p95:.1f} | {max(samples):.1f}"
                print(f"| {engine} | {page.name} | {page.role} | {row} |", flush=True)


if __name__ == "__main__":
    main()
