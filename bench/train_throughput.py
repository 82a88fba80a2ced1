"""Training benchmark: SFT tokens/s through `oasst train sft`'s trainer against a plain torch loop doing the
same forward and backward passes on the same batches, and the wall time of the whole `oasst train` chain.

1. Throughput (SmolLM2-135M-Instruct by default): the SFT trainer of `oasst.train.sft` runs `--steps` steps,
   then a plain loop (forward with labels, backward, gradient clipping, AdamW step) runs on a fresh copy of
   the same weights over the very batches the trainer's data loader yields. Both are timed from the end of
   their first step (warm-up) to the end of their last; tokens are the non-padding ones of those batches.
2. Chain: `oasst train sft`, `rm`, `ppo` and `eval` as child processes on a generated export with
   `--examples` SFT examples (a tiny random GPT-2 by default, or `--chain-model DIR`).

    .venv/bin/python bench/train_throughput.py --steps 6 --batch-size 4 --rounds 2 --examples 1000
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' export and tiny-model builders

from tests.tiny_model import build_tiny_model  # noqa: E402
from tests.train.builders import write_export  # noqa: E402

OASST = str(Path(sys.executable).with_name("oasst"))


def bundled_model() -> Path:
    from oasst.config import Settings
    from oasst.worker.backends.hf import bundled_model_dir

    return bundled_model_dir(Settings().models_dir)


def throughput(
    model: Path, export: Path, steps: int, batch_size: int, rounds: int, out: Path
) -> dict[str, Any]:
    """Tokens/s of the SFT trainer and of a plain loop over the same batches: `rounds` alternating runs of
    each (the machine is shared), the best of each kept; every run's first step is a warm-up."""
    import torch
    from transformers import TrainerCallback

    from oasst.train.sft import SftSettings, sft_trainer

    settings = SftSettings(data=[export], output=out, model=model, max_steps=steps, batch_size=batch_size)
    trainer = sft_trainer(settings).trainer
    trainer.args.eval_strategy = "no"  # only training is timed
    batches = [batch for batch, _ in zip(trainer.get_train_dataloader(), range(steps), strict=False)]
    tokens = sum(int(batch["attention_mask"].sum()) for batch in batches[1:])
    plain_model = copy.deepcopy(trainer.model).train()
    optimizer = torch.optim.AdamW(
        plain_model.parameters(),
        lr=settings.learning_rate,
        weight_decay=trainer.args.weight_decay,
        fused=True,
    )

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, *_args: Any, **_kwargs: Any) -> None:
            self.ends.append(time.perf_counter())

    def trainer_run() -> float:
        clock = StepClock()
        trainer.add_callback(clock)
        trainer.train()
        trainer.remove_callback(clock)
        return clock.ends[-1] - clock.ends[0]

    def plain_run() -> float:
        ends = []
        for batch in batches:
            inputs = {key: batch[key] for key in ("input_ids", "attention_mask", "labels")}
            plain_model(**inputs).loss.backward()
            torch.nn.utils.clip_grad_norm_(plain_model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            ends.append(time.perf_counter())
        return ends[-1] - ends[0]

    trainer_times, plain_times = [], []
    for _ in range(rounds):
        trainer_times.append(trainer_run())
        plain_times.append(plain_run())
    return {
        "steps": steps,
        "batch_size": batch_size,
        "timed_tokens": tokens,
        "trainer_seconds": trainer_times,
        "plain_seconds": plain_times,
        "trainer_tokens_per_s": tokens / min(trainer_times),
        "plain_tokens_per_s": tokens / min(plain_times),
        "ratio": min(plain_times) / min(trainer_times),
    }


def oasst(*args: str) -> float:
    """Run `oasst ARGS`; its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run([OASST, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def chain(model: Path, export: Path, work: Path, threads: int, ppo_steps: int) -> dict[str, Any]:
    """Wall time and metrics of sft -> rm -> ppo -> eval, each a child process."""
    common = (str(export), "--threads", str(threads))
    folders = {name: str(work / name) for name in ("sft", "rm", "ppo")}
    seconds = {
        "sft": oasst("train", "sft", *common, "--model", str(model), "-o", folders["sft"],
                     "--learning-rate", "3e-3", "--epochs", "2", "--all-paths"),
        "rm": oasst("train", "rm", *common, "--model", folders["sft"], "-o", folders["rm"],
                    "--learning-rate", "1e-3"),
        "ppo": oasst("train", "ppo", *common, "--model", folders["sft"], "-o", folders["ppo"],
                     "--reward-model", folders["rm"], "--learning-rate", "1e-3", "--steps", str(ppo_steps),
                     "--batch-size", "16", "--max-new-tokens", "24"),
        "eval": oasst("train", "eval", *common, "--reward-model", folders["rm"], "--model", folders["sft"],
                      "--model", folders["ppo"], "--max-new-tokens", "24"),
    }  # fmt: skip
    records = {name: json.loads((work / name / "training.json").read_text()) for name in folders}
    return {
        "seconds": seconds,
        "total_s": sum(seconds.values()),
        "examples": {name: record["examples"] for name, record in records.items()},
        "metrics": {name: record["metrics"] for name, record in records.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="throughput model folder (default: bundled SmolLM2)")
    parser.add_argument("--steps", type=int, default=6, help="SFT steps timed in each loop")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed runs of each loop")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--examples", type=int, default=1000, help="SFT training examples of the chain")
    parser.add_argument("--chain-model", type=Path, help="base model of the chain (default: tiny GPT-2)")
    parser.add_argument("--ppo-steps", type=int, default=20)
    parser.add_argument("--skip", choices=["throughput", "chain"], help="leave one part out")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "threads": args.threads,
    }
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        # Each tree gives five SFT threads (the chain uses --all-paths) and four ranked pairs; a tenth of the
        # trees are held out, so `examples` SFT training examples take examples / 4.5 trees.
        export = write_export(work / "export.jsonl", count=max(round(args.examples / 4.5), 10))
        if args.skip != "throughput":
            model = args.model or bundled_model()
            report["throughput"] = throughput(
                model, export, args.steps, args.batch_size, args.rounds, work / "throughput"
            )
            print(json.dumps(report["throughput"], indent=2), flush=True)
        if args.skip != "chain":
            base = args.chain_model or build_tiny_model(work / "tiny")
            report["chain"] = chain(base, export, work, args.threads, args.ppo_steps)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
