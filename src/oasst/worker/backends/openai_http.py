"""A backend for any OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama), streamed with httpx."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, Literal

import httpx

from oasst.protocol.inference import ModelConfig
from oasst.worker.backends.base import Backend, BackendError, Finish, FinishReason, Generation, Token

Mode = Literal["chat", "completions"]
_FINISH: dict[str, FinishReason] = {"length": "length", "stop": "eos_token"}


class OpenAIHttpBackend(Backend):
    """`chat` mode sends chat turns to /chat/completions (the server applies the model's template);
    `completions` sends the Open-Assistant prompt to /completions (for models trained on its tokens)."""

    def __init__(
        self,
        model: ModelConfig,
        *,
        base_url: str,
        served_model: str | None = None,
        api_key: str | None = None,
        mode: Mode = "chat",
        timeout: float = 600.0,
    ) -> None:
        super().__init__(model)
        self.base_url = base_url.rstrip("/")
        self.served_model = served_model or model.model_id
        self.api_key = api_key
        self.mode = mode
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _body(self, generation: Generation) -> dict[str, Any]:
        sampling = generation.sampling
        body: dict[str, Any] = {
            "model": self.served_model,
            "stream": True,
            "max_tokens": sampling.max_new_tokens,
            "seed": generation.seed % 2**63,
        }
        if generation.stop:
            body["stop"] = generation.stop[:4]  # OpenAI's limit; the worker's stop buffer checks them all
        if not generation.do_sample:
            body["temperature"] = 0.0
        elif sampling.temperature is not None:
            body["temperature"] = sampling.temperature
        # top_k, typical_p and repetition_penalty are extensions vLLM, TGI and llama.cpp accept.
        for name in ("top_p", "top_k", "typical_p", "repetition_penalty"):
            value = getattr(sampling, name)
            if value is not None:
                body[name] = value
        if self.mode == "chat":
            body["messages"] = [{"role": turn.role, "content": turn.content} for turn in generation.turns]
        else:
            body["prompt"] = generation.prompt
        return body

    async def generate(self, generation: Generation) -> AsyncGenerator[Token | Finish, None]:
        if self._http is None:
            raise BackendError("backend not started")
        path = "/chat/completions" if self.mode == "chat" else "/completions"
        reason: FinishReason = "eos_token"
        index = 0
        try:
            async with self._http.stream("POST", path, json=self._body(generation)) as response:
                if response.status_code >= 400:
                    detail = (await response.aread()).decode(errors="replace")[:500]
                    raise BackendError(f"{self.base_url}{path} answered {response.status_code}: {detail}")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    choices = json.loads(data).get("choices") or []
                    if not choices:
                        continue
                    choice = choices[0]
                    text = (
                        choice.get("delta", {}).get("content") if self.mode == "chat" else choice.get("text")
                    )
                    if text:
                        yield Token(text, token_id=index)
                        index += 1
                    if choice.get("finish_reason"):
                        reason = _FINISH.get(choice["finish_reason"], "eos_token")
        except (httpx.HTTPError, json.JSONDecodeError) as error:
            raise BackendError(f"{self.base_url}{path}: {error!r}") from error
        yield Finish(reason)
