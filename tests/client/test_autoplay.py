"""The random player's answers: the shapes upstream's auto_main sends, reproducible from a seed."""

from __future__ import annotations

import random
import uuid

import pytest

from oasst.client.autoplay import VOCABULARY, answer, make_users
from oasst.protocol.collection import (
    AssistantReplyTask,
    Conversation,
    ConversationMessage,
    InitialPromptTask,
    LabelAssistantReplyTask,
    MessageRanking,
    RankAssistantRepliesTask,
    TaskDone,
    TextLabels,
    TextReplyToMessage,
    User,
)

USER = User(id="u", display_name="U", auth_method="local")
PROMPT = ConversationMessage(text="Why is the sky blue?", is_assistant=False)
REPLY = ConversationMessage(text="Rayleigh scattering.", is_assistant=True)


def label_task() -> LabelAssistantReplyTask:
    return LabelAssistantReplyTask(
        message_id=uuid.uuid4(),
        valid_labels=["lang_mismatch", "quality", "pii"],
        mandatory_labels=["spam"],
        conversation=Conversation(messages=[PROMPT, REPLY]),
    )


def test_replies_are_vocabulary_text_bound_to_the_acked_task() -> None:
    task = AssistantReplyTask(conversation=Conversation(messages=[PROMPT]))
    first = answer(task, USER, random.Random(1), lang="de")
    again = answer(task, USER, random.Random(1), lang="de")

    assert isinstance(first, TextReplyToMessage)
    assert first.message_id == str(task.id)
    assert first.lang == "de"
    assert set(first.text.split()) <= set(VOCABULARY)
    assert first == again
    assert answer(InitialPromptTask(), USER, random.Random(2)).type == "text_reply_to_message"


def test_rankings_are_permutations_of_the_replies() -> None:
    replies = [ConversationMessage(text=f"reply {n}", is_assistant=True) for n in range(4)]
    task = RankAssistantRepliesTask(
        conversation=Conversation(messages=[PROMPT]),
        replies=[r.text for r in replies],
        reply_messages=replies,
        message_tree_id=uuid.uuid4(),
        ranking_parent_id=uuid.uuid4(),
        reveal_synthetic=False,
    )
    rankings = [answer(task, USER, random.Random(seed)) for seed in range(20)]

    assert all(isinstance(r, MessageRanking) and sorted(r.ranking) == [0, 1, 2, 3] for r in rankings)
    assert len({tuple(r.ranking) for r in rankings if isinstance(r, MessageRanking)}) > 1


def test_labels_cover_valid_and_mandatory_and_mostly_let_the_message_through() -> None:
    task = label_task()
    answers = [answer(task, USER, random.Random(seed)) for seed in range(300)]

    assert all(isinstance(a, TextLabels) for a in answers)
    labels = [a.labels for a in answers if isinstance(a, TextLabels)]
    assert all({k.value for k in values} == {"spam", "lang_mismatch", "quality", "pii"} for values in labels)
    assert all(0 <= v <= 1 for values in labels for v in values.values())
    passing = sum(1 for values in labels if values["spam"] == values["lang_mismatch"] == 0)
    assert 0.8 * len(labels) < passing < len(labels)
    first = answers[0]
    assert isinstance(first, TextLabels)
    assert (first.message_id, first.task_id, first.text) == (task.message_id, task.id, REPLY.text)


def test_a_finished_task_takes_no_answer() -> None:
    with pytest.raises(ValueError):
        answer(TaskDone(), USER, random.Random(0))


def test_simulated_users_have_distinct_ids_and_generated_names() -> None:
    users = make_users(5, random.Random(3), prefix="bot")

    assert [u.id for u in users] == ["bot-1", "bot-2", "bot-3", "bot-4", "bot-5"]
    assert all(u.auth_method == "local" and len(u.display_name.split()) == 2 for u in users)
    assert users == make_users(5, random.Random(3), prefix="bot")
