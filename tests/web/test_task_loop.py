"""The whole task loop through the pages: every task type, until the tree is ready for export."""

from __future__ import annotations

import re

from oasst.db.models import Message, MessageTreeState, Task
from tests.factories import Factory
from tests.web.flow import A1, A2, PROMPT, U1, U2, WebUser, texts

# Not spam, top quality; every other label left at its default.
GOOD = {"label-spam": "0", "label-quality": "4"}


def _reply(visitor: WebUser, who: str, kind: str, text: str) -> str:
    """`who` answers a reply task of `kind` with `text`; the conversation the task showed."""
    visitor.dev_sign_in(who)
    path, page = visitor.task(kind)
    shown = texts(page)
    response = visitor.answer(path, kind, text=text)
    assert response.status_code == 200, response.text
    assert "Your answer was saved" in response.text
    return " | ".join(shown)


def _label(visitor: WebUser, who: str, kind: str, *expected: str) -> str:
    """`who` reviews the message of a label task of `kind` (one of `expected`): not spam, good quality."""
    visitor.dev_sign_in(who)
    path, page = visitor.task(kind)
    labelled = texts(page)[-1]
    assert labelled in expected
    response = visitor.answer(path, kind, **GOOD)
    assert response.status_code == 200, response.text
    assert "Your answer was saved" in response.text
    return labelled


def _rank(visitor: WebUser, who: str, kind: str, best: str, worst: str) -> None:
    visitor.dev_sign_in(who)
    path, page = visitor.task(kind)
    shown = texts(page)[-2:]
    assert sorted(shown) == sorted([best, worst])
    ranking = f"{shown.index(best)},{shown.index(worst)}"
    response = visitor.answer(path, kind, ranking=ranking)
    assert response.status_code == 200, response.text


def test_every_task_type_grows_a_tree_to_ready_for_export(visitor: WebUser, factory: Factory) -> None:
    _reply(visitor, "alice", "initial_prompt", PROMPT)
    _label(visitor, "bob", "label_initial_prompt", PROMPT)
    assert _reply(visitor, "carol", "assistant_reply", A1) == PROMPT
    _label(visitor, "dave", "label_assistant_reply", A1)
    assert _reply(visitor, "erin", "prompter_reply", U1) == f"{PROMPT} | {A1}"
    assert _reply(visitor, "frank", "prompter_reply", U2) == f"{PROMPT} | {A1}"
    # After an answer the next task of the same type follows at once, until there is none.
    visitor.dev_sign_in("dave")
    path, page = visitor.task("label_prompter_reply")
    labelled = []
    while path.startswith("/tasks/"):
        labelled.append(texts(page)[-1])
        response = visitor.answer(path, "label_prompter_reply", **GOOD)
        path, page = response.url.path, response.text
    assert sorted(labelled) == sorted([U1, U2])
    assert path == "/contribute"
    assert "Thank you! Your answer was saved." in page
    assert _reply(visitor, "grace", "assistant_reply", A2) == PROMPT
    _label(visitor, "dave", "label_assistant_reply", A2)
    _rank(visitor, "bob", "rank_assistant_replies", best=A1, worst=A2)
    _rank(visitor, "bob", "rank_prompter_replies", best=U2, worst=U1)

    (tree,) = factory.rows(MessageTreeState)
    assert tree.state == "ready_for_export"
    ranks = {m.text: m.rank for m in factory.rows(Message)}
    assert ranks == {PROMPT: None, A1: 0, A2: 1, U1: 1, U2: 0}

    # The tree viewer shows the whole tree with its state and ranks, to any signed-in person.
    visitor.dev_sign_in("zoe")
    page = visitor.get(f"/messages/{tree.message_tree_id}").text
    assert 'data-tree-state="ready_for_export"' in page
    assert texts(page) == [PROMPT, A1, U1, U2, A2] or texts(page) == [PROMPT, A1, U2, U1, A2]
    assert len(re.findall(r"rank 1<", page)) == 2


def test_a_skipped_task_is_not_offered_again(visitor: WebUser, factory: Factory) -> None:
    _reply(visitor, "alice", "initial_prompt", PROMPT)
    visitor.dev_sign_in("bob")
    path, _ = visitor.task("label_initial_prompt")
    response = visitor.post(f"{path}/skip", {"kind": "label_initial_prompt", "reason": "Not my language"})
    assert response.status_code == 200
    assert response.url.path == "/contribute"
    assert "There is no task of this type right now" in response.text
    (task,) = factory.rows(Task, payload_type="LabelInitialPromptPayload")
    assert task.skipped and task.skip_reason == "Not my language"
