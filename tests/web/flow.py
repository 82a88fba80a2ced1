"""The web UI driven over plain HTTP (a TestClient): sign in, pick tasks, answer the forms a page shows,
chat."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.accounts import service as accounts
from oasst.collection.stats import service as stats_service
from oasst.collection.stats.schemas import UserStatsTimeFrame
from oasst.config import Settings, TreeManagerConfig
from oasst.db.session import create_engine, sessionmaker, transaction
from tests.inference.helpers import MODEL, read_events

# One tree that needs every task type: alice's prompt P, carol's answer A1, erin's and frank's follow-ups
# U1 and U2 under A1 (the only assistant message then), grace's answer A2 under P (the only prompter message
# shallow enough). Both P's and A1's replies are then ranked, and the tree is ready for export.
FULL_LOOP_TREES = TreeManagerConfig(
    goal_tree_size=5,
    max_tree_depth=2,
    max_children_count=2,
    num_prompter_replies=2,
    num_reviews_initial_prompt=1,
    num_reviews_reply=1,
    num_required_rankings=1,
    p_lonely_child_extension=0,
    p_full_labeling_review_reply_prompter=1.0,
    rank_prompter_replies=True,
)
PROMPT = "What is a good first programming language?"
A1, A2 = "Python: it reads like English and runs everywhere.", "Try Scratch first."
U1, U2 = "Why Python and not JavaScript?", "Is it fast enough for games?"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TEXTS = re.compile(r'<div class="text">(.*?)</div>', re.S)
STEP = re.compile(r'<li id="m-([0-9a-f-]+)" class="bubble \w+" data-role="(\w+)" data-state="(\w+)">')
STREAM = re.compile(r'data-stream="([^"]+)"')


def csrf(page: str) -> str:
    match = CSRF.search(page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def texts(page: str) -> list[str]:
    """The message texts a page shows, in order, unescaped."""
    return [html.unescape(text) for text in TEXTS.findall(page)]


class WebUser:
    """One browser (cookie jar) on the web UI."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.token = ""

    def get(self, path: str) -> Response:
        response = self.client.get(path)
        if "csrf_token" in response.text:
            self.token = csrf(response.text)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Response:
        if not self.token:
            self.get("/signin")
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def dev_sign_in(self, name: str, role: str = "user") -> None:
        self.client.cookies.clear()
        self.token = ""
        response = self.post("/signin/dev", {"name": name, "role": role})
        assert response.status_code == 200, response.text
        self.token = csrf(response.text)

    def sign_in(self, username: str, password: str) -> None:
        """Sign in with a local account, in a fresh session."""
        self.client.cookies.clear()
        self.get("/signin")
        response = self.post("/signin", {"username": username, "password": password})
        assert response.url.path == "/", response.text
        self.token = csrf(response.text)

    def task(self, kind: str, lang: str = "en") -> tuple[str, str]:
        """Ask for a task of `kind`; the task page's path and HTML."""
        response = self.post("/contribute", {"kind": kind, "lang": lang})
        assert response.status_code == 200, response.text
        path = response.url.path
        assert path.startswith("/tasks/"), f"no {kind} task: {response.url}"
        return path, response.text

    def answer(self, path: str, kind: str, **fields: Any) -> Response:
        return self.post(path, {"kind": kind, **fields})


def steps(page: str) -> list[tuple[str, str, str]]:
    """The thread on a chat page: (message id, role, state) of each message."""
    return STEP.findall(page)


def new_chat(user: WebUser) -> str:
    """Start a chat; the chat page's path."""
    response = user.post("/chat")
    assert response.status_code == 200, response.text
    assert re.fullmatch(r"/chat/[0-9a-f-]{36}", response.url.path)
    return response.url.path


def ask(user: WebUser, chat: str, content: str, preset: str = "k50") -> Response:
    return user.post(chat, {"content": content, "model": MODEL, "preset": preset})


def stream(user: WebUser, page: str) -> list[dict[str, Any]]:
    """Follow the reply the page is waiting for to its end, through the page's event route."""
    match = STREAM.search(page)
    assert match, "the page waits for no reply"
    return list(read_events(user.client, match.group(1)))  # type: ignore[arg-type]


def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    """Run a service call in a transaction of its own on the app's database, as a CLI command would."""

    async def run() -> Any:
        engine = create_engine(settings.effective_database_url)
        try:
            async with transaction(sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def register(settings: Settings, username: str, password: str) -> None:
    """A local account ("Name Display" its display name), made as `oasst accounts create` makes it."""
    in_transaction(
        settings,
        lambda session: accounts.register(session, username, password, f"{username.title()} Display"),
    )


def refresh_leaderboards(settings: Settings) -> None:
    """What the periodic user-stats jobs do."""

    async def refresh(session: AsyncSession) -> None:
        for frame in UserStatsTimeFrame:
            await stats_service.refresh_time_frame(session, frame)

    in_transaction(settings, refresh)
