"""The whole chain on a tiny model through `oasst train`: SFT lowers the validation loss, the reward model
ranks held-out pairs, DPO and PPO raise the mean reward on held-out prompts, eval reports it all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from oasst.cli.main import app
from oasst.train.data import PromptFormat
from oasst.train.evaluate import EvalSettings, evaluate_folders
from tests.train.conftest import SAMPLING, SPLIT, Chain, oasst, train


def metrics(folder: Path) -> dict[str, float]:
    values: dict[str, float] = json.loads((folder / "training.json").read_text())["metrics"]
    return values


def test_sft_lowers_the_validation_loss(chain: Chain) -> None:
    found = metrics(chain.sft)
    assert found["validation_loss"] < 0.5 * found["validation_loss_before"]
    assert found["validation_perplexity"] < found["validation_perplexity_before"]


def test_the_reward_model_ranks_held_out_pairs(chain: Chain) -> None:
    found = metrics(chain.rm)
    assert found["pair_accuracy"] >= 0.9  # chance is 0.5
    assert found["pair_accuracy"] > found["pair_accuracy_before"]


@pytest.mark.parametrize("method", ["dpo", "ppo"])
def test_preference_training_raises_the_mean_reward_on_held_out_prompts(chain: Chain, method: str) -> None:
    found = metrics(getattr(chain, method))
    assert found["mean_reward"] > found["mean_reward_before"] + 0.5


def test_each_folder_has_a_model_card_and_curves(chain: Chain) -> None:
    for folder in (chain.sft, chain.rm, chain.dpo, chain.ppo):
        card = (folder / "README.md").read_text()
        assert str(chain.export) in card and "## Metrics" in card
        assert (folder / "loss.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((chain.sft / "training.json").read_text())
    assert record["kind"] == "sft" and record["steps"] > 0 and record["curves"]["validation loss"]
    assert (chain.ppo / "reward.png").is_file()
    assert "mean reward (train prompts)" in json.loads((chain.ppo / "training.json").read_text())["curves"]


def test_eval_compares_the_folders_on_held_out_trees(chain: Chain) -> None:
    result = oasst("train", "eval", str(chain.export), *SPLIT, *SAMPLING, "--reward-model", str(chain.rm),
                   "--model", str(chain.sft), "--model", str(chain.ppo))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "pair_accuracy" in result.output and "mean_reward" in result.output
    assert str(chain.ppo) in result.output
    settings = EvalSettings(
        [chain.export], [chain.sft, chain.dpo, chain.ppo], chain.rm, PromptFormat.oasst,
        validation_fraction=0.2, max_new_tokens=24,
    )  # fmt: skip
    report: dict[str, Any] = evaluate_folders(settings)
    rewards = {
        name.split()[-1]: values["mean_reward"] for name, values in report.items() if "mean_reward" in values
    }
    assert rewards[str(chain.ppo)] > rewards[str(chain.sft)] + 0.5
    assert rewards[str(chain.dpo)] > rewards[str(chain.sft)] + 0.5
    assert report[str(chain.rm)]["pair_accuracy"] >= 0.9


def test_lora_with_the_chat_template_and_an_extra_dataset(
    tmp_path: Path, export_file: Path, tiny_model: Path
) -> None:
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        "".join(json.dumps({"prompt": f"Say {i}", "response": f"{i}"}) + "\n" for i in range(10))
    )
    out = tmp_path / "lora"
    train("sft", export_file, "--model", str(tiny_model), "-o", str(out), "--lora",
          "--format", "chat-template", "--extra", f"{extra}:0.5", "--max-steps", "3")  # fmt: skip
    record = json.loads((out / "training.json").read_text())
    assert record["format"] == "chat-template"
    assert record["examples"]["train"] == train_threads(export_file) + 5
    assert not (out / "adapter_config.json").exists()  # merged: a plain folder the worker loads
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    assert AutoModelForCausalLM.from_pretrained(out).config.n_layer == 2
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert "<|im_start|>" in tokenizer.chat_template
    # The worker stops at the template's end of turn as well as at EOS.
    ends = GenerationConfig.from_pretrained(out).eos_token_id
    assert {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")} <= set(ends)


def train_threads(export: Path) -> int:
    """Best-path threads of the train split (the SFT default)."""
    from oasst.train.data import conversations, read_trees, split

    return len(conversations(split(read_trees([export]), 0.2, 0)[0]))


def test_bad_data_is_reported_with_file_and_line(tmp_path: Path, tiny_model: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"message_tree_id": "t", "prompt": {"message_id": "m", "role": "prompter"}}\n')
    result = CliRunner().invoke(
        app, ["train", "sft", str(bad), "--model", str(tiny_model), "-o", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert f"{bad}:1: prompt.text" in result.output
    result = CliRunner().invoke(app, ["train", "rm", str(bad), "--model", str(tmp_path), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "not a Hugging Face model folder" in result.output
