"""Training from OASST exports: SFT, reward model, DPO and PPO, writing model folders the worker serves."""
