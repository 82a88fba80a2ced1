"""Measurements shared by the trainers and `oasst train eval`: completion loss, reward-model scores and
pairwise accuracy, sampled replies and their mean reward."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.progress import track
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from oasst.train.data import (
    DataError,
    Filters,
    Formatter,
    PromptFormat,
    conversations,
    pairs,
    prompts,
    read_trees,
    split,
)
from oasst.train.models import end_ids, load_frozen
from oasst.worker.prompts import Turn


def _batches(n: int, size: int) -> list[range]:
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


@torch.no_grad()
def completion_loss(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[dict[str, str]],
    batch_size: int = 8,
) -> float:
    """Mean negative log-likelihood per completion token of `{prompt, completion}` records."""
    model.eval()
    total, count = 0.0, 0
    for batch in _batches(len(records), batch_size):
        rows = []
        for i in batch:
            prompt_ids = tokenizer(records[i]["prompt"])["input_ids"]
            completion_ids = tokenizer(records[i]["prompt"] + records[i]["completion"])["input_ids"]
            rows.append((completion_ids, len(prompt_ids)))
        width = max(len(ids) for ids, _ in rows)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows], device=model.device)
        attention = torch.tensor(
            [[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows], device=model.device
        )
        labels = input_ids.clone()
        for row, (ids, start) in enumerate(rows):
            labels[row, :start] = -100
            labels[row, len(ids) :] = -100
        logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1]
        targets = labels[:, 1:]
        losses = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            targets.reshape(-1),
            reduction="sum",
            ignore_index=-100,
        )
        total += losses.item()
        count += int((targets != -100).sum())
    return total / max(count, 1)


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))


@torch.no_grad()
def scores(
    reward_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    batch_size: int = 16,
) -> torch.Tensor:
    """The reward of each full text (prompt and completion), tokenized as the reward trainer does."""
    reward_model.eval()
    eos = tokenizer.eos_token or ""
    found = []
    for batch in _batches(len(texts), batch_size):
        chunk = [texts[i] if texts[i].endswith(eos) else texts[i] + eos for i in batch]
        encoded = tokenizer(chunk, padding=True, return_tensors="pt").to(reward_model.device)
        found.append(reward_model(**encoded).logits[:, 0].float())
    return torch.cat(found) if found else torch.zeros(0)


def pair_accuracy(
    reward_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, records: Sequence[dict[str, str]]
) -> float:
    """Share of `{prompt, chosen, rejected}` records where the chosen completion scores higher."""
    if not records:
        return float("nan")
    chosen = scores(reward_model, tokenizer, [r["prompt"] + r["chosen"] for r in records])
    rejected = scores(reward_model, tokenizer, [r["prompt"] + r["rejected"] for r in records])
    return (chosen > rejected).float().mean().item()


@dataclass
class Rollout:
    """Sampled replies: prompt and reply token ids side by side (prompts left-padded), and the reply texts."""

    sequences: torch.Tensor
    attention_mask: torch.Tensor
    prompt_width: int
    reply_mask: torch.Tensor  # 1 on reply tokens up to and including the end of turn
    replies: list[str]


def rollout(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int,
    do_sample: bool = True,
) -> Rollout:
    """Replies of `policy` to `prompts` (sampled at temperature 1, or greedy), each up to its end of turn."""
    policy.eval()
    ends = end_ids(policy, tokenizer)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    encoded = tokenizer(list(prompts), padding=True, return_tensors="pt").to(policy.device)
    tokenizer.padding_side = side
    with torch.no_grad():
        sequences = policy.generate(  # type: ignore[operator]
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            top_k=0,
            top_p=1.0,
            temperature=1.0,
            eos_token_id=ends,
            pad_token_id=tokenizer.pad_token_id,
        )
    width = encoded["input_ids"].shape[1]
    reply = sequences[:, width:]
    ended = torch.isin(reply, torch.tensor(ends, device=reply.device)).int()
    # Tokens after the first end of turn are padding; the end of turn itself belongs to the reply.
    reply_mask = (ended.cumsum(1) - ended == 0).int()
    texts = [
        str(tokenizer.decode(ids[mask.bool()], skip_special_tokens=True))
        for ids, mask in zip(reply, reply_mask, strict=True)
    ]
    attention = torch.cat([encoded["attention_mask"], reply_mask], dim=1)
    return Rollout(sequences, attention, width, reply_mask, texts)


def reward_texts(
    formatter: Formatter, contexts: Sequence[tuple[Turn, ...]], replies: Sequence[str]
) -> list[str]:
    """What the reward model reads for each reply: the prompt and the completion, formatted as in training."""
    return [
        formatter.prompt(context) + formatter.completion(context, reply)
        for context, reply in zip(contexts, replies, strict=True)
    ]


def mean_reward(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    reward_model: PreTrainedModel,
    reward_tokenizer: PreTrainedTokenizerBase,
    formatter: Formatter,
    contexts: Sequence[tuple[Turn, ...]],
    samples: int = 4,
    max_new_tokens: int = 64,
    seed: int = 0,
    batch_size: int = 16,
) -> float:
    """Mean reward of `samples` sampled replies per held-out prompt (seeded, so runs compare)."""
    torch.manual_seed(seed)
    repeated = [context for context in contexts for _ in range(samples)]
    rewards = []
    for batch in track(_batches(len(repeated), batch_size), description="Scoring replies", transient=True):
        chunk = [repeated[i] for i in batch]
        replies = rollout(policy, tokenizer, [formatter.prompt(c) for c in chunk], max_new_tokens).replies
        rewards.append(scores(reward_model, reward_tokenizer, reward_texts(formatter, chunk, replies)))
    return torch.cat(rewards).mean().item() if rewards else float("nan")


@dataclass
class RewardJudge:
    """The mean reward of a policy's sampled replies to held-out prompts, by a trained reward model."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    formatter: Formatter
    contexts: list[tuple[Turn, ...]]
    samples: int
    max_new_tokens: int
    seed: int

    @classmethod
    def load(
        cls,
        path: Path,
        formatter: Formatter,
        contexts: list[tuple[Turn, ...]],
        samples: int,
        max_new_tokens: int,
        seed: int,
    ) -> RewardJudge:
        model, tokenizer = load_frozen(path, formatter.format, reward=True)
        return cls(model, tokenizer, formatter, contexts, samples, max_new_tokens, seed)

    def __call__(self, policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> float:
        return mean_reward(
            policy,
            tokenizer,
            self.model,
            self.tokenizer,
            self.formatter,
            self.contexts,
            samples=self.samples,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
        )


@dataclass
class EvalSettings:
    data: list[Path]
    policies: list[Path]
    reward_model: Path | None = None
    format: PromptFormat = PromptFormat.oasst
    filters: Filters = field(default_factory=Filters)
    validation_fraction: float = 0.1
    seed: int = 0
    samples: int = 4
    max_new_tokens: int = 64


def evaluate_folders(config: EvalSettings) -> dict[str, dict[str, float]]:
    """Metrics on the held-out trees (the same split as training with the same seed and fraction):
    the reward model's pairwise accuracy, and each policy's loss, perplexity and mean reward."""
    if not config.policies and config.reward_model is None:
        raise DataError("nothing to evaluate: pass --model DIR and/or --reward-model DIR")
    _, held_out = split(read_trees(config.data, config.filters), config.validation_fraction, config.seed)
    if not held_out:
        raise DataError("no held-out tree: raise --validation-fraction")
    report: dict[str, dict[str, float]] = {}
    judge = None
    if config.reward_model is not None:
        _, reward_tokenizer = load_frozen(config.reward_model, config.format, reward=True)
        formatter = Formatter(config.format, reward_tokenizer)
        judge = RewardJudge.load(
            config.reward_model,
            formatter,
            prompts(held_out),
            config.samples,
            config.max_new_tokens,
            config.seed,
        )
        held_pairs = formatter.preference_records(pairs(held_out))
        report[str(config.reward_model)] = {
            "pair_accuracy": pair_accuracy(judge.model, judge.tokenizer, held_pairs),
            "pairs": float(len(held_pairs)),
        }
    for folder in config.policies:
        policy, tokenizer = load_frozen(folder, config.format)
        records = Formatter(config.format, tokenizer).sft_records(conversations(held_out))
        loss = completion_loss(policy, tokenizer, records)
        metrics = {"validation_loss": loss, "validation_perplexity": perplexity(loss)}
        if judge is not None:
            metrics["mean_reward"] = judge(policy, tokenizer)
        report[str(folder)] = metrics
    return report
