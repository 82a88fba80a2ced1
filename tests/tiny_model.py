"""A tiny random GPT-2 (2 layers, 64 wide) with a byte-level BPE tokenizer trained here, saved as a Hugging
Face model folder with a chat template: fast enough for tests of the worker and of training."""

from __future__ import annotations

from pathlib import Path

END_OF_TEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
# The Open-Assistant tokens and ChatML's, so both prompt formats encode as single special tokens.
SPECIAL_TOKENS = [END_OF_TEXT, "<|prompter|>", "<|assistant|>", "<|system|>", IM_START, IM_END]
# ChatML, with {% generation %} around assistant replies (TRL's assistant_only_loss needs the markers).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_CORPUS = [
    "Hello! How can I help you today?",
    "What is the capital of France? The capital of France is Paris.",
    "Two plus two is four. Three plus three is six.",
    "The quick brown fox jumps over the lazy dog.",
    "Open Assistant is a chat assistant that understands tasks and answers questions.",
    "Please write a short poem about the sea, the wind and the stars.",
    "A model worker streams tokens to the server over a websocket.",
    "Thank you very much, that was helpful. You are welcome!",
]


def build_tiny_model(directory: Path, *, vocab_size: int = 512, seed: int = 0) -> Path:
    """Save a random tiny GPT-2, its tokenizer (eos `<|endoftext|>`, pad the same) and a ChatML chat template
    into `directory`; returns it. Deterministic for a seed; builds in well under a second."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=END_OF_TEXT,
        bos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    eos_id = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    # A chat reply ends at <|im_end|>, an Open-Assistant one at <|endoftext|>: both stop generation.
    model.generation_config = GenerationConfig(
        eos_token_id=[eos_id, tokenizer.convert_tokens_to_ids(IM_END)], pad_token_id=eos_id
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
