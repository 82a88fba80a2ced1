"""Moderators halt and resume trees from the tree viewer; everyone else may only look."""

from __future__ import annotations

import re

from oasst.db.models import MessageTreeState
from tests.factories import Factory
from tests.web.flow import PROMPT, WebUser


def _tree_id(visitor: WebUser, name: str = "alice", prompt: str = PROMPT) -> str:
    """`name` (Alice) writes a prompt; the id of its tree (its root message)."""
    visitor.dev_sign_in(name)
    path, _ = visitor.task("initial_prompt")
    visitor.answer(path, "initial_prompt", text=prompt)
    match = re.search(r'href="/messages/([0-9a-f-]{36})"', visitor.get("/profile").text)
    assert match
    return match.group(1)


def test_a_moderator_halts_and_resumes_a_tree(visitor: WebUser, factory: Factory) -> None:
    tree_id = _tree_id(visitor)
    assert "Halt the tree" not in visitor.get(f"/messages/{tree_id}").text
    refused = visitor.post(f"/messages/{tree_id}/halt", {"halt": "true"})
    assert refused.status_code == 403
    assert "Only moderators and admins" in refused.text

    visitor.dev_sign_in("mod", role="moderator")
    page = visitor.post(f"/messages/{tree_id}/halt", {"halt": "true"})
    assert 'data-tree-state="halted_by_moderator"' in page.text
    assert "Resume the tree" in page.text
    (tree,) = factory.rows(MessageTreeState)
    assert tree.state == "halted_by_moderator" and not tree.active

    # A halted tree hands out no task: bob finds no prompt to review.
    visitor.dev_sign_in("bob")
    assert (
        visitor.post("/contribute", {"kind": "label_initial_prompt", "lang": "en"}).url.path == "/contribute"
    )

    visitor.dev_sign_in("mod", role="admin")
    page = visitor.post(f"/messages/{tree_id}/halt", {"halt": "false"})
    assert 'data-tree-state="initial_prompt_review"' in page.text
    visitor.dev_sign_in("bob")
    path, _ = visitor.task("label_initial_prompt")
    assert path.startswith("/tasks/")


def test_halting_an_unknown_message_is_a_clear_404(visitor: WebUser) -> None:
    visitor.dev_sign_in("mod", role="moderator")
    response = visitor.post("/messages/00000000-0000-0000-0000-000000000000/halt", {"halt": "true"})
    assert response.status_code == 404
    assert "This message does not exist or was deleted." in response.text
    assert (
        visitor.post("/messages/00000000-0000-0000-0000-000000000000/halt", {"halt": "x"}).status_code == 400
    )


def _count(page: str, emoji: str) -> int:
    match = re.search(rf'data-count="{re.escape(emoji)}">(\d+)<', page)
    assert match
    return int(match.group(1))


def test_reactions_toggle_and_red_flags_reach_the_moderators(visitor: WebUser) -> None:
    tree_id = _tree_id(visitor)
    # Thumbs on one's own message are ignored, as upstream.
    assert _count(visitor.post(f"/messages/{tree_id}/react", {"emoji": "+1"}).text, "+1") == 0

    visitor.dev_sign_in("bob")
    page = visitor.post(f"/messages/{tree_id}/react", {"emoji": "+1"}).text
    assert _count(page, "+1") == 1 and 'aria-pressed="true">▲' in page
    page = visitor.post(f"/messages/{tree_id}/react", {"emoji": "-1"}).text
    assert (_count(page, "+1"), _count(page, "-1")) == (0, 1)
    assert _count(visitor.post(f"/messages/{tree_id}/react", {"emoji": "-1"}).text, "-1") == 0
    assert visitor.post(f"/messages/{tree_id}/react", {"emoji": "poop"}).status_code == 400
    assert _count(visitor.post(f"/messages/{tree_id}/react", {"emoji": "red_flag"}).text, "red_flag") == 1
    assert visitor.client.get("/moderation").status_code == 403

    visitor.dev_sign_in("mod", role="moderator")
    queue = visitor.get("/moderation").text
    assert f'data-flagged="{tree_id}"' in queue and PROMPT in queue
    after = visitor.post(f"/moderation/{tree_id}/done").text
    assert f'data-flagged="{tree_id}"' not in after
    assert "no open reports" in after


def test_the_queue_shows_every_open_flag_newest_first(visitor: WebUser) -> None:
    first = _tree_id(visitor)
    second = _tree_id(visitor, "bob", "Which birds sing at night, and why do they?")
    visitor.dev_sign_in("carol")
    for tree_id in (first, second):
        visitor.post(f"/messages/{tree_id}/react", {"emoji": "red_flag"})

    visitor.dev_sign_in("mod", role="moderator")
    queue = visitor.get("/moderation").text
    assert re.findall(r'data-flagged="([0-9a-f-]{36})"', queue) == [second, first]
    assert PROMPT in queue and "Which birds sing at night" in queue
    after = visitor.post(f"/moderation/{second}/done").text
    assert re.findall(r'data-flagged="([0-9a-f-]{36})"', after) == [first]
