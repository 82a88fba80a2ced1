"""A course's budget in the chat, on both engines, with a real server and a fake worker (one word a token,
and no token counts of its own): joining with the course key, replies charged to the course account through
the gateway's budgets, the meter, the refusals at the limit; and the error pages in the visitor's language."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from oasst.config import Settings
from oasst.gateway import service as gateway_service
from oasst.gateway.schemas import AccountCreate, AccountRead, AccountUpdate
from oasst.inference import service as inference_service
from tests.conftest import ADMIN_KEY
from tests.gateway.conftest import Ledger
from tests.inference.helpers import MODEL
from tests.web.flow import WebUser, ask, in_transaction, new_chat, register, steps, stream

PASSWORD = "correct horse battery"
BUDGET = 2000  # room for the bound of a reply (its prompt's bytes and 1024 new tokens)
QUESTION = "What is the capital of France?"
REPLY_TOKENS = len(re.findall(r"\S+\s*", f"You said: {QUESTION}"))  # the fake worker's reply, a word a token
PROMPT_ESTIMATE = math.ceil(len(QUESTION) / 4)  # no count from the worker: a token per four characters
SPENT = PROMPT_ESTIMATE + REPLY_TOKENS
METER = re.compile(r'data-budget-meter(?: data-used="(\d+)" data-budget="(\d+)")? data-level="([\w-]+)"')
COMPOSER = 'class="stack composer"'
USED_UP = "The token budget of your course is used up, so the assistant cannot answer any more."


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = Ledger(database_url)
    yield ledger
    ledger.engine.dispose()


def meter(page: str) -> tuple[int, int, str] | str | None:
    """What a page's budget meter shows: (used, budget, level); only a level when it has no figures."""
    match = METER.search(page)
    if match is None:
        return None
    used, budget, level = match.groups()
    return (int(used), int(budget), level) if used is not None else level


def _course(settings: Settings) -> tuple[int, str]:
    """A course account with BUDGET tokens: its id and key."""
    body = AccountCreate(name="Team 1", course="CS-552", budget=BUDGET)
    account: AccountRead = in_transaction(
        settings, lambda session: gateway_service.create_account(session, settings, body)
    )
    assert account.api_key is not None
    return account.id, account.api_key


def _set_budget(settings: Settings, account_id: int, budget: int) -> None:
    """What the admin's budget form does."""
    body = AccountUpdate(budget=budget)
    in_transaction(settings, lambda session: gateway_service.update_account(session, account_id, body))


def _signed_in(site: str, browsers: Callable[[str], WebUser], settings: Settings) -> WebUser:
    register(settings, "ada", PASSWORD)
    ada = browsers(site)
    ada.sign_in("ada", PASSWORD)
    return ada


def _join(ada: WebUser, key: str) -> None:
    joined = ada.post("/account/course", {"key": key})
    assert "You joined the course" in joined.text, joined.text


def _reply(ada: WebUser, chat: str) -> None:
    """Send the question and follow the reply to its end, as the page's script does."""
    page = ask(ada, chat, QUESTION)
    assert page.status_code == 200, page.text
    assert stream(ada, page.text)[-1]["event_type"] == "message"


def _charges(ledger: Ledger) -> list[tuple[str, str, int, int, int]]:
    return [
        (c.state, c.source, c.prompt_tokens, c.completion_tokens, c.charged_tokens) for c in ledger.charges()
    ]


def test_a_course_pays_for_its_members_replies(
    site: str, browsers: Callable[[str], WebUser], settings: Settings, ledger: Ledger
) -> None:
    account_id, key = _course(settings)
    ada = _signed_in(site, browsers, settings)
    assert "Course key" in ada.get("/account").text
    refused = ada.post("/account/course", {"key": "gw-not-the-key"})
    assert refused.status_code == 400
    assert "This is not the key of an open course account." in refused.text

    _join(ada, key)
    assert meter(ada.get("/account").text) == (0, BUDGET, "ok")
    chat = new_chat(ada)
    assert meter(ada.get(chat).text) == (0, BUDGET, "ok")

    _reply(ada, chat)
    # The page reloads once the reply's stream has ended: its meter counts the reply.
    shown = ada.get(chat).text
    assert meter(shown) == (SPENT, BUDGET, "ok")
    assert f"{SPENT} of {BUDGET} tokens used" in shown
    account = ledger.account(account_id)
    assert (account.usage, account.reserved) == (SPENT, 0)
    assert _charges(ledger) == [("settled", "inference", PROMPT_ESTIMATE, REPLY_TOKENS, SPENT)]


def test_the_meter_warns_and_sending_stops_at_the_limit(
    site: str, browsers: Callable[[str], WebUser], settings: Settings, ledger: Ledger
) -> None:
    account_id, key = _course(settings)
    ada = _signed_in(site, browsers, settings)
    _join(ada, key)
    chat = new_chat(ada)
    _reply(ada, chat)
    thread = steps(ada.get(chat).text)

    # Past the soft limit (75 %): a warning, and a reply whose bound does not fit is refused.
    _set_budget(settings, account_id, SPENT + 4)
    page = ada.get(chat).text
    assert meter(page) == (SPENT, SPENT + 4, "soft-limit")
    assert f'low="{settings.gateway_soft_limit * (SPENT + 4)}" high="{SPENT + 4}"' in page
    assert "Most of the budget is used" in page and COMPOSER in page
    short = ask(ada, chat, "And of Spain?")
    assert short.status_code == 402
    assert "Not enough of your course&#39;s token budget is left for another reply." in short.text

    # At the limit: no message box, and a message sent anyway is refused, in the visitor's language.
    _set_budget(settings, account_id, SPENT)
    page = ada.get(chat).text
    assert meter(page) == (SPENT, SPENT, "used-up")
    assert COMPOSER not in page and USED_UP in page
    assert USED_UP in ask(ada, chat, "And of Spain?").text
    german = ada.post(
        chat,
        {"content": "Und von Spanien?", "model": MODEL, "preset": "k50"},
        headers={"Accept-Language": "de"},
    )
    assert german.status_code == 402
    assert "<h1>402 · Budget aufgebraucht</h1>" in german.text
    assert "Das Token-Budget deines Kurses ist aufgebraucht" in german.text

    # The inference API takes the same budget: a linked person cannot chat around it there.
    with httpx.Client(base_url=f"{site}/inference", timeout=30.0) as api:
        login = api.post("/auth/login/local", json={"username": "ada", "password": PASSWORD})
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']['access_token']}"
        api_chat = api.post("/chats", json={}).json()["id"]
        prompt = api.post(f"/chats/{api_chat}/prompter_message", json={"parent_id": None, "content": "Hi"})
        body = {"parent_id": prompt.json()["id"], "model_config_name": MODEL}
        reply = api.post(f"/chats/{api_chat}/assistant_message", json=body)
    assert (reply.status_code, reply.json()) == (402, {"detail": inference_service.COURSE_BUDGET_USED_UP})

    # None of the refusals spent anything or left a message behind.
    assert steps(ada.get(chat).text) == thread
    account = ledger.account(account_id)
    assert (account.usage, account.reserved) == (SPENT, 0)
    assert _charges(ledger) == [("settled", "inference", PROMPT_ESTIMATE, REPLY_TOKENS, SPENT)]


def test_a_new_key_ends_the_membership_and_leaving_ends_the_charges(
    site: str, browsers: Callable[[str], WebUser], settings: Settings, ledger: Ledger
) -> None:
    account_id, key = _course(settings)
    ada = _signed_in(site, browsers, settings)
    _join(ada, key)
    chat = new_chat(ada)

    in_transaction(settings, lambda session: gateway_service.rotate_key(session, account_id))
    page = ada.get(chat).text
    assert meter(page) == "key-invalid" and COMPOSER not in page
    refused = ask(ada, chat, QUESTION)
    assert refused.status_code == 403
    assert "The course key you joined with no longer works" in refused.text

    left = ada.post("/account/course/leave")
    assert "You left the course" in left.text and meter(left.text) is None
    page = ada.get(chat).text
    assert meter(page) is None and COMPOSER in page
    _reply(ada, chat)
    assert ledger.charges() == []  # on her own again: the course pays for nothing
    assert ledger.account(account_id).usage == 0


def test_error_pages_speak_the_visitors_language(visitor: WebUser) -> None:
    visitor.client.headers["Accept-Language"] = "de-DE,de;q=0.9"
    visitor.dev_sign_in("alice")
    task = visitor.get(f"/tasks/{uuid.uuid4()}")
    assert task.status_code == 404
    assert "<h1>404 · Nicht gefunden</h1>" in task.text
    assert "Diese Aufgabe gibt es nicht, oder sie ist nicht deine. Wähle eine neue." in task.text
    chat = visitor.get(f"/chat/{uuid.uuid4()}")
    assert chat.status_code == 404
    assert "Diesen Chat gibt es nicht, oder er gehört nicht dir." in chat.text

    visitor.client.headers["Accept-Language"] = "en"
    assert "This chat does not exist or is not yours." in visitor.get(f"/chat/{uuid.uuid4()}").text
    # The APIs answer as before, whatever the language.
    api = visitor.client.post(
        f"/api/v1/tasks/{uuid.uuid4()}/ack",
        json={"message_id": "m1"},
        headers={"X-API-Key": ADMIN_KEY, "Accept-Language": "de"},
    )
    assert api.json() == {"error_code": 2100, "message": "Task not found"}
