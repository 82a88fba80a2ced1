"""Students chat through the Parrot API with a real server and a fake-backend worker (it echoes the last user
turn, one word a token): both model types, history and instructions, the soft limit counting the current
call, a budget that blocks, and failed calls that charge and store nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from oasst.config import Settings
from oasst.db.models import GatewayMessage
from tests.gateway.conftest import ADMIN_TOKEN, Gateway, Ledger
from tests.inference.helpers import WorkerProcess, mint_worker_key
from tests.live import serve

DEFAULT_ARGS = {
    "temperature": 0.7,
    "top_p": 1.0,
    "max_tokens": None,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "best_of": 1,
}


def ask(gateway: Gateway, key: str, chat_id: int, **body: Any) -> httpx.Response:
    return gateway.as_account(key, "POST", f"/api/chats/{chat_id}/messages", json=body)


def test_chat_completion_keeps_the_history(live: tuple[Gateway, str], ledger: Ledger) -> None:
    gateway, _ = live
    account_id, key = gateway.new_account()
    chat = gateway.new_chat(key)

    first = ask(gateway, key, chat, content="hello there")
    assert first.status_code == 201, first.text
    reply = first.json()
    assert reply["role"] == "assistant" and reply["chat_id"] == chat
    assert reply["content"] == "You said: hello there"
    assert reply["model_args"] == DEFAULT_ARGS and reply["over_soft_limit"] is False
    usage = reply["usage"]
    assert usage["completion_tokens"] == 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    args = {"temperature": 0, "max_tokens": 2, "presence_penalty": 1.5}
    second = ask(gateway, key, chat, content="and again", instruction="Be brief.", model_args=args)
    assert second.status_code == 201, second.text
    assert second.json()["content"] == "You said: "  # max_tokens reached the worker
    assert second.json()["model_args"] == {**DEFAULT_ARGS, **args}
    # The server prepended the history: the prompt now counts the first exchange and the instruction.
    assert second.json()["usage"]["prompt_tokens"] > usage["prompt_tokens"]

    messages = gateway.as_account(key, "GET", f"/api/chats/{chat}/messages").json()
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "hello there"),
        ("assistant", "You said: hello there"),
        ("system", "Be brief."),
        ("user", "and again"),
        ("assistant", "You said: "),
    ]
    assert [m["usage"] == {} for m in messages] == [True, False, True, True, False]
    assert gateway.as_account(key, "GET", f"/api/chats/{chat}/num_messages").json() == {"num_messages": 5}

    spent = usage["total_tokens"] + second.json()["usage"]["total_tokens"]
    assert gateway.as_account(key, "GET", "/api/chats/budget").json() == {"usage": spent, "limit": 10_000}
    account = ledger.account(account_id)
    assert (account.usage, account.reserved) == (spent, 0)
    assert [(c.state, c.source, c.charged_tokens) for c in ledger.charges()] == [
        ("settled", "chat", usage["total_tokens"]),
        ("settled", "chat", second.json()["usage"]["total_tokens"]),
    ]


def test_text_completion_builds_the_prefixed_prompt(live: tuple[Gateway, str]) -> None:
    gateway, _ = live
    _, key = gateway.new_account()
    chat = gateway.new_chat(
        key, model_type="text_completion", instruction_prefix="I: ", user_prefix="Q: ", assistant_prefix="A: "
    )
    # The fake worker echoes its one user turn: here, the whole prompt.
    first = ask(gateway, key, chat, content="first")
    assert first.json()["content"] == "You said: Q: first\nA: "
    second = ask(gateway, key, chat, content="second", instruction="Be kind.")
    history = "Q: first\nA: You said: Q: first\nA: "
    assert second.json()["content"] == f"You said: {history}\nI: Be kind.\nQ: second\nA: "

    default = gateway.new_chat(key, model_type="text_completion")
    assert (
        ask(gateway, key, default, content="hi").json()["content"]
        == "You said: My request: hi\nYour response: "
    )


def test_budget_blocks_and_the_soft_limit_counts_the_current_call(
    live: tuple[Gateway, str], ledger: Ledger
) -> None:
    gateway, _ = live
    account_id, key = gateway.new_account(budget=10_000)
    words = 200
    question = {"content": " ".join(["w"] * words), "model_args": {"max_tokens": words + 2}}  # whole echo

    def ask_fresh() -> httpx.Response:
        return ask(gateway, key, gateway.new_chat(key), **question)

    first = ask_fresh()
    assert first.status_code == 201 and first.json()["over_soft_limit"] is False
    used = first.json()["usage"]["total_tokens"]
    reserved = ledger.charges()[0].reserved_tokens
    assert used <= reserved
    # A budget that takes one more call exactly, which crosses 75% when it is counted: Parrot, looking at the
    # usage before the call, would not have flagged it.
    budget = used + reserved
    assert used < 0.75 * budget <= 2 * used
    gateway.admin("PUT", f"/api/accounts/{account_id}", json={"budget": budget})
    second = ask_fresh()
    assert second.status_code == 201 and second.json()["over_soft_limit"] is True

    third = ask_fresh()
    assert third.status_code == 400
    assert third.json()["error"].startswith("Not enough budget left for this request: it may use up to")
    account = ledger.account(account_id)
    assert (account.usage, account.reserved) == (2 * used, 0)

    # At the limit, Parrot's message; an admin raising the budget lets the team go on.
    gateway.admin("PUT", f"/api/accounts/{account_id}", json={"budget": 2 * used})
    blocked = ask_fresh()
    assert (blocked.status_code, blocked.json()) == (400, {"error": "Account has reached its budget"})
    gateway.admin("PUT", f"/api/accounts/{account_id}", json={"budget": 2 * used + reserved})
    assert ask_fresh().status_code == 201
    assert ledger.count(GatewayMessage) == 3 * 2


@pytest.mark.parametrize(
    ("model_args", "error"),
    [
        ({"temperature": 2.5}, "`temperature` must be between 0 and 2"),
        ({"top_p": -0.1}, "`top_p` must be between 0 and 1"),
        ({"presence_penalty": 3}, "`presence_penalty` must be between -2 and 2"),
        ({"frequency_penalty": -2.5}, "`frequency_penalty` must be between -2 and 2"),
        ({"best_of": 4}, "`best_of` must be between 1 and 3"),
        ({"max_tokens": 0}, "`max_tokens` must be between 1 and 65536, or null"),
        ({"temperature": "hot"}, "`model_args.temperature`: Input should be a valid number"),
    ],
)
def test_bad_model_args(gateway: Gateway, ledger: Ledger, model_args: dict[str, Any], error: str) -> None:
    _, key = gateway.new_account()
    chat = gateway.new_chat(key)
    response = ask(gateway, key, chat, content="hi", model_args=model_args)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert ledger.count(GatewayMessage) == 0 and ledger.charges() == []


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    """A server on which a message left pending (its worker gone) times out after one second."""
    settings = make_settings(
        gateway_admin_token=ADMIN_TOKEN, pending_event_interval=0.05, assistant_message_timeout=1.0
    )
    with serve(settings) as base_url:
        yield base_url


def test_a_failed_call_charges_and_stores_nothing(server: str, ledger: Ledger) -> None:
    with httpx.Client(base_url=server, timeout=30) as http, ThreadPoolExecutor(1) as pool:
        gateway = Gateway(http)
        account_id, key = gateway.new_account()
        with WorkerProcess(server, mint_worker_key(server), "--fake-stall-after", "2") as worker:
            worker.wait_for("registered")
            unknown = ask(gateway, key, gateway.new_chat(key, model="no-such-model"), content="hi")
            assert (unknown.status_code, unknown.json()) == (
                400,
                {"error": "The model `no-such-model` does not exist or no worker serves it."},
            )
            # The worker dies in the middle of its answer.
            chat = gateway.new_chat(key)
            pending = pool.submit(ask, gateway, key, chat, content="tell me a story", instruction="Be long.")
            worker.wait_for("work request")
            worker.kill()
            failed = pending.result(timeout=30)
        assert failed.status_code in (502, 504), failed.text
        assert failed.json()["error"] in (
            "The model worker failed: Aborted due to worker error.",
            "No worker answered in time.",
        )
    assert ledger.count(GatewayMessage) == 0 and ledger.charges() == []
    account = ledger.account(account_id)
    assert (account.usage, account.reserved) == (0, 0)
