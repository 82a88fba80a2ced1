"""Users: lookups, admin updates, anonymising deletes, keyset and cursor listings, a user's messages."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oasst.db.models import ApiClient, User
from tests.collection.frontend import error
from tests.factories import Factory


@pytest.fixture
def other(factory: Factory) -> tuple[ApiClient, dict[str, str]]:
    """An untrusted client and the headers that call as it."""
    client, key = factory.api_client()
    return client, {"X-API-Key": key}


USER_BOB = {"id": "bob", "display_name": "Robert", "auth_method": "local"}


def names(items: list[dict[str, Any]], field: str = "id") -> list[str]:
    return [item[field] for item in items]


# --- one user ------------------------------------------------------------------------------------------


def test_get_user_by_backend_id(app_client: TestClient, factory: Factory, admin: ApiClient) -> None:
    alice = factory.user(admin, "alice", display_name="Alice")
    response = app_client.get(f"/api/v1/users/{alice.id}")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "id", "display_name", "auth_method", "user_id", "enabled", "deleted", "notes", "created_date",
        "show_on_leaderboard", "streak_days", "streak_last_day_date", "last_activity_date",
        "tos_acceptance_date",
    ]  # fmt: skip
    assert (body["id"], body["user_id"], body["display_name"]) == ("alice", str(alice.id), "Alice")
    url = f"/api/v1/users/{alice.id}"
    assert app_client.get(url, params={"api_client_id": str(admin.id)}).status_code == 200
    assert error(app_client.get(url, params={"api_client_id": str(uuid.uuid4())})) == (404, 4002)
    assert error(app_client.get(f"/api/v1/users/{uuid.uuid4()}")) == (404, 4002)
    assert app_client.get("/api/v1/users/not-a-uuid").status_code == 422


def test_untrusted_clients_see_only_their_own_users(
    app_client: TestClient, factory: Factory, admin: ApiClient, other: tuple[ApiClient, dict[str, str]]
) -> None:
    client, headers = other
    mine = factory.user(client, "mine")
    theirs = factory.user(admin, "theirs")
    assert app_client.get(f"/api/v1/users/{mine.id}", headers=headers).status_code == 200
    for path in ("", "/stats", "/stats/total", "/stats/total/window", "/messages", "/messages/cursor"):
        assert error(app_client.get(f"/api/v1/users/{theirs.id}{path}", headers=headers)) == (403, 2), path
    params = {"api_client_id": str(admin.id)}
    assert error(app_client.get(f"/api/v1/users/{mine.id}", params=params, headers=headers)) == (403, 2)
    for path in ("/api/v1/users/by_username", "/api/v1/users/by_display_name", "/api/v1/users/cursor"):
        assert error(app_client.get(path, params=params, headers=headers)) == (403, 2)
        listed = app_client.get(path, headers=headers).json()
        items = listed["items"] if isinstance(listed, dict) else listed
        assert names(items) == ["mine"]
    assert names(app_client.get("/api/v1/frontend_users/", headers=headers).json()) == ["mine"]
    lookup = app_client.get("/api/v1/frontend_users/local/theirs", params=params, headers=headers)
    assert error(lookup) == (403, 2)
    assert error(app_client.get("/api/v1/frontend_users/local/theirs", headers=headers)) == (404, 4002)
    # The trusted client sees everyone, and finds a user of another client when it names that client.
    assert names(app_client.get("/api/v1/users/by_username").json()) == ["mine", "theirs"]
    found = app_client.get("/api/v1/frontend_users/local/mine", params={"api_client_id": str(client.id)})
    assert found.json()["user_id"] == str(mine.id)
    for method, path in (("PUT", f"/api/v1/users/{mine.id}"), ("DELETE", f"/api/v1/users/{mine.id}")):
        assert error(app_client.request(method, path, headers=headers)) == (403, 2)


def test_admin_update_and_tos(app_client: TestClient, factory: Factory, admin: ApiClient) -> None:
    bob = factory.user(admin, "bob")
    response = app_client.put(
        f"/api/v1/users/{bob.id}",
        params={"display_name": "Robert", "enabled": False, "notes": "spams", "show_on_leaderboard": False},
    )
    assert response.status_code == 204 and response.content == b""
    body = app_client.get(f"/api/v1/users/{bob.id}").json()
    flags = (body["display_name"], body["enabled"], body["notes"], body["show_on_leaderboard"])
    assert flags == ("Robert", False, "spams", False)
    assert body["tos_acceptance_date"] is None
    app_client.put(f"/api/v1/users/{bob.id}", params={"tos_acceptance": False})
    assert app_client.get(f"/api/v1/users/{bob.id}").json()["tos_acceptance_date"] is None
    app_client.put(f"/api/v1/users/{bob.id}", params={"tos_acceptance": True, "enabled": True})
    body = app_client.get(f"/api/v1/users/{bob.id}").json()
    assert body["tos_acceptance_date"].endswith("+00:00") and body["enabled"] is True
    assert body["notes"] == "spams"  # fields not sent stay as they were
    # A disabled user is refused work at once.
    app_client.put(f"/api/v1/users/{bob.id}", params={"enabled": False})
    task = app_client.post("/api/v1/tasks/", json={"type": "random", "user": USER_BOB})
    assert error(task) == (503, 4001)
    assert error(app_client.put(f"/api/v1/users/{uuid.uuid4()}", params={"enabled": True})) == (404, 4002)
    assert app_client.put(f"/api/v1/users/{bob.id}", params={"notes": "x" * 1025}).status_code == 422


def test_delete_anonymises_and_keeps_messages(
    app_client: TestClient, factory: Factory, admin: ApiClient
) -> None:
    carol = factory.user(admin, "carol", display_name="Carol")
    message = factory.message(admin, carol)
    assert app_client.delete(f"/api/v1/users/{carol.id}").status_code == 204
    body = app_client.get(f"/api/v1/users/{carol.id}").json()
    assert body["id"] == f"deleted_{carol.id}"
    flags = (body["display_name"], body["deleted"], body["show_on_leaderboard"])
    assert flags == ("Deleted User", True, False)
    assert app_client.get(f"/api/v1/messages/{message.id}").json()["user_id"] == str(carol.id)
    assert error(app_client.get("/api/v1/frontend_users/local/carol")) == (404, 4002)
    # The name is free again: the same frontend user comes back as a new backend user.
    again = app_client.post(
        "/api/v1/frontend_users/", json={"id": "carol", "display_name": "C", "auth_method": "local"}
    )
    assert again.json()["user_id"] != str(carol.id)
    assert app_client.delete(f"/api/v1/users/{carol.id}").status_code == 204  # deleting twice changes nothing
    assert error(app_client.delete(f"/api/v1/users/{uuid.uuid4()}")) == (404, 4002)


# --- listings ------------------------------------------------------------------------------------------


@pytest.fixture
def crowd(factory: Factory, admin: ApiClient) -> list[User]:
    """Seven users with names that sort the same way on every engine and collation."""
    return [
        factory.user(admin, name, display_name=display)
        for name, display in (
            ("ann", "zed"),
            ("bea", "yan"),
            ("cid", "xia"),
            ("dan", "wes"),
            ("eve", "vic"),
            ("fay", "uma"),
            ("gus", "tom"),
        )
    ]


def test_keyset_listings(app_client: TestClient, crowd: list[User]) -> None:
    by_name = app_client.get("/api/v1/users/by_username", params={"max_count": 3}).json()
    assert names(by_name) == ["ann", "bea", "cid"]
    after = app_client.get(
        "/api/v1/users/by_username", params={"gte_username": "cid", "gt_id": by_name[2]["user_id"]}
    )
    assert names(after.json()) == ["dan", "eve", "fay", "gus"]
    inclusive = app_client.get(
        "/api/v1/users/by_username", params={"gte_username": "cid", "lte_username": "eve"}
    )
    assert names(inclusive.json()) == ["cid", "dan", "eve"]
    desc = app_client.get("/api/v1/users/by_username", params={"desc": True, "max_count": 2})
    assert names(desc.json()) == ["gus", "fay"]
    by_display = app_client.get("/api/v1/users/by_display_name", params={"max_count": 2})
    assert names(by_display.json(), "display_name") == ["tom", "uma"]
    below = app_client.get("/api/v1/users/by_display_name", params={"lte_display_name": "uma", "desc": True})
    assert names(below.json(), "display_name") == ["uma", "tom"]
    deprecated = app_client.get("/api/v1/frontend_users/", params={"gte_username": "fay"})
    assert names(deprecated.json()) == ["fay", "gus"]
    # An id bound needs its key bound.
    assert error(app_client.get("/api/v1/users/by_username", params={"gt_id": str(uuid.uuid4())})) == (400, 0)
    no_key = {"lt_id": str(uuid.uuid4())}
    assert error(app_client.get("/api/v1/users/by_display_name", params=no_key)) == (400, 0)


def test_search_text_is_a_literal_substring(
    app_client: TestClient, factory: Factory, admin: ApiClient
) -> None:
    for name in ("a_b", "axb", "100%", "1000"):
        factory.user(admin, name, display_name=name.upper())
    assert names(app_client.get("/api/v1/users/by_username", params={"search_text": "_"}).json()) == ["a_b"]
    assert names(app_client.get("/api/v1/users/by_username", params={"search_text": "%"}).json()) == ["100%"]
    found = app_client.get("/api/v1/users/by_display_name", params={"search_text": "ax"}).json()
    assert names(found) == ["axb"]  # matched in the display name, ignoring case
    page = app_client.get("/api/v1/users/cursor", params={"search_text": "10"}).json()
    assert sorted(names(page["items"])) == ["100%", "1000"]  # their order depends on the collation


def test_cursor_pages_forward_and_back(app_client: TestClient, crowd: list[User]) -> None:
    def page(**params: Any) -> dict[str, Any]:
        response = app_client.get("/api/v1/users/cursor", params={"max_count": 3, **params})
        assert response.status_code == 200, response.text
        body = dict(response.json())
        assert list(body) == ["prev", "next", "sort_key", "items", "order"]
        assert body["order"] == "asc"
        return body

    first = page()
    assert names(first["items"]) == ["ann", "bea", "cid"]
    assert first["prev"] is None
    assert first["next"] == f"{first['items'][2]['user_id']}$cid"
    second = page(after=first["next"])
    assert names(second["items"]) == ["dan", "eve", "fay"]
    assert second["prev"] == f"{second['items'][0]['user_id']}$dan"
    third = page(after=second["next"])
    assert names(third["items"]) == ["gus"] and third["next"] is None
    # Back again from the last page.
    back = page(before=third["prev"])
    assert names(back["items"]) == ["dan", "eve", "fay"]
    assert back["prev"] is not None and back["next"] == f"{back['items'][2]['user_id']}$fay"
    start = page(before=back["prev"])
    assert names(start["items"]) == ["ann", "bea", "cid"] and start["prev"] is None
    # Both ends given: the slice between them.
    between = page(after=first["items"][0]["user_id"] + "$ann", before=third["prev"])
    assert names(between["items"]) == ["bea", "cid", "dan"]
    # Past the end: an empty page that echoes its cursor.
    empty = page(after=third["prev"])
    assert empty["items"] == [] and empty["prev"] == third["prev"]

    by_display = page(sort_key="display_name")
    assert names(by_display["items"], "display_name") == ["tom", "uma", "vic"]
    assert by_display["sort_key"] == "display_name" and by_display["next"].endswith("$vic")
    assert names(page(sort_key="display_name", after=by_display["next"])["items"], "display_name") == [
        "wes",
        "xia",
        "yan",
    ]
    assert error(app_client.get("/api/v1/users/cursor", params={"sort_key": "created_date"})) == (400, 100)
    assert error(app_client.get("/api/v1/users/cursor", params={"after": "nope$ann"})) == (400, 101)


# --- a user's messages ---------------------------------------------------------------------------------


def test_user_messages_and_cursor(
    app_client: TestClient, factory: Factory, admin: ApiClient, other: tuple[ApiClient, dict[str, str]]
) -> None:
    dora = factory.user(admin, "dora")
    someone = factory.user(admin, "someone")
    root = factory.message(admin, dora, text="first")
    reply = factory.message(admin, someone, root, text="reply")
    second = factory.message(admin, dora, reply, text="second")
    third = factory.message(admin, dora, lang="de", text="third")
    gone = factory.message(admin, dora, deleted=True, text="gone")

    listed = app_client.get(f"/api/v1/users/{dora.id}/messages").json()
    assert [m["text"] for m in listed] == ["third", "second", "first"]  # newest first by default
    assert [
        m["text"] for m in app_client.get(f"/api/v1/users/{dora.id}/messages?desc=false&max_count=2").json()
    ] == [
        "first",
        "second",
    ]
    roots = app_client.get(f"/api/v1/users/{dora.id}/messages", params={"only_roots": True}).json()
    assert [m["text"] for m in roots] == ["third", "first"]
    assert [m["text"] for m in app_client.get(f"/api/v1/users/{dora.id}/messages?lang=de").json()] == [
        "third"
    ]
    with_deleted = app_client.get(
        f"/api/v1/users/{dora.id}/messages", params={"include_deleted": True}
    ).json()
    assert str(gone.id) in [m["id"] for m in with_deleted]
    # The viewer header fills user_is_author.
    seen = app_client.get(f"/api/v1/users/{dora.id}/messages", headers={"x-oasst-user": "local:dora"}).json()
    assert {m["user_is_author"] for m in seen} == {True}

    page = app_client.get(f"/api/v1/users/{dora.id}/messages/cursor", params={"max_count": 2}).json()
    assert [m["text"] for m in page["items"]] == ["first", "second"]
    assert page["next"] == f"{second.id}${second.created_date.isoformat()}"
    rest = app_client.get(f"/api/v1/users/{dora.id}/messages/cursor", params={"after": page["next"]}).json()
    assert [m["id"] for m in rest["items"]] == [str(third.id)] and rest["next"] is None

    by_frontend = app_client.get("/api/v1/frontend_users/local/dora/messages", params={"desc": False}).json()
    assert [m["text"] for m in by_frontend] == ["first", "second", "third"]
    cursor = app_client.get("/api/v1/frontend_users/local/dora/messages/cursor", params={"desc": True}).json()
    assert [m["text"] for m in cursor["items"]] == ["third", "second", "first"] and cursor["order"] == "desc"
    assert error(app_client.get("/api/v1/frontend_users/local/nobody/messages")) == (404, 4002)
    assert error(app_client.get("/api/v1/frontend_users/local/nobody/messages/cursor")) == (404, 4002)
    # An untrusted client does not find the trusted client's user by frontend identity.
    _client, headers = other
    assert error(app_client.get("/api/v1/frontend_users/local/dora/messages", headers=headers)) == (404, 4002)
