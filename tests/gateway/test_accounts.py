"""Accounts and users for the admin token, roles and keys: Parrot's routes, statuses and messages, with keys
stored hashed, shown once, rotated by the admin and refused at once when an account is deactivated."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from oasst.app import create_app
from oasst.collection.auth.service import hash_key
from oasst.config import Settings
from oasst.db.models import GatewayChat, GatewayMessage
from tests.gateway.conftest import ADMIN_TOKEN, Gateway, Ledger, bearer

NO_SUCH_ID = 2**31 - 1


def test_accounts_and_users(gateway: Gateway) -> None:
    ann = gateway.admin("POST", "/api/users", json={"code": "300001", "name": "Ann"})
    bob = gateway.admin("POST", "/api/users", json={"code": "100002"})
    assert ann.status_code == bob.status_code == 201, ann.text
    assert ann.json()["account"] is None and bob.json()["name"] is None

    # Unlike Parrot (which ignored it), `users` on create attaches them.
    created = gateway.admin(
        "POST", "/api/accounts", json={"name": "Team Alpha", "course": "CS-552", "users": [ann.json()["id"]]}
    )
    assert created.status_code == 201, created.text
    alpha = created.json()
    assert alpha["budget"] == 10_000 and alpha["usage"] == 0 and alpha["active"] is True
    assert [user["code"] for user in alpha["users"]] == ["300001"]
    assert len(alpha["created_at"]) == 19 and alpha["updated_at"] is None  # "YYYY-MM-DD HH:MM:SS"
    beta_id, _ = gateway.new_account("team beta", budget=50)

    listed = gateway.admin("GET", "/api/accounts").json()
    assert [account["name"] for account in listed] == ["Team Alpha", "team beta"]
    assert all(account["api_key"] is None for account in listed)  # shown at creation only
    assert [a["name"] for a in gateway.admin("GET", "/api/accounts", params={"name": "TEAM B"}).json()] == [
        "team beta"
    ]
    assert gateway.admin("GET", "/api/accounts", params={"usage": "-1"}).json() != []
    assert gateway.admin("GET", "/api/accounts", params={"usage": "0"}).json() == []
    bad_usage = gateway.admin("GET", "/api/accounts", params={"usage": "lots"})
    assert (bad_usage.status_code, bad_usage.json()) == (400, {"error": "Usage lots is not a valid integer"})
    huge = gateway.admin("GET", "/api/accounts", params={"usage": "9" * 30})
    assert (huge.status_code, huge.json()) == (400, {"error": f"Usage {'9' * 30} is not a valid integer"})

    duplicate = gateway.admin("POST", "/api/accounts", json={"name": "team beta", "course": "x"})
    assert (duplicate.status_code, duplicate.json()) == (
        400,
        {"error": "Account with name team beta already exists"},
    )

    # PUT replaces the set of users: Bob moves in, Ann leaves.
    updated = gateway.admin(
        "PUT", f"/api/accounts/{alpha['id']}", json={"budget": 20_000, "users": [bob.json()["id"]]}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["budget"] == 20_000 and updated.json()["updated_at"] is not None
    assert [user["code"] for user in updated.json()["users"]] == ["100002"]
    unknown_user = gateway.admin("PUT", f"/api/accounts/{alpha['id']}", json={"users": [NO_SUCH_ID]})
    assert (unknown_user.status_code, unknown_user.json()) == (
        400,
        {"error": f"User with id {NO_SUCH_ID} does not exist"},
    )
    renamed_onto = gateway.admin("PUT", f"/api/accounts/{alpha['id']}", json={"name": "team beta"})
    assert renamed_onto.json() == {"error": "Account with name team beta already exists"}

    users = gateway.admin("GET", "/api/users").json()
    assert [user["code"] for user in users] == ["100002", "300001"]  # ordered by code
    assert users[0]["account"]["name"] == "Team Alpha" and "users" not in users[0]["account"]
    assert users[1]["account"] is None

    taken = gateway.admin("POST", "/api/users", json={"code": "100002"})
    assert taken.json() == {"error": "User with code 100002 already exists"}
    nowhere = gateway.admin("POST", "/api/users", json={"code": "5", "account_id": NO_SUCH_ID})
    assert (nowhere.status_code, nowhere.json()) == (
        400,
        {"error": f"Account with id {NO_SUCH_ID} does not exist"},
    )

    assert gateway.admin("GET", f"/api/accounts/{beta_id}/num_chats").json() == {"num_chats": 0}
    deleted = gateway.admin("DELETE", f"/api/accounts/{beta_id}")
    assert deleted.status_code == 200 and deleted.json()["active"] is False
    assert [a["name"] for a in gateway.admin("GET", "/api/accounts", params={"active": "no"}).json()] == [
        "team beta"
    ]
    gone = gateway.admin("PUT", f"/api/accounts/{beta_id}", json={"budget": 1})
    assert gone.json() == {"error": f"Account with id {beta_id} does not exist"}
    assert gateway.admin("DELETE", f"/api/accounts/{NO_SUCH_ID}").json() == {
        "error": f"Account with id {NO_SUCH_ID} does not exist"
    }


def test_roles_and_keys(gateway: Gateway, ledger: Ledger) -> None:
    account_id, key = gateway.new_account()
    assert key.startswith("gw-") and len(key) > 40
    stored = ledger.account(account_id)
    assert stored.api_key_hash == hash_key(key) and key not in stored.api_key_hash

    denied = {"error": "Access Denied"}
    assert (gateway.http.get("/api/chats").status_code, gateway.http.get("/api/chats").json()) == (
        401,
        denied,
    )
    assert gateway.as_account("not-a-key", "GET", "/api/chats").status_code == 401
    assert gateway.as_account(key, "GET", "/api/accounts").status_code == 403  # keys cannot administer
    assert gateway.admin("GET", "/api/chats").status_code == 403  # the admin token cannot chat
    assert gateway.as_account(key, "GET", "/api/chats/budget").json() == {"usage": 0, "limit": 10_000}

    rotated = gateway.admin("POST", f"/api/accounts/{account_id}/rotate_key")
    assert rotated.status_code == 200
    new_key = rotated.json()["api_key"]
    assert new_key != key
    assert gateway.as_account(key, "GET", "/api/chats").status_code == 401
    assert gateway.as_account(new_key, "GET", "/api/chats").status_code == 200

    gateway.admin("DELETE", f"/api/accounts/{account_id}")
    assert gateway.as_account(new_key, "GET", "/api/chats").json() == denied  # refused at once
    assert gateway.admin("POST", f"/api/accounts/{account_id}/rotate_key").status_code == 400


def test_without_an_admin_token_admin_routes_refuse(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings())) as client:
        response = client.get("/api/accounts", headers=bearer(ADMIN_TOKEN))
        assert (response.status_code, response.json()) == (401, {"error": "Access Denied"})
        assert client.post("/api/accounts", json={"name": "x", "course": "y"}).status_code == 401


BAD_INPUT = [
    ("/api/accounts", b"{not json", "The request body is not valid JSON"),
    ("/api/accounts", b"[1, 2]", "The request body: Input should be a valid dictionary or object"),
    ("/api/accounts", b'{"course": "c"}', "`name`: Field required"),
    ("/api/accounts", b'{"name": "n", "course": "c", "budget": -5}', "`budget`: Input should be greater"),
    (
        "/api/accounts",
        b'{"name": "n", "course": "c", "budget": "9"}',
        "`budget`: Input should be a valid integer",
    ),
    (
        "/api/accounts",
        b'{"name": "n", "course": "c", "budget": 1.5}',
        "`budget`: Input should be a valid integer",
    ),
    (
        "/api/accounts",
        b'{"name": "' + b"n" * 81 + b'", "course": "c"}',
        "`name`: String should have at most 80",
    ),
    ("/api/accounts", b'{"name": "", "course": "c"}', "`name`: String should have at least 1"),
    ("/api/accounts", b'{"name": "n", "course": "c", "users": ["a"]}', "`users.0`: Input should be a valid"),
    ("/api/users", b'{"code": 123}', "`code`: Input should be a valid string"),
    ("/api/users", b'{"code": "1", "account_id": 99999999999}', "`account_id`: Input should be less"),
    ("/api/accounts", b"x" * 1_000_001, "The request body is larger than 1000000 bytes"),
]


def test_bad_admin_input_is_a_400_and_stores_nothing(gateway: Gateway) -> None:
    for path, body, error in BAD_INPUT:
        response = gateway.admin("POST", path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (body[:80], response.text)
        assert response.json()["error"].startswith(error), response.json()
    assert gateway.admin("GET", "/api/accounts").json() == []
    assert gateway.admin("GET", "/api/users").json() == []


def test_chats_of_an_account(gateway: Gateway, ledger: Ledger) -> None:
    account_id, key = gateway.new_account()
    _, other_key = gateway.new_account("Team 2")
    # NUL characters are removed, as Parrot's clean_string does.
    chat = gateway.as_account(key, "POST", "/api/chats", json={"name": "Lab\x00 1"})
    assert chat.status_code == 201, chat.text
    assert chat.json() | {"created_at": None} == {
        "id": chat.json()["id"],
        "name": "Lab 1",
        "account_id": account_id,
        "model_type": "chat_completion",
        "model": None,
        "instruction_prefix": "My request: ",
        "user_prefix": "My request: ",
        "assistant_prefix": "Your response: ",
        "created_at": None,
        "updated_at": None,
    }
    text = gateway.new_chat(
        key, name="Essay", model_type="text_completion", user_prefix="Q: ", assistant_prefix="A: "
    )
    unsupported = gateway.as_account(key, "POST", "/api/chats", json={"name": "x", "model_type": "edit"})
    assert (unsupported.status_code, unsupported.json()) == (
        400,
        {"error": "Model type edit is not supported"},
    )

    assert [c["name"] for c in gateway.as_account(key, "GET", "/api/chats").json()] == ["Lab 1", "Essay"]
    assert [c["id"] for c in gateway.as_account(key, "GET", "/api/chats", params={"name": "ESS"}).json()] == [
        text
    ]
    assert gateway.as_account(other_key, "GET", "/api/chats").json() == []
    assert gateway.admin("GET", f"/api/accounts/{account_id}/num_chats").json() == {"num_chats": 2}

    assert gateway.as_account(key, "GET", f"/api/chats/{text}/messages").json() == []
    assert gateway.as_account(key, "GET", f"/api/chats/{text}/num_messages").json() == {"num_messages": 0}
    foreign = gateway.as_account(other_key, "GET", f"/api/chats/{text}/messages")
    assert (foreign.status_code, foreign.json()["error"]) == (
        400,
        f"Chat with id {text} does not belong to account {account_id + 1}",
    )
    ask_path = f"/api/chats/{text}/messages"
    assert gateway.admin("POST", ask_path, json={"content": "hi"}).json() == {"error": "Access Denied"}
    assert gateway.http.post(ask_path, json={"content": "hi"}).status_code == 401
    assert gateway.admin("POST", ask_path, json={"content": "hi"}).status_code == 403
    missing = gateway.as_account(key, "POST", f"/api/chats/{NO_SUCH_ID}/messages", json={"content": "hi"})
    assert missing.json() == {"error": f"Chat with id {NO_SUCH_ID} does not exist"}

    # Without a worker serving a model, a message is refused and nothing is stored or charged.
    refused = gateway.as_account(key, "POST", f"/api/chats/{text}/messages", json={"content": "hi"})
    assert (refused.status_code, refused.json()) == (
        503,
        {"error": "No model is being served right now; try again later"},
    )
    assert ledger.count(GatewayMessage) == 0 and ledger.charges() == []
    assert ledger.count(GatewayChat) == 2
    assert (ledger.account(account_id).usage, ledger.account(account_id).reserved) == (0, 0)
