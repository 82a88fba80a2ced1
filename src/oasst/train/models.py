"""Base models and tokenizers for training, the shared run settings, and the model folders runs write:
weights the worker serves, `training.json`, a model card (README.md) and PNG curves."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from oasst.train.data import (
    OASST_CHAT_TEMPLATE,
    DataError,
    ExtraDataset,
    Filters,
    Formatter,
    PromptFormat,
    Tree,
    pairs,
    read_trees,
    split,
)
from oasst.worker.prompts import ASSISTANT, END_OF_TEXT, PROMPTER, SYSTEM

OASST_TOKENS = [PROMPTER, ASSISTANT, SYSTEM, END_OF_TEXT]
RECORD = "training.json"
ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


@dataclass
class TrainConfig:
    """What every run shares: data, base model, prompt format, split, seed and optimisation basics."""

    data: list[Path]
    output: Path
    model: Path  # the base model folder
    format: PromptFormat = PromptFormat.oasst
    filters: Filters = field(default_factory=Filters)
    validation_fraction: float = 0.1
    seed: int = 0
    lora: bool = False
    learning_rate: float = 1e-5
    batch_size: int = 8
    epochs: float = 1.0
    max_steps: int = -1  # overrides epochs when positive
    max_length: int = 1024
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, slower
    extra: list[ExtraDataset] = field(default_factory=list)


@dataclass
class Prepared:
    """The data and tokenizer of a run, split by tree."""

    base: Path
    train: list[Tree]
    validation: list[Tree]
    tokenizer: PreTrainedTokenizerBase
    formatter: Formatter

    def preference_splits(self, what: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """The ranked pairs of each split as preference records; `what` needs some in both."""
        train = self.formatter.preference_records(pairs(self.train))
        validation = self.formatter.preference_records(pairs(self.validation))
        if not train or not validation:
            raise DataError(
                f"{what} needs ranked pairs in both splits: {len(train)} train, {len(validation)} validation"
            )
        return train, validation


def resolve_model(model: Path) -> Path:
    """`model`, checked to be a Hugging Face model folder."""
    if not (model / "config.json").is_file():
        raise DataError(f"{model}: not a Hugging Face model folder (no config.json)")
    return model


def load_tokenizer(path: Path, format: PromptFormat) -> PreTrainedTokenizerBase:
    """The folder's tokenizer; for the Open-Assistant format with its special tokens, end of turn as EOS and
    a chat template that renders the same text (so a server applying the template prompts as in training)."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if format is PromptFormat.oasst:
        vocab = tokenizer.get_vocab()
        missing = [token for token in OASST_TOKENS if token not in vocab]
        if missing:
            tokenizer.add_tokens(missing, special_tokens=True)
        tokenizer.eos_token = END_OF_TEXT
        tokenizer.chat_template = OASST_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def fit_to_tokenizer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """Grow the embeddings for added tokens and set the pad and end ids the trainers and the worker use (the
    tokenizer's EOS joins the model's own ends of turn, such as ChatML's `<|im_end|>`)."""
    if len(tokenizer) > cast(torch.nn.Embedding, model.get_input_embeddings()).num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = end_ids(model, tokenizer)
    return model


def end_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The tokens that end a reply: the tokenizer's EOS and the model's generation-config ends."""
    configured = model.generation_config.eos_token_id
    others = configured if isinstance(configured, list) else [] if configured is None else [configured]
    return list(dict.fromkeys([tokenizer.eos_token_id, *others]))


def load_causal_lm(path: Path, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return fit_to_tokenizer(model, tokenizer)


def load_reward_model(path: Path, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A one-logit sequence classifier from `path` (a causal LM gets a fresh score head)."""
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    return fit_to_tokenizer(model, tokenizer)


def load_frozen(path: Path, format: PromptFormat, reward: bool = False) -> tuple[PreTrainedModel, Any]:
    """A trained folder (a policy, or a reward model when `reward`) with its tokenizer, for scoring only."""
    tokenizer = load_tokenizer(resolve_model(path), format)
    model = load_reward_model(path, tokenizer) if reward else load_causal_lm(path, tokenizer)
    return on_device(model).eval().requires_grad_(False), tokenizer


def device() -> torch.device:
    """Where models outside the TRL trainers run: the GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def on_device(model: ModuleT) -> ModuleT:
    """`model`, moved to `device()` in place."""
    torch.nn.Module.to(model, device())
    return model


def bf16_available() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def lora_config(enabled: bool, task_type: str) -> Any:
    """A LoRA adapter on every linear layer, or None for full fine-tuning."""
    if not enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type=task_type
    )


def prepare(config: TrainConfig) -> Prepared:
    """Read and split the data, load the base tokenizer, seed torch (for new heads and embeddings)."""
    torch.manual_seed(config.seed)
    base = resolve_model(config.model)
    trees = read_trees(config.data, config.filters)
    if not trees:
        raise DataError("no tree of the data passes the filters")
    train, validation = split(trees, config.validation_fraction, config.seed)
    tokenizer = load_tokenizer(base, config.format)
    return Prepared(base, train, validation, tokenizer, Formatter(config.format, tokenizer))


def trainer_arguments(config: TrainConfig, steps_between_evals: int) -> dict[str, Any]:
    """The TrainingArguments every TRL trainer here shares (no checkpoints, no trackers, bf16 on GPUs)."""
    return {
        "output_dir": str(config.output),
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "max_length": config.max_length,
        "seed": config.seed,
        "bf16": bf16_available(),
        "gradient_checkpointing": config.gradient_checkpointing,
        "logging_steps": steps_between_evals,
        "eval_strategy": "steps",
        "eval_steps": steps_between_evals,
        "save_strategy": "no",
        "report_to": "none",
        "dataloader_num_workers": 0,
    }


Curve = list[tuple[int, float]]


def curves_from_history(history: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Curve]:
    """Curves (step, value) of a trainer's log history, keyed `names[log key]`."""
    curves: dict[str, Curve] = {}
    for entry in history:
        for key, name in names.items():
            if key in entry:
                curves.setdefault(name, []).append((int(entry["step"]), float(entry[key])))
    return curves


@dataclass
class RunRecord:
    """What a run did, kept as `training.json` and rendered as the model card."""

    kind: str
    base_model: str
    format: str
    data: list[str]
    examples: dict[str, int]
    steps: int
    settings: dict[str, Any]
    metrics: dict[str, float]
    curves: dict[str, Curve] = field(default_factory=dict)


def record(kind: str, config: TrainConfig, prepared: Prepared, **values: Any) -> RunRecord:
    settings = {
        k: v
        for k, v in asdict(config).items()
        if k not in ("data", "output", "model", "format", "filters", "extra")
    }
    settings["filters"] = {
        k: sorted(v) if isinstance(v, frozenset) else v for k, v in asdict(config.filters).items()
    }
    settings["extra"] = [f"{extra.path}:{extra.weight}" for extra in config.extra]
    return RunRecord(
        kind=kind,
        base_model=str(prepared.base),
        format=config.format.value,
        data=[str(path) for path in config.data],
        settings=settings,
        **values,
    )


def save(model: Any, tokenizer: PreTrainedTokenizerBase, output: Path, run: RunRecord) -> None:
    """Write a folder the worker serves: merged weights (LoRA folded in), tokenizer, record, card, curves."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    (output / RECORD).write_text(json.dumps(asdict(run), indent=2, default=str) + "\n")
    plots = _plot(run.curves, output)
    (output / "README.md").write_text(model_card(run, plots, output))


def _plot(curves: dict[str, Curve], output: Path) -> list[str]:
    """`loss.png` (every loss curve) and `reward.png` (the rest), one panel per curve; the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {
        "loss.png": [name for name in curves if "loss" in name],
        "reward.png": [name for name in curves if "loss" not in name],
    }
    written = []
    for filename, names in groups.items():
        if not names:
            continue
        figure, axes = plt.subplots(len(names), 1, figsize=(6, 2.6 * len(names)), squeeze=False)
        for ax, name in zip(axes[:, 0], names, strict=True):
            steps, values = zip(*curves[name], strict=True)
            ax.plot(steps, values, marker="." if len(steps) < 50 else None)
            ax.set_title(name)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(output / filename, dpi=100)
        plt.close(figure)
        written.append(filename)
    return written


TITLES = {
    "sft": "supervised fine-tuning",
    "rm": "reward model",
    "dpo": "direct preference optimisation",
    "ppo": "PPO against a reward model",
}


def model_card(run: RunRecord, plots: list[str], output: Path) -> str:
    """The README.md of a trained folder: what it was trained on, how, and how well."""
    lines = [
        f"# {run.kind.upper()} model ({TITLES.get(run.kind, run.kind)})",
        "",
        "Trained with `oasst train " + run.kind + "`.",
        "",
        f"- Base model: `{run.base_model}`",
        f"- Prompt format: `{run.format}`",
        "- Data: " + ", ".join(f"`{path}`" for path in run.data),
        "- Examples: " + ", ".join(f"{count} {name}" for name, count in run.examples.items()),
        f"- Optimizer steps: {run.steps}",
        "",
        "## Settings",
        "",
        "| setting | value |",
        "|---|---|",
        *(f"| {key} | `{value}` |" for key, value in run.settings.items()),
        "",
        "## Metrics",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {key} | {value:.4f} |" for key, value in run.metrics.items()),
        "",
    ]
    if plots:
        lines += ["## Curves", "", *(f"![{name}]({name})" for name in plots), ""]
    if run.kind != "rm":
        serve = f"oasst worker --backend transformers --model {output}"
        lines += ["## Serving", "", "```", serve, "```", ""]
    return "\n".join(lines)
