"""A trained folder served by a real `oasst worker` (transformers backend) answers a chat exactly as the
policy does in-process: the worker prompts in the format the model was trained on."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing

import pytest

from oasst.config import Settings
from oasst.train.data import Formatter, PromptFormat
from oasst.train.evaluate import rollout
from oasst.train.models import load_frozen
from oasst.worker.prompts import Turn
from tests.inference.helpers import ChatClient, WorkerProcess, mint_worker_key
from tests.live import serve
from tests.train.conftest import Chain

QUESTION = "Tell me about owls."


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_trained_folder_is_served_by_a_worker_and_answers_a_chat(
    chain: Chain, make_settings: Callable[..., Settings]
) -> None:
    policy, tokenizer = load_frozen(chain.ppo, PromptFormat.oasst)
    prompt = Formatter(PromptFormat.oasst).prompt([Turn("user", QUESTION)])
    expected = rollout(policy, tokenizer, [prompt], max_new_tokens=24, do_sample=False).replies[0]
    assert expected.strip()

    backend = ("--backend", "transformers", "--model", str(chain.ppo), "--model-name", "trained")
    with serve(make_settings(allow_debug_auth=True)) as base_url:
        key = mint_worker_key(base_url)
        with WorkerProcess(base_url, key, backend=backend) as worker, closing(ChatClient(base_url)) as chat:
            worker.wait_for("registered", timeout=60)
            chat_id = chat.new_chat()
            sampling = {"temperature": 0, "max_new_tokens": 24}
            reply_id = chat.ask(chat_id, QUESTION, model_config_name="trained", sampling_parameters=sampling)
            events = list(chat.events(chat_id, reply_id))
    assert events[-1]["message"]["content"] == expected
