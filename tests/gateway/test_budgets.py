"""Budgets that hold: 16 concurrent calls on one account, through the Parrot API or streamed through /v1 with
the openai SDK, never take its usage past its budget; the account key works on /v1 with the same budget."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from oasst.db.models import GatewayMessage
from tests.gateway.conftest import Gateway, Ledger, bearer
from tests.inference.helpers import MODEL

CONCURRENCY = 16
BUDGET = 100
QUESTION = "a b c d e f g h"  # answered in 10 tokens; each call reserves about 3 times what it uses


def _refused(status: int, error: str) -> bool:
    return status == 400 and (
        error == "Account has reached its budget" or error.startswith("Not enough budget left")
    )


def test_concurrent_asks_never_overspend(live: tuple[Gateway, str], ledger: Ledger) -> None:
    gateway, base_url = live
    account_id, key = gateway.new_account(budget=BUDGET)
    chats = [gateway.new_chat(key) for _ in range(CONCURRENCY)]

    def ask(chat: int) -> httpx.Response:
        body = {"content": QUESTION, "model_args": {"max_tokens": 10}}
        return httpx.post(f"{base_url}/api/chats/{chat}/messages", json=body, headers=bearer(key), timeout=60)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        responses = list(pool.map(ask, chats))
    answered = [response.json() for response in responses if response.status_code == 201]
    refused = [response for response in responses if response.status_code != 201]
    assert all(_refused(response.status_code, response.json()["error"]) for response in refused)
    # Unchecked (as Parrot does), all 16 would pass and spend more than twice the budget.
    assert (
        sum(reply["usage"]["total_tokens"] for reply in answered) * CONCURRENCY / len(answered) > 2 * BUDGET
    )
    assert len(answered) >= 2 and refused

    account = ledger.account(account_id)
    assert account.usage == sum(reply["usage"]["total_tokens"] for reply in answered) <= BUDGET
    assert account.reserved == 0
    assert [charge.state for charge in ledger.charges()] == ["settled"] * len(answered)
    assert ledger.count(GatewayMessage) == 2 * len(answered)


def test_concurrent_streams_on_v1_never_overspend(live: tuple[Gateway, str], ledger: Ledger) -> None:
    gateway, base_url = live
    account_id, key = gateway.new_account(budget=BUDGET)

    def stream(_: int) -> int | None:
        """The tokens the stream reported using, or None if the budget refused it."""
        with openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=60) as sdk:
            try:
                chunks = list(
                    sdk.chat.completions.create(
                        model=MODEL,
                        messages=[{"role": "user", "content": QUESTION}],
                        max_tokens=10,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                )
            except openai.RateLimitError as error:
                assert error.code == "insufficient_quota"
                return None
        assert (
            "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"You said: {QUESTION}"
        )
        usage = chunks[-1].usage
        assert usage is not None
        return usage.total_tokens

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(stream, range(CONCURRENCY)))
    used = [tokens for tokens in results if tokens is not None]
    assert len(used) >= 2 and None in results
    account = ledger.account(account_id)
    assert account.usage == sum(used) <= BUDGET and account.reserved == 0
    assert [(charge.state, charge.source) for charge in ledger.charges()] == [("settled", "v1")] * len(used)


def test_the_openai_sdk_with_an_account_key(live: tuple[Gateway, str], ledger: Ledger) -> None:
    gateway, base_url = live
    account_id, key = gateway.new_account(budget=10_000)
    sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=30)

    assert [model.id for model in sdk.models.list()] == [MODEL]
    reply = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello there"}])
    assert reply.choices[0].message.content == "You said: hello there"
    completion = sdk.completions.create(model=MODEL, prompt="count to three", max_tokens=3)
    assert completion.choices[0].text == "You said: count "
    assert reply.usage is not None and completion.usage is not None
    spent = reply.usage.total_tokens + completion.usage.total_tokens
    assert gateway.as_account(key, "GET", "/api/chats/budget").json() == {"usage": spent, "limit": 10_000}

    # The server remembers keys it has seen, but every reservation checks the key again: once rotated, the old
    # key is refused at once (and nothing is charged).
    new_key = gateway.admin("POST", f"/api/accounts/{account_id}/rotate_key").json()["api_key"]
    with pytest.raises(openai.AuthenticationError) as old_key:
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello there"}])
    assert old_key.value.code == "invalid_api_key"
    sdk.close()
    sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key=new_key, max_retries=0, timeout=30)

    # The same budget: at its limit /v1 refuses as OpenAI does when a quota is used up.
    gateway.admin("PUT", f"/api/accounts/{account_id}", json={"budget": spent})
    with pytest.raises(openai.RateLimitError) as exhausted:
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "more"}])
    assert exhausted.value.code == "insufficient_quota"
    assert "Account has reached its budget" in str(exhausted.value)
    assert ledger.account(account_id).usage == spent

    gateway.admin("DELETE", f"/api/accounts/{account_id}")
    with pytest.raises(openai.AuthenticationError):
        sdk.models.list()
    with pytest.raises(openai.AuthenticationError):  # the key is remembered: the reservation refuses it
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "more"}])
    assert ledger.account(account_id).usage == spent
    sdk.close()
