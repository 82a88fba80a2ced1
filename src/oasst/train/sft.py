"""Supervised fine-tuning on the threads of an export (TRL's SFTTrainer, loss on the replies only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from datasets import Dataset
from transformers import PreTrainedModel
from trl import SFTConfig, SFTTrainer

from oasst.train.data import DataError, conversations, mix
from oasst.train.evaluate import completion_loss, perplexity
from oasst.train.models import (
    Prepared,
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
class SftSettings(TrainConfig):
    all_paths: bool = False  # every thread ending in an accepted reply, not only the best-ranked path
    eval_every: int = 50


@dataclass
class SftRun:
    """A ready SFTTrainer with its data (the benchmark times `trainer.train()` alone)."""

    prepared: Prepared
    trainer: SFTTrainer
    train: list[dict[str, str]]
    validation: list[dict[str, str]]


def sft_trainer(config: SftSettings) -> SftRun:
    """Read the data, load the base model and build the trainer."""
    prepared = prepare(config)
    formatter, tokenizer = prepared.formatter, prepared.tokenizer
    train_threads = mix(conversations(prepared.train, config.all_paths), config.extra, config.seed)
    train = formatter.sft_records(train_threads)
    validation = formatter.sft_records(conversations(prepared.validation, config.all_paths))
    if not train or not validation:
        raise DataError(f"SFT needs threads in both splits: {len(train)} train, {len(validation)} validation")
    trainer = SFTTrainer(
        model=load_causal_lm(prepared.base, tokenizer),
        args=SFTConfig(**trainer_arguments(config, config.eval_every), completion_only_loss=True),
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(validation),
        processing_class=tokenizer,
        peft_config=lora_config(config.lora, "CAUSAL_LM"),
    )
    return SftRun(prepared, trainer, train, validation)


def train_sft(config: SftSettings) -> RunRecord:
    """Fine-tune the base model on the train threads; validation loss measured before and after."""
    built = sft_trainer(config)
    prepared, trainer, train, validation = built.prepared, built.trainer, built.train, built.validation
    tokenizer = prepared.tokenizer
    before = completion_loss(cast(PreTrainedModel, trainer.model), tokenizer, validation, config.batch_size)
    trainer.train()
    trained = cast(PreTrainedModel, trainer.model)
    after = completion_loss(trained, tokenizer, validation, config.batch_size)
    run = record(
        "sft",
        config,
        prepared,
        examples={"train": len(train), "validation": len(validation)},
        steps=trainer.state.global_step,
        metrics={
            "validation_loss_before": before,
            "validation_loss": after,
            "validation_perplexity_before": perplexity(before),
            "validation_perplexity": perplexity(after),
        },
        curves=curves_from_history(
            trainer.state.log_history, {"loss": "train loss", "eval_loss": "validation loss"}
        ),
    )
    if trainer.is_world_process_zero():
        save(trained, tokenizer, config.output, run)
    return run
