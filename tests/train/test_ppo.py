"""The pieces of the PPO loop: GAE over reply tokens only."""

from __future__ import annotations

import pytest
import torch

from oasst.train.ppo import advantages


def test_gae_matches_a_hand_computation_and_ignores_tokens_after_the_reply() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0, 5.0]])
    values = torch.tensor([[0.5, 0.2, 0.1, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the last position is padding after the end of turn
    whitened, returns = advantages(rewards, values, mask, gamma=1.0, lam=0.5)
    # deltas: -0.3, -0.1, 0.9; advantages: A2 = 0.9, A1 = -0.1 + 0.5 * 0.9, A0 = -0.3 + 0.5 * A1
    raw = torch.tensor([-0.125, 0.35, 0.9])
    assert returns[0, :3] == pytest.approx((raw + values[0, :3]).tolist())
    assert whitened[0, 3] == 0
    kept = whitened[0, :3]
    assert kept.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert kept.tolist() == pytest.approx(((raw - raw.mean()) / raw.std(unbiased=False)).tolist(), rel=1e-4)
