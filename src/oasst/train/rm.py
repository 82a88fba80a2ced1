"""A reward model from sibling rankings: a one-logit sequence classifier trained on pairs with TRL's
RewardTrainer (loss -log sigmoid(r_chosen - r_rejected))."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from datasets import Dataset
from transformers import PreTrainedModel
from trl import RewardConfig, RewardTrainer

from oasst.train.evaluate import pair_accuracy
from oasst.train.models import (
    RunRecord,
    TrainConfig,
    curves_from_history,
    load_reward_model,
    lora_config,
    prepare,
    record,
    save,
    trainer_arguments,
)


@dataclass
class RmSettings(TrainConfig):
    eval_every: int = 50


def train_rm(config: RmSettings) -> RunRecord:
    """Train the reward model on the train pairs; pairwise accuracy on held-out pairs before and after."""
    prepared = prepare(config)
    train, validation = prepared.preference_splits("the reward model")
    model = load_reward_model(prepared.base, prepared.tokenizer)
    before = pair_accuracy(model, prepared.tokenizer, validation)
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(**trainer_arguments(config, config.eval_every)),
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(validation),
        processing_class=prepared.tokenizer,
        peft_config=lora_config(config.lora, "SEQ_CLS"),
    )
    trainer.train()
    trained = cast(PreTrainedModel, trainer.model)
    after = pair_accuracy(trained, prepared.tokenizer, validation)
    run = record(
        "rm",
        config,
        prepared,
        examples={"train pairs": len(train), "validation pairs": len(validation)},
        steps=trainer.state.global_step,
        metrics={"pair_accuracy_before": before, "pair_accuracy": after},
        curves=curves_from_history(
            trainer.state.log_history,
            {"loss": "train loss", "eval_loss": "validation loss", "eval_accuracy": "validation accuracy"},
        ),
    )
    if trainer.is_world_process_zero():
        save(trained, prepared.tokenizer, config.output, run)
    return run
