"""`oasst train`: SFT, reward model, DPO and PPO on OASST exports, and their evaluation.

torch, transformers and TRL load inside the commands, so the `oasst` command itself starts fast.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from oasst.train.data import READY, DataError, ExtraDataset, Filters, PromptFormat

app = typer.Typer(
    help="Train on OASST exports: sft, then rm, then ppo (or dpo); eval compares the folders.",
    no_args_is_help=True,
)


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


DATA_OPTIONS = [
    _option(
        "data", list[Path], typer.Argument(..., help="OASST exports (.jsonl, .jsonl.gz; oasst1/oasst2 too).")
    ),
    _option(
        "format",
        PromptFormat,
        typer.Option(
            PromptFormat.oasst, help="Prompt format: Open-Assistant tokens or the tokenizer's template."
        ),
    ),
    _option("lang", list[str] | None, typer.Option(None, help="Only trees whose prompt has this language.")),
    _option(
        "include_unreviewed",
        bool,
        typer.Option(False, help="Also use messages without a review result (rejected ones never)."),
    ),
    _option("any_state", bool, typer.Option(False, help=f"Use trees in every state, not only {READY}.")),
    _option("validation_fraction", float, typer.Option(0.1, help="Share of trees held out for validation.")),
    _option("seed", int, typer.Option(0, help="Seed of the split, the shuffles and the sampling.")),
    _option("threads", int | None, typer.Option(None, help="torch CPU threads (default: torch's choice).")),
]
TRAIN_OPTIONS = [
    _option("output", Path, typer.Option(..., "--output", "-o", help="The model folder to write.")),
    _option(
        "model",
        Path | None,
        typer.Option(None, help="Base model folder (any Hugging Face causal LM; default: bundled SmolLM2)."),
    ),
    _option("lora", bool, typer.Option(False, help="Train a LoRA adapter (merged into the saved weights).")),
    _option("learning_rate", float, typer.Option(1e-5, help="Peak learning rate.")),
    _option("batch_size", int, typer.Option(8, help="Examples per step (per device).")),
    _option("epochs", float, typer.Option(1.0, help="Passes over the training data.")),
    _option("max_steps", int, typer.Option(-1, help="Stop after this many steps (overrides --epochs).")),
    _option(
        "max_length", int, typer.Option(1024, help="Longest example, in tokens (longer ones are dropped).")
    ),
    _option(
        "gradient_checkpointing",
        bool,
        typer.Option(False, help="Recompute activations in the backward pass (less memory, slower)."),
    ),
]
REWARD_MODEL = typer.Option(None, "--reward-model", help="A folder written by `oasst train rm`.")
SAMPLES = typer.Option(4, help="Sampled replies per held-out prompt when measuring the mean reward.")
MAX_NEW_TOKENS = typer.Option(64, help="Longest sampled reply, in tokens.")


def _shared(*groups: list[inspect.Parameter]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the options of `groups`; it receives them as the dict `shared`. Data errors exit 2."""
    common = [parameter for group in groups for parameter in group]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.name != "shared"
        ]

        @functools.wraps(command)
        def run(**values: Any) -> None:
            shared = {parameter.name: values.pop(parameter.name) for parameter in common}
            threads = shared.pop("threads")
            if threads:
                import torch

                torch.set_num_threads(threads)
            try:
                command(shared=shared, **values)
            except DataError as error:
                typer.echo(f"error: {error}", err=True)
                raise typer.Exit(2) from None

        run.__signature__ = inspect.Signature([common[0], *own, *common[1:]])  # type: ignore[attr-defined]
        return run

    return decorate


def _settings(cls: type[Any], shared: dict[str, Any], **fields: Any) -> Any:
    """A settings object of `cls` from the shared options and the command's own."""
    if "model" in shared and shared["model"] is None:
        shared["model"] = _bundled_model()
    langs = shared.pop("lang")
    filters = Filters(
        langs=frozenset(langs) if langs else None,
        include_unreviewed=shared.pop("include_unreviewed"),
        tree_states=None if shared.pop("any_state") else frozenset({READY}),
    )
    return cls(filters=filters, **shared, **fields)


def _bundled_model() -> Path:
    """The bundled SmolLM2-135M-Instruct as a model folder (converted from its GGUF once, then cached)."""
    from oasst.config import Settings
    from oasst.worker.backends.base import BackendError
    from oasst.worker.backends.hf import bundled_model_dir

    try:
        return bundled_model_dir(Settings().models_dir)
    except BackendError as error:
        raise DataError(f"{error} (or pass --model DIR)") from None


def _report(title: str, rows: dict[str, dict[str, float]]) -> None:
    """A table: one row per folder, one column per metric."""
    from rich.console import Console
    from rich.table import Table

    columns = list(dict.fromkeys(metric for metrics in rows.values() for metric in metrics))
    table = Table(title=title)
    table.add_column("folder", overflow="fold")
    for column in columns:
        table.add_column(column, justify="right")
    for name, metrics in rows.items():
        table.add_row(name, *(f"{metrics[c]:.4f}" if c in metrics else "" for c in columns))
    Console().print(table)


def _trained(title: str, output: Path, metrics: dict[str, float]) -> None:
    _report(title, {str(output): metrics})
    typer.echo(f"wrote {output} (README.md is the model card, *.png the curves)")


@app.command()
@_shared(DATA_OPTIONS, TRAIN_OPTIONS)
def sft(
    shared: dict[str, Any],
    all_paths: bool = typer.Option(
        False, help="Every thread ending in an accepted reply, not only the best."
    ),
    extra: list[str] = typer.Option(
        [], help="An instruction jsonl (prompt/response or messages) to mix in, as PATH or PATH:WEIGHT."
    ),
    eval_every: int = typer.Option(50, help="Steps between validation losses."),
) -> None:
    """Supervised fine-tuning on the threads of the export (loss on the assistant replies)."""
    from oasst.train.sft import SftSettings, train_sft

    extras = [ExtraDataset.parse(spec) for spec in extra]
    config = _settings(SftSettings, shared, all_paths=all_paths, extra=extras, eval_every=eval_every)
    _trained("SFT", config.output, train_sft(config).metrics)


@app.command()
@_shared(DATA_OPTIONS, TRAIN_OPTIONS)
def rm(
    shared: dict[str, Any],
    eval_every: int = typer.Option(50, help="Steps between validation losses."),
) -> None:
    """A reward model from the ranks of sibling replies (start from the SFT folder)."""
    from oasst.train.rm import RmSettings, train_rm

    config = _settings(RmSettings, shared, eval_every=eval_every)
    _trained("Reward model", config.output, train_rm(config).metrics)


@app.command()
@_shared(DATA_OPTIONS, TRAIN_OPTIONS)
def dpo(
    shared: dict[str, Any],
    beta: float = typer.Option(0.1, help="How strongly the policy is held to the reference."),
    reward_model: Path | None = REWARD_MODEL,
    samples: int = SAMPLES,
    max_new_tokens: int = MAX_NEW_TOKENS,
    eval_every: int = typer.Option(50, help="Steps between validation losses."),
) -> None:
    """Direct preference optimisation on the ranked pairs (start from the SFT folder)."""
    from oasst.train.dpo import DpoSettings, train_dpo

    config = _settings(
        DpoSettings,
        shared,
        beta=beta,
        reward_model=reward_model,
        samples=samples,
        max_new_tokens=max_new_tokens,
        eval_every=eval_every,
    )
    _trained("DPO", config.output, train_dpo(config).metrics)


@app.command()
@_shared(DATA_OPTIONS, TRAIN_OPTIONS)
def ppo(
    shared: dict[str, Any],
    reward_model: Path = typer.Option(..., "--reward-model", help="A folder written by `oasst train rm`."),
    steps: int = typer.Option(100, help="Rollouts of --batch-size prompts."),
    kl_coef: float = typer.Option(0.05, help="Per-token KL penalty against the reference policy."),
    ppo_epochs: int = typer.Option(4, help="Optimisation passes over each rollout."),
    samples: int = SAMPLES,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> None:
    """PPO against the reward model, with a value head and a KL penalty (start from the SFT folder)."""
    from oasst.train.ppo import PpoSettings, train_ppo

    config = _settings(
        PpoSettings,
        shared,
        reward_model=reward_model,
        steps=steps,
        kl_coef=kl_coef,
        ppo_epochs=ppo_epochs,
        samples=samples,
        max_new_tokens=max_new_tokens,
    )
    _trained("PPO", config.output, train_ppo(config).metrics)


@app.command("eval")
@_shared(DATA_OPTIONS)
def eval_(
    shared: dict[str, Any],
    model: list[Path] = typer.Option([], "--model", help="A trained policy folder (repeat to compare)."),
    reward_model: Path | None = REWARD_MODEL,
    samples: int = SAMPLES,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> None:
    """On the held-out trees: each model's loss, perplexity and mean reward; the reward model's accuracy."""
    from oasst.train.evaluate import EvalSettings, evaluate_folders

    config = _settings(
        EvalSettings,
        shared,
        policies=model,
        reward_model=reward_model,
        samples=samples,
        max_new_tokens=max_new_tokens,
    )
    _report("Held-out evaluation", evaluate_folders(config))
