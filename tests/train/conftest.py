"""Training tests run torch on one thread, offline, on a tiny model and a generated export. The chain
(SFT -> RM -> DPO and PPO) is trained once per test run, even when xdist spreads the tests over processes."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from oasst.cli.main import app
from tests.tiny_model import build_tiny_model
from tests.train.builders import write_export

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SPLIT = ("--validation-fraction", "0.2", "--seed", "0")
SAMPLING = ("--samples", "4", "--max-new-tokens", "24")


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def export_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_export(tmp_path_factory.mktemp("export") / "export.jsonl")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def oasst(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"}, catch_exceptions=False)


def train(command: str, export: Path, *args: str) -> Result:
    """`oasst train COMMAND EXPORT` on the tests' split; it must succeed."""
    result = oasst("train", command, str(export), *SPLIT, *args)
    assert result.exit_code == 0, result.output
    return result


@dataclass
class Chain:
    """The folders of one trained chain, and the export and base model it started from."""

    root: Path
    export: Path = field(init=False)
    sft: Path = field(init=False)
    rm: Path = field(init=False)
    dpo: Path = field(init=False)
    ppo: Path = field(init=False)

    def __post_init__(self) -> None:
        self.export = self.root / "export.jsonl"
        self.sft, self.rm, self.dpo, self.ppo = (self.root / name for name in ("sft", "rm", "dpo", "ppo"))

    def build(self) -> None:
        """SFT on every path (so the policy starts out mixing good and bad replies), then RM, DPO and PPO."""
        export, base = write_export(self.export), build_tiny_model(self.root / "base")
        train("sft", export, "--model", str(base), "-o", str(self.sft), "--all-paths",
              "--learning-rate", "3e-3", "--epochs", "3", "--eval-every", "20")  # fmt: skip
        train("rm", export, "--model", str(self.sft), "-o", str(self.rm), "--learning-rate", "1e-3")
        policy = (
            "--model",
            str(self.sft),
            "--learning-rate",
            "1e-3",
            "--reward-model",
            str(self.rm),
            *SAMPLING,
        )
        train("dpo", export, "-o", str(self.dpo), *policy)
        train("ppo", export, "-o", str(self.ppo), "--steps", "10", "--batch-size", "16", *policy)


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Chain:
    """The chain of this test run: built by the first process that asks, under a lock, reused by the rest."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base  # one run's directory, seen by every xdist worker
    built = Chain(shared / "train-chain")
    with (shared / "train-chain.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (built.root / "done").exists():
            built.root.mkdir(exist_ok=True)
            built.build()
            (built.root / "done").touch()
    return built
