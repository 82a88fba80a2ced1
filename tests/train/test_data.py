"""Training data from exports: threads, pairs, filters, the split, prompt formats, extra datasets, errors."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from oasst.protocol.inference import MessageRead, ModelConfig, WorkParameters
from oasst.train.data import (
    DataError,
    ExtraDataset,
    Filters,
    Formatter,
    PromptFormat,
    conversations,
    mix,
    pairs,
    prompts,
    read_instructions,
    read_trees,
    split,
)
from oasst.worker.prompts import Turn, oasst_prompt
from tests.train.builders import BAD, BAD_MORE, FAIR, GOOD, GOOD_MORE, TOPICS, node, tree, write_export


def flat_rows(nested: dict[str, Any]) -> list[dict[str, Any]]:
    """A nested tree as the Hugging Face oasst1 rows: flat, float ranks, emoji and label columns."""
    rows, stack = [], [(None, nested["prompt"])]
    while stack:
        parent, message = stack.pop()
        row = {k: v for k, v in message.items() if k != "replies"}
        row |= {"parent_id": parent, "message_tree_id": nested["message_tree_id"]}
        row |= {"tree_state": nested["tree_state"], "emojis": {"name": ["+1"], "count": [2]}}
        row["labels"] = {"name": ["spam"], "value": [0.0], "count": [3]}
        if "rank" in row:
            row["rank"] = float(row["rank"])
        rows.append(row)
        stack.extend((message["message_id"], reply) for reply in reversed(message["replies"]))
    return rows


def test_threads_follow_the_best_ranked_path_unless_all_paths_are_asked(export_file: Path) -> None:
    trees = read_trees([export_file], Filters(langs=frozenset({"en"})))
    assert len(trees) == len(TOPICS)  # the German tree and the growing one are left out
    best = conversations(trees[:1])
    topic = TOPICS[0]
    assert [[t.content for t in c] for c in best] == [
        [f"Tell me about {topic}.", GOOD.format(topic=topic)],
        [
            f"Tell me about {topic}.",
            GOOD.format(topic=topic),
            "Thanks! Tell me more.",
            GOOD_MORE.format(topic=topic),
        ],
    ]
    every = {c[-1].content for c in conversations(trees[:1], all_paths=True)}
    # Deleted and rejected replies never appear.
    assert every == {
        GOOD.format(topic=topic),
        FAIR.format(topic=topic),
        BAD,
        GOOD_MORE.format(topic=topic),
        BAD_MORE,
    }
    assert [t.role for t in best[1]] == ["user", "assistant", "user", "assistant"]


def test_pairs_come_from_sibling_ranks(export_file: Path) -> None:
    found = pairs(read_trees([export_file])[:1])
    topic = TOPICS[0]
    good, fair = GOOD.format(topic=topic), FAIR.format(topic=topic)
    assert {(p.chosen, p.rejected) for p in found} == {
        (good, fair),
        (good, BAD),
        (fair, BAD),
        (GOOD_MORE.format(topic=topic), BAD_MORE),
    }
    follow_up = next(p for p in found if p.rejected == BAD_MORE)
    assert [t.content for t in follow_up.context][-1] == "Thanks! Tell me more."


def test_filters_by_language_state_and_review(tmp_path: Path) -> None:
    path = write_export(tmp_path / "e.jsonl", count=3)
    assert len(read_trees([path])) == 4  # three English and one German ready tree
    assert [t.lang for t in read_trees([path], Filters(langs=frozenset({"de"})))] == ["de"]
    assert len(read_trees([path], Filters(tree_states=None))) == 5
    unreviewed = tree(9, "owls")
    del unreviewed["prompt"]["replies"][0]["review_result"]
    path.write_text(json.dumps(unreviewed) + "\n")
    assert len(conversations(read_trees([path]), all_paths=True)) == 2  # the good reply's subtree is gone
    assert len(conversations(read_trees([path], Filters(include_unreviewed=True)), all_paths=True)) == 5


def test_flat_oasst1_rows_read_like_nested_trees(tmp_path: Path) -> None:
    nested = [tree(0, "owls"), tree(1, "tulips")]
    flat = tmp_path / "oasst1.jsonl.gz"
    with gzip.open(flat, "wt") as out:
        out.writelines(json.dumps(row) + "\n" for t in nested for row in flat_rows(t))
    (tmp_path / "nested.jsonl").write_text("".join(json.dumps(t) + "\n" for t in nested))
    from_flat, from_nested = read_trees([flat]), read_trees([tmp_path / "nested.jsonl"])
    assert [t.id for t in from_flat] == ["t0", "t1"]
    assert conversations(from_flat, all_paths=True) == conversations(from_nested, all_paths=True)
    assert pairs(from_flat) == pairs(from_nested)


def test_the_split_is_by_tree_and_stable(export_file: Path) -> None:
    trees = read_trees([export_file])
    train, validation = split(trees, 0.25, seed=0)
    assert {t.id for t in train}.isdisjoint({t.id for t in validation})
    assert len(train) + len(validation) == len(trees) and 4 <= len(validation) <= 18
    assert split(list(reversed(trees)), 0.25, seed=0)[1] == list(reversed(validation))
    assert {t.id for t in split(trees, 0.25, seed=1)[1]} != {t.id for t in validation}
    held_prompts = {c[0].content for c in prompts(validation)}
    assert held_prompts.isdisjoint({c[0].content for c in prompts(train)})


def test_the_oasst_format_is_the_one_the_worker_serves() -> None:
    chat = uuid.uuid4()

    def message(role: str, text: str) -> MessageRead:
        return MessageRead.model_validate(
            {"id": uuid.uuid4(), "content": text, "chat_id": chat, "created_at": datetime.now(UTC)}
            | {"role": role, "state": "complete"}
        )

    thread = [message("prompter", "Hi"), message("assistant", "Hello!"), message("prompter", "Name a fruit.")]
    parameters = WorkParameters.model_validate(
        {"model_config": ModelConfig(model_id="m"), "system_prompt": "Be kind"}
    )
    context = (
        Turn("system", "Be kind"),
        Turn("user", "Hi"),
        Turn("assistant", "Hello!"),
        Turn("user", "Name a fruit."),
    )
    formatter = Formatter(PromptFormat.oasst)
    assert formatter.prompt(context) == oasst_prompt(thread, parameters)
    assert formatter.completion(context, "Apple.") == "Apple.<|endoftext|>"


def test_the_chat_template_format_renders_prompt_and_completion(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    formatter = Formatter(PromptFormat.chat_template, AutoTokenizer.from_pretrained(tiny_model))
    context = (Turn("user", "Hi"),)
    assert formatter.prompt(context) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert formatter.completion(context, "Hello!") == "Hello!<|im_end|>\n"
    with pytest.raises(DataError, match="no chat template"):
        Formatter(PromptFormat.chat_template, object())


def test_extra_instruction_datasets_mix_in_by_weight(tmp_path: Path) -> None:
    lines = [{"prompt": f"Q{i}", "response": f"A{i}"} for i in range(4)]
    lines += [
        {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "Q"},
                {"role": "assistant", "content": "A"},
            ]
        }
    ]
    path = tmp_path / "extra.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    examples = read_instructions(path)
    assert examples[0] == (Turn("user", "Q0"), Turn("assistant", "A0"))
    assert examples[-1] == (Turn("system", "S"), Turn("user", "Q"), Turn("assistant", "A"))
    base = [examples[0]]
    assert ExtraDataset.parse(f"{path}:2") == ExtraDataset(path, 2.0)
    assert ExtraDataset.parse(str(path)) == ExtraDataset(path, 1.0)
    assert len(mix(base, [ExtraDataset(path, 2.0)], seed=0)) == 1 + 10
    assert len(mix(base, [ExtraDataset(path, 0.4)], seed=0)) == 1 + 2


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid JSON"),
        ('{"prompt": "only a prompt"}', "expected prompt and response"),
        ('{"messages": [{"role": "user", "content": "Q"}]}', "last message must be the assistant"),
        ('{"messages": [{"role": "robot", "content": "Q"}]}', "messages.0 needs a role"),
    ],
)
def test_bad_instruction_lines_name_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "extra.jsonl"
    path.write_text('{"prompt": "Q", "response": "A"}\n' + line + "\n")
    with pytest.raises(DataError, match=f"^{path}:2: .*{reason}"):
        read_instructions(path)


def test_bad_export_lines_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(tree(0, "owls")) + "\n" + '{"message_tree_id": "x", "prompt": {"text": 1}}\n')
    with pytest.raises(DataError, match=f"^{path}:2: "):
        read_trees([path])
    with pytest.raises(DataError, match="no such file"):
        read_trees([tmp_path / "missing.jsonl"])
    second_root = node("m2", "Me too", "prompter", message_tree_id="m1")
    path.write_text(json.dumps(node("m1", "Hi", "prompter")) + "\n" + json.dumps(second_root) + "\n")
    with pytest.raises(DataError, match=f"^{path}:1: a tree needs one root message, found 2"):
        read_trees([path])
