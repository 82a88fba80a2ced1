"""Moderators edit, delete and restore messages from the tree viewer and find trolls on the trollboard; the
collection API shows what they did. Nobody else may, and no form without the session's token is taken."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from oasst.collection.stats import service as stats_service
from oasst.collection.stats.schemas import UserStatsTimeFrame
from oasst.config import Settings
from oasst.db.models import ApiClient, Message
from tests.conftest import ADMIN_KEY
from tests.factories import Factory
from tests.web.flow import WebUser, in_transaction, texts

PROMPT, ANSWER, FOLLOW_UP = "What is two plus two?", "Five, of course.", "Are you sure?"
API = {"X-API-Key": ADMIN_KEY}


def _conversation(factory: Factory, client: ApiClient) -> list[Message]:
    """Alice's prompt, Bob's answer under it and Alice's follow-up under that."""
    alice = factory.user(client, "alice", display_name="Alice")
    bob = factory.user(client, "bob", display_name="Bob")
    prompt = factory.message(client, alice, text=PROMPT)
    answer = factory.message(client, bob, prompt, text=ANSWER)
    return [prompt, answer, factory.message(client, alice, answer, text=FOLLOW_UP)]


def _api(visitor: WebUser, path: str) -> Any:
    response = visitor.client.get(f"/api/v1{path}", headers=API)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_moderator_edits_deletes_and_restores_messages(
    visitor: WebUser, factory: Factory, admin: ApiClient
) -> None:
    prompt, answer, follow_up = _conversation(factory, admin)
    visitor.dev_sign_in("mod", role="moderator")
    tree = visitor.get(f"/messages/{prompt.id}").text
    assert texts(tree) == [PROMPT, ANSWER, FOLLOW_UP]
    assert f'href="/messages/{answer.id}/edit"' in tree and f'action="/messages/{answer.id}/delete"' in tree

    form = visitor.get(f"/messages/{answer.id}/edit").text
    assert f">{ANSWER}</textarea>" in form and "never been edited" in form
    refused = visitor.post(f"/messages/{answer.id}/edit", {"text": "   "})
    assert refused.status_code == 400 and "Message text is empty" in refused.text

    edited = visitor.post(f"/messages/{answer.id}/edit", {"text": "Four."})
    assert edited.url.path == f"/messages/{answer.id}"
    assert texts(edited.text) == [PROMPT, "Four.", FOLLOW_UP]
    assert '<span class="badge">edited</span>' in edited.text
    history = visitor.get(f"/messages/{answer.id}/edit").text
    assert texts(history) == [ANSWER, "Four."]  # the original first
    assert "Bob · original" in history and re.search(r"· mod\s*</span>", history)
    assert _api(visitor, f"/messages/{answer.id}")["text"] == "Four."
    assert [r["text"] for r in _api(visitor, f"/messages/{answer.id}/history")] == [ANSWER, "Four."]

    # Deleting the answer takes the follow-up with it; moderators still see both, marked.
    deleted = visitor.post(f"/messages/{answer.id}/delete")
    assert deleted.url.path == f"/messages/{answer.id}"
    assert deleted.text.count('<span class="badge warn">deleted</span>') == 2
    assert f'action="/messages/{follow_up.id}/undelete"' in deleted.text
    assert [_api(visitor, f"/messages/{m.id}")["deleted"] for m in (prompt, answer, follow_up)] == [
        False,
        True,
        True,
    ]
    visitor.dev_sign_in("carol")
    assert texts(visitor.get(f"/messages/{prompt.id}").text) == [PROMPT]
    assert visitor.get(f"/messages/{answer.id}").status_code == 404

    # Restoring the follow-up restores what it answers as well.
    visitor.dev_sign_in("mod", role="admin")
    restored = visitor.post(f"/messages/{follow_up.id}/undelete")
    assert "deleted</span>" not in restored.text
    assert [_api(visitor, f"/messages/{m.id}")["deleted"] for m in (answer, follow_up)] == [False, False]
    visitor.dev_sign_in("carol")
    assert texts(visitor.get(f"/messages/{prompt.id}").text) == [PROMPT, "Four.", FOLLOW_UP]


def test_only_moderators_change_messages_and_only_with_the_form_token(
    visitor: WebUser, factory: Factory, admin: ApiClient
) -> None:
    prompt, answer, _ = _conversation(factory, admin)
    visitor.dev_sign_in("carol")
    tree = visitor.get(f"/messages/{prompt.id}").text
    assert f"/messages/{answer.id}/edit" not in tree and f"/messages/{answer.id}/delete" not in tree
    assert visitor.get(f"/messages/{answer.id}/edit").status_code == 403
    for action, data in (("edit", {"text": "Vandalised"}), ("delete", {}), ("undelete", {})):
        refused = visitor.post(f"/messages/{answer.id}/{action}", data)
        assert refused.status_code == 403, action
        assert "Only moderators and admins" in refused.text

    visitor.dev_sign_in("mod", role="moderator")
    for action, data in (("edit", {"text": "Forged"}), ("delete", {}), ("undelete", {})):
        forged = visitor.client.post(f"/messages/{answer.id}/{action}", data=data)
        assert forged.status_code == 403, action
        assert "did not come from this site" in forged.text
    shown = _api(visitor, f"/messages/{answer.id}")
    assert (shown["text"], shown["deleted"], shown["edited"]) == (ANSWER, False, False)

    unknown = "00000000-0000-0000-0000-000000000000"
    assert visitor.get(f"/messages/{unknown}/edit").status_code == 404
    assert visitor.post(f"/messages/{unknown}/edit", {"text": "x"}).status_code == 404
    assert visitor.post(f"/messages/{unknown}/delete").status_code == 404
    assert visitor.post("/messages/not-an-id/delete").status_code == 400
    assert visitor.post(f"/messages/{answer.id}/edit", {"text": "x" * 100_001}).status_code == 400


def _refresh_trollboards(settings: Settings) -> None:
    """What the periodic user-stats jobs do."""

    async def refresh(session: AsyncSession) -> None:
        for frame in UserStatsTimeFrame:
            await stats_service.refresh_time_frame(session, frame)

    in_transaction(settings, refresh)


TROLL = re.compile(r'<tr data-troll="([0-9a-f-]+)">')


def test_the_trollboard_ranks_red_flags_first_and_moderators_ban_from_it(
    visitor: WebUser, factory: Factory, admin: ApiClient, web_settings: Settings
) -> None:
    troll = factory.user(admin, "troll", display_name="Troll")
    alice = factory.user(admin, "alice", display_name="Alice")
    rude = factory.message(admin, troll, text="Buy cheap watches!")
    nice = factory.message(admin, alice, text="How do plants breathe?")
    visitor.dev_sign_in("carol")
    visitor.post(f"/messages/{rude.id}/react", {"emoji": "red_flag"})
    visitor.post(f"/messages/{nice.id}/react", {"emoji": "+1"})
    assert visitor.get("/moderation/trollboard").status_code == 403
    _refresh_trollboards(web_settings)

    visitor.dev_sign_in("mod", role="moderator")
    board = visitor.get("/moderation/trollboard?frame=week").text
    assert TROLL.findall(board) == [str(troll.id), str(alice.id)]
    first = board[board.index(f'data-troll="{troll.id}"') :]
    assert re.search(r"<td data-troll-score>3</td>\s*<td data-red-flags>1</td>", first)
    assert f'href="/moderation/users/{troll.id}"' in first

    page = visitor.get(f"/moderation/users/{troll.id}").text
    assert "Buy cheap watches!" in page and 'data-user-state="active"' in page
    banned = visitor.post(f"/moderation/users/{troll.id}", {"enabled": "false"})
    assert 'data-user-state="banned"' in banned.text
    assert _api(visitor, f"/users/{troll.id}")["enabled"] is False
    assert TROLL.findall(visitor.get("/moderation/trollboard?frame=week").text) == [str(alice.id)]
    assert TROLL.findall(visitor.get("/moderation/trollboard?frame=week&banned=1").text) == [str(troll.id)]
    assert visitor.get("/moderation/trollboard?frame=year").status_code == 400
    assert visitor.get("/moderation/users/00000000-0000-0000-0000-000000000000").status_code == 404

    visitor.dev_sign_in("carol")
    assert visitor.post(f"/moderation/users/{troll.id}", {"enabled": "true"}).status_code == 403
    assert visitor.get(f"/moderation/users/{troll.id}").status_code == 403
    assert _api(visitor, f"/users/{troll.id}")["enabled"] is False
