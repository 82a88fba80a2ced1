"""The OpenAI-compatible API (/v1): models, chat completions and completions served by the model workers."""
