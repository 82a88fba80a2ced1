"""PPO against a trained reward model, in one readable loop (TRL no longer ships a PPO trainer).

Each step: sample replies to a batch of training prompts; score each reply with the reward model; subtract a
per-token KL penalty against the frozen reference policy; estimate advantages with GAE from a value head on
the policy's last hidden state; then a few epochs of the clipped policy and value objectives.
"""

from __future__ import annotations

import copy
import random
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import track
from transformers import PreTrainedModel

from oasst.train.data import DataError, prompts
from oasst.train.evaluate import RewardJudge, Rollout, reward_texts, rollout, scores
from oasst.train.models import (
    RunRecord,
    TrainConfig,
    load_causal_lm,
    lora_config,
    on_device,
    prepare,
    record,
    save,
)


@dataclass
class PpoSettings(TrainConfig):
    reward_model: Path | None = None  # the folder `oasst train rm` wrote (required)
    steps: int = 100  # rollouts, each of `batch_size` prompts
    kl_coef: float = 0.05  # per-token penalty on log p(policy) - log p(reference)
    clip_range: float = 0.2
    value_clip_range: float = 0.2
    value_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    ppo_epochs: int = 4  # optimisation passes over each rollout
    max_new_tokens: int = 64
    samples: int = 4  # sampled replies per held-out prompt when measuring the mean reward


class PolicyWithValue(torch.nn.Module):
    """The causal LM and a scalar value head reading its last hidden state."""

    def __init__(self, policy: PreTrainedModel) -> None:
        super().__init__()
        self.policy = policy
        self.value_head = torch.nn.Linear(policy.config.get_text_config().hidden_size, 1)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)

    def forward(self, ids: torch.Tensor, attention: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, values) at every position; positions skip the left padding of prompts."""
        positions = (attention.cumsum(1) - 1).clamp(min=0)
        out = self.policy(
            input_ids=ids, attention_mask=attention, position_ids=positions, output_hidden_states=True
        )
        return out.logits, self.value_head(out.hidden_states[-1].float()).squeeze(-1)


def reply_logprobs(logits: torch.Tensor, batch: Rollout) -> torch.Tensor:
    """log p of each reply token, from the logits one position before it."""
    width = batch.prompt_width
    predicted = torch.log_softmax(logits[:, width - 1 : -1].float(), dim=-1)
    return predicted.gather(-1, batch.sequences[:, width:].unsqueeze(-1)).squeeze(-1)


def advantages(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the reply tokens: (whitened advantages, returns)."""
    found = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        following = values[:, t + 1] * mask[:, t + 1] if t + 1 < rewards.shape[1] else 0.0
        delta = rewards[:, t] + gamma * following - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        found[:, t] = running
    returns = found + values
    mean = (found * mask).sum() / mask.sum()
    std = (((found - mean) ** 2 * mask).sum() / mask.sum()).sqrt()
    return (found - mean) / (std + 1e-8) * mask, returns


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum()


def train_ppo(config: PpoSettings) -> RunRecord:
    """Optimise the policy (usually the SFT folder) for the reward model's score, held near the reference."""
    if config.reward_model is None:
        raise DataError("PPO needs a reward model: pass --reward-model DIR (from `oasst train rm`)")
    prepared = prepare(config)
    tokenizer, formatter = prepared.tokenizer, prepared.formatter
    train_prompts = prompts(prepared.train)
    if not train_prompts:
        raise DataError("no training prompt with an accepted assistant reply")
    rng = random.Random(config.seed)
    policy = on_device(load_causal_lm(prepared.base, tokenizer))
    reference = None
    if config.lora:
        from peft import get_peft_model

        policy = get_peft_model(policy, lora_config(True, "CAUSAL_LM"))
    else:
        reference = copy.deepcopy(policy).eval().requires_grad_(False)
    model = on_device(PolicyWithValue(policy)).eval()  # no dropout: the ratio starts at exactly 1
    held_out = prompts(prepared.validation)
    judge = RewardJudge.load(
        config.reward_model, formatter, held_out, config.samples, config.max_new_tokens, config.seed
    )
    before = judge(policy, tokenizer)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)

    def reference_logits(ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """The frozen reference: a copy of the start policy, or the policy without its LoRA adapter."""
        frozen: torch.nn.Module = policy if reference is None else reference
        disabled: AbstractContextManager[object] = (
            nullcontext() if reference else policy.disable_adapter()  # type: ignore[operator]
        )
        positions = (attention.cumsum(1) - 1).clamp(min=0)
        with disabled:
            out = frozen(input_ids=ids, attention_mask=attention, position_ids=positions)
        logits: torch.Tensor = out.logits
        return logits

    curves: dict[str, list[tuple[int, float]]] = {}
    order: list[int] = []
    for step in track(range(1, config.steps + 1), description="PPO"):
        if len(order) < config.batch_size:
            order += rng.sample(range(len(train_prompts)), len(train_prompts))
        contexts = [train_prompts[order.pop()] for _ in range(min(config.batch_size, len(train_prompts)))]
        batch = rollout(policy, tokenizer, [formatter.prompt(c) for c in contexts], config.max_new_tokens)
        score = scores(judge.model, judge.tokenizer, reward_texts(formatter, contexts, batch.replies))
        mask = batch.reply_mask.float()
        with torch.no_grad():
            logits, all_values = model(batch.sequences, batch.attention_mask)
            old_logprobs = reply_logprobs(logits, batch)
            old_values = all_values[:, batch.prompt_width - 1 : -1]
            kl = (
                old_logprobs - reply_logprobs(reference_logits(batch.sequences, batch.attention_mask), batch)
            ) * mask
            rewards = -config.kl_coef * kl
            last = mask.sum(1).long() - 1
            rewards[torch.arange(len(contexts), device=rewards.device), last] += score
            advantage, returns = advantages(rewards, old_values, mask, config.gamma, config.lam)
        for _ in range(config.ppo_epochs):
            logits, all_values = model(batch.sequences, batch.attention_mask)
            ratio = torch.exp(reply_logprobs(logits, batch) - old_logprobs)
            clipped = ratio.clamp(1 - config.clip_range, 1 + config.clip_range)
            policy_loss = masked_mean(torch.max(-advantage * ratio, -advantage * clipped), mask)
            values = all_values[:, batch.prompt_width - 1 : -1]
            values_clipped = old_values + (values - old_values).clamp(
                -config.value_clip_range, config.value_clip_range
            )
            value_loss = 0.5 * masked_mean(
                torch.max((values - returns) ** 2, (values_clipped - returns) ** 2), mask
            )
            optimizer.zero_grad()
            (policy_loss + config.value_coef * value_loss).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        for name, value in (
            ("mean reward (train prompts)", score.mean().item()),
            ("KL to reference (per reply)", kl.sum(1).mean().item()),
            ("policy loss", policy_loss.item()),
            ("value loss", value_loss.item()),
        ):
            curves.setdefault(name, []).append((step, value))
    after = judge(policy, tokenizer)
    run = record(
        "ppo",
        config,
        prepared,
        examples={"train prompts": len(train_prompts), "held-out prompts": len(judge.contexts)},
        steps=config.steps * config.ppo_epochs,
        metrics={"mean_reward_before": before, "mean_reward": after},
        curves=curves,
    )
    save(policy, tokenizer, config.output, run)
    return run
