"""The chat pages: a real server and a real `oasst worker --backend fake`; replies stream through the page's
own event route (the browser session stands in for a token). Then once in Chromium."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import create_engine, select

from oasst.db.models import MessageEvaluation
from oasst.db.session import sync_url
from tests.inference.helpers import MODEL, read_events
from tests.web.browser import Volunteer
from tests.web.flow import WebUser, ask, new_chat, steps, stream, texts

QUESTION = "What is the capital of France?"
ANSWER = f"You said: {QUESTION}"


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """SQLite only: the chat services are covered on PostgreSQL by the inference API's tests."""
    return sqlite_database_url


def _evaluations(database_url: str) -> list[tuple[str, list[str]]]:
    """The stored choices between drafts: (chosen message, the drafts passed over)."""
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        columns = (MessageEvaluation.selected_message_id, MessageEvaluation.inferior_message_ids)
        rows = conn.execute(select(*columns))
        found = [(str(chosen), list(others)) for chosen, others in rows]
    engine.dispose()
    return found


def test_a_reply_streams_to_the_chat_page(site: str, browser_of: Callable[[str, str], WebUser]) -> None:
    alice = browser_of(site, "alice")
    chat = new_chat(alice)
    page = ask(alice, chat, QUESTION)
    assert page.status_code == 200, page.text
    assert texts(page.text) == [QUESTION]
    (_, role, _), (reply_id, reply_role, state) = steps(page.text)
    assert (role, reply_role) == ("prompter", "assistant")
    assert state in ("pending", "in_progress")

    events = stream(alice, page.text)
    tokens = "".join(str(event["text"]) for event in events if event["event_type"] == "token")
    assert events[-1]["event_type"] == "message"
    assert tokens == ANSWER

    shown = alice.get(chat).text
    assert texts(shown) == [QUESTION, ANSWER]
    assert steps(shown)[-1] == (reply_id, "assistant", "complete")
    listing = alice.get("/chat").text
    assert f'href="{chat}">{QUESTION}</a>' in listing  # the first message is the title
    # A finished reply's stream is its final message, so a late page still ends its wait.
    late = list(read_events(alice.client, f"{chat}/messages/{reply_id}/events"))  # type: ignore[arg-type]
    assert late[-1]["event_type"] == "message"

    # The conversation goes on under the reply.
    follow_up = ask(alice, chat, "And of Spain?")
    stream(alice, follow_up.text)
    assert texts(alice.get(chat).text) == [QUESTION, ANSWER, "And of Spain?", "You said: And of Spain?"]


def test_regenerate_vote_report_switch_and_pick_between_drafts(
    site: str, database_url: str, browser_of: Callable[[str, str], WebUser]
) -> None:
    alice = browser_of(site, "alice")
    chat = new_chat(alice)
    page = ask(alice, chat, QUESTION)
    stream(alice, page.text)
    first = steps(page.text)[-1][0]

    again = alice.post(f"{chat}/messages/{first}/regenerate")
    assert again.status_code == 200, again.text
    second = steps(again.text)[-1][0]
    assert second != first
    assert "2 / 2" in again.text  # the new draft is shown, the pager says there are two
    stream(alice, again.text)

    voted = alice.post(f"{chat}/messages/{second}/vote", {"score": "1"})
    assert 'value="1" title="Good" aria-label="Good" aria-pressed="true"' in voted.text
    voted = alice.post(f"{chat}/messages/{second}/vote", {"score": "1"})  # the same thumb takes it back
    assert 'aria-pressed="true"' not in voted.text
    alice.post(f"{chat}/messages/{second}/vote", {"score": "-1"})

    reported = alice.post(f"{chat}/messages/{second}/report", {"report_type": "spam", "reason": "ads"})
    assert "the report was sent" in reported.text
    assert '<span class="badge">reported</span>' in reported.text

    back = alice.post(f"{chat}/branch", {"message_id": first})
    assert steps(back.text)[-1][0] == first
    assert "1 / 2" in back.text
    assert 'aria-pressed="true"' not in back.text  # the first draft has no vote

    picked = alice.post(f"{chat}/messages/{second}/prefer")
    assert "your choice helps to train the assistant" in picked.text
    assert steps(picked.text)[-1][0] == second  # the chosen draft is shown
    assert _evaluations(database_url) == [(second, [first])]

    assert alice.post(f"{chat}/messages/{second}/vote", {"score": "2"}).status_code == 400
    bad = alice.post(f"{chat}/messages/{steps(back.text)[0][0]}/vote", {"score": "1"})
    assert bad.status_code == 400
    assert "Only assistant messages can be voted on" in bad.text


def test_chat_settings_hide_and_delete(site: str, browser_of: Callable[[str, str], WebUser]) -> None:
    alice = browser_of(site, "alice")
    chat = new_chat(alice)
    stream(alice, ask(alice, chat, QUESTION).text)

    saved = alice.post(f"{chat}/settings", {"title": "Capitals <b>", "hidden": "true"})
    assert "<h1>Capitals &lt;b&gt;</h1>" in saved.text  # escaped
    assert 'aria-label="Good"' not in saved.text  # opted out of training data: no feedback buttons
    assert chat not in alice.get("/chat").text
    assert "Capitals &lt;b&gt;" in alice.get("/chat?hidden=1").text
    assert "not used for training" in alice.get("/chat?hidden=1").text

    gone = alice.post(f"{chat}/delete")
    assert gone.url.path == "/chat"
    assert alice.get(chat).status_code == 404


def test_another_persons_chat_is_not_found(site: str, browser_of: Callable[[str, str], WebUser]) -> None:
    alice, bob = browser_of(site, "alice"), browser_of(site, "bob")
    chat = new_chat(alice)
    page = ask(alice, chat, QUESTION)
    stream(alice, page.text)
    reply = steps(page.text)[-1][0]

    bob.get("/chat")
    assert bob.get(chat).status_code == 404
    assert bob.client.get(f"{chat}/messages/{reply}/events").status_code == 404
    assert ask(bob, chat, "mine now").status_code == 404
    assert bob.post(f"{chat}/messages/{reply}/vote", {"score": "1"}).status_code == 404
    assert bob.post(f"{chat}/delete").status_code == 404
    assert texts(alice.get(chat).text) == [QUESTION, ANSWER]


def test_chat_posts_need_the_csrf_token_and_valid_input(
    site: str, browser_of: Callable[[str, str], WebUser]
) -> None:
    alice = browser_of(site, "alice")
    chat = new_chat(alice)
    forged = alice.client.post(chat, data={"content": "hi", "model": MODEL, "preset": "k50"})
    assert forged.status_code == 403
    assert alice.client.post("/chat", data={"csrf_token": "wrong"}).status_code == 403
    assert steps(alice.get(chat).text) == []

    unknown = ask(alice, chat, QUESTION, preset="hot")
    assert unknown.status_code == 400
    assert "Unknown sampling preset" in unknown.text
    assert ask(alice, chat, "   ").status_code == 400
    no_model = alice.post(chat, {"content": "hi", "model": "gpt-9", "preset": "k50"})
    assert no_model.status_code == 422
    assert "Model gpt-9 not found" in no_model.text
    assert steps(alice.get(chat).text) == []  # nothing half-written stays behind

    signed_out = httpx.get(f"{site}/chat", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/signin?next=/chat"


def test_a_person_chats_in_the_browser(chromium: Browser, site: str) -> None:
    alice = Volunteer(chromium, site, "alice")
    try:
        page = alice.page
        page.get_by_role("link", name="Chat").click()
        page.get_by_role("button", name="New chat").click()
        page.get_by_label("Your message").fill(QUESTION)
        page.get_by_label("Sampling").select_option("k50-Precise")
        page.get_by_role("button", name="Send").click()
        replies = page.locator('.bubble[data-role="assistant"] .text')
        expect(replies.last).to_have_text(ANSWER)
        expect(page.locator('.bubble[data-role="assistant"]')).to_have_attribute("data-state", "complete")

        page.get_by_role("button", name="Write again").click()
        expect(page.locator("[data-version]")).to_have_text("2 / 2")
        expect(replies.last).to_have_text(ANSWER)
        page.get_by_role("button", name="Good").click()
        expect(page.get_by_role("button", name="Good")).to_have_attribute("aria-pressed", "true")
        page.get_by_role("button", name="Previous version").click()
        expect(page.locator("[data-version]")).to_have_text("1 / 2")
        expect(page.get_by_role("button", name="Good")).to_have_attribute("aria-pressed", "false")
        alice.shoot("chat")

        page.get_by_role("link", name="All chats").click()
        expect(page.get_by_role("link", name=QUESTION)).to_be_visible()
    finally:
        alice.close()
