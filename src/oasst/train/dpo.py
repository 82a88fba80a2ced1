"""Direct preference optimisation on the ranked pairs of an export (TRL's DPOTrainer, a frozen reference)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from datasets import Dataset
from transformers import PreTrainedModel
from trl import DPOConfig, DPOTrainer

from oasst.train.data import prompts
from oasst.train.evaluate import RewardJudge
from oasst.train.models import (
    RunRecord,
    TrainConfig,
    curves_from_history,
    load_causal_lm,
    lora_config,
    prepare,
    record,
    save,
    trainer_arguments,
)


@dataclass
class DpoSettings(TrainConfig):
    beta: float = 0.1  # strength of the pull towards the reference policy
    reward_model: Path | None = None  # to report the mean reward on held-out prompts before and after
    samples: int = 4  # sampled replies per held-out prompt for that report
    max_new_tokens: int = 64
    eval_every: int = 50


def train_dpo(config: DpoSettings) -> RunRecord:
    """Train the policy (usually the SFT folder) to prefer the better-ranked reply of each pair."""
    prepared = prepare(config)
    train, validation = prepared.preference_splits("DPO")
    policy = load_causal_lm(prepared.base, prepared.tokenizer)
    judge = None
    if config.reward_model is not None:
        held_out = prompts(prepared.validation)
        judge = RewardJudge.load(
            config.reward_model,
            prepared.formatter,
            held_out,
            config.samples,
            config.max_new_tokens,
            config.seed,
        )
    metrics = {"mean_reward_before": judge(policy, prepared.tokenizer)} if judge else {}
    trainer = DPOTrainer(
        model=policy,
        ref_model=None if config.lora else copy.deepcopy(policy).eval(),
        args=DPOConfig(**trainer_arguments(config, config.eval_every), beta=config.beta),
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(validation),
        processing_class=prepared.tokenizer,
        peft_config=lora_config(config.lora, "CAUSAL_LM"),
    )
    trainer.train()
    trained = cast(PreTrainedModel, trainer.model)
    if judge:
        metrics["mean_reward"] = judge(trained, prepared.tokenizer)
    history = trainer.state.log_history
    last_eval = next(entry for entry in reversed(history) if "eval_loss" in entry)
    run = record(
        "dpo",
        config,
        prepared,
        examples={"train pairs": len(train), "validation pairs": len(validation)},
        steps=trainer.state.global_step,
        metrics=metrics | {k[5:]: float(v) for k, v in last_eval.items() if k.startswith("eval_rewards/")},
        curves=curves_from_history(
            history,
            {
                "loss": "train loss",
                "eval_loss": "validation loss",
                "eval_rewards/margins": "validation implicit reward margin",
                "eval_rewards/accuracies": "validation preference accuracy",
            },
        ),
    )
    if trainer.is_world_process_zero():
        save(trained, prepared.tokenizer, config.output, run)
    return run
