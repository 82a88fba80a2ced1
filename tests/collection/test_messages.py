"""Message reads: one message, listings, cursor pages, threads and trees, by backend and by frontend id."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from oasst.db.models import ApiClient, Message, User
from tests.collection.frontend import error
from tests.factories import Factory


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


# --- one message ---------------------------------------------------------------------------------------


def test_get_message_has_the_upstream_shape(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root = factory.message(admin, author, text="Hello there", lang="de")
    response = app_client.get(f"/api/v1/messages/{root.id}")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "id", "user_id", "frontend_message_id", "text", "lang", "is_assistant", "emojis", "user_emojis",
        "user_is_author", "synthetic", "parent_id", "created_date", "review_result", "review_count",
        "deleted", "edited", "model_name", "message_tree_id", "ranking_count", "rank", "user",
    ]  # fmt: skip
    assert body["id"] == str(root.id)
    assert body["text"] == "Hello there"
    assert body["lang"] == "de"
    assert body["is_assistant"] is False
    assert body["emojis"] == {}
    assert body["user_emojis"] == []
    assert body["user_is_author"] is None
    assert body["message_tree_id"] == str(root.id)
    assert body["user"] is None
    assert datetime.fromisoformat(body["created_date"]) == root.created_date


def test_missing_message_is_404_2001_and_a_bad_uuid_is_422(app_client: TestClient, factory: Factory) -> None:
    assert error(app_client.get(f"/api/v1/messages/{uuid.uuid4()}")) == (404, 2001)
    assert app_client.get("/api/v1/messages/not-a-uuid").status_code == 422
    assert error(app_client.get(f"/api/v1/messages/{uuid.uuid4()}/tree")) == (404, 2001)


def test_current_user_header_fills_user_is_author_and_unknown_users_are_404(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    factory.user(admin, "bob")
    root = factory.message(admin, author)
    url = f"/api/v1/messages/{root.id}"
    assert app_client.get(url, headers={"x-oasst-user": "local:alice"}).json()["user_is_author"] is True
    assert app_client.get(url, headers={"x-oasst-user": "local:bob"}).json()["user_is_author"] is False
    assert app_client.get(url, params={"oasst_user": "local:alice"}).json()["user_is_author"] is True
    assert error(app_client.get(url, headers={"x-oasst-user": "local:nobody"})) == (404, 4002)


def test_any_client_reads_a_message_by_uuid(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root = factory.message(admin, author)
    _, key = factory.api_client()
    response = app_client.get(f"/api/v1/messages/{root.id}", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert app_client.get(f"/api/v1/messages/{root.id}", headers={"X-API-Key": "wrong"}).status_code == 403


# --- GET /messages/ ------------------------------------------------------------------------------------


def test_listing_is_newest_first_and_filters(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root = factory.message(admin, author, lang="en")
    reply = factory.message(admin, author, root)
    german = factory.message(admin, factory.user(admin, "bob"), lang="de")
    gone = factory.message(admin, author, deleted=True)

    listed = app_client.get("/api/v1/messages/").json()
    assert ids(listed) == [str(german.id), str(reply.id), str(root.id)]
    assert ids(app_client.get("/api/v1/messages/", params={"desc": False}).json()) == [
        str(root.id), str(reply.id), str(german.id)
    ]  # fmt: skip
    assert ids(app_client.get("/api/v1/messages/", params={"max_count": 1}).json()) == [str(german.id)]
    assert ids(app_client.get("/api/v1/messages/", params={"only_roots": True}).json()) == [
        str(german.id), str(root.id)
    ]  # fmt: skip
    assert ids(app_client.get("/api/v1/messages/", params={"lang": "de"}).json()) == [str(german.id)]
    assert str(gone.id) in ids(app_client.get("/api/v1/messages/", params={"allow_deleted": True}).json())
    by_author = app_client.get("/api/v1/messages/", params={"auth_method": "local", "username": "bob"})
    assert ids(by_author.json()) == [str(german.id)]
    window = {"start_date": reply.created_date.isoformat(), "end_date": german.created_date.isoformat()}
    assert ids(app_client.get("/api/v1/messages/", params=window).json()) == [str(german.id), str(reply.id)]


def test_listing_needs_both_auth_method_and_username(app_client: TestClient, factory: Factory) -> None:
    assert error(app_client.get("/api/v1/messages/", params={"auth_method": "local"})) == (400, 2012)
    assert error(app_client.get("/api/v1/messages/cursor", params={"username": "x"})) == (400, 2012)


def test_untrusted_clients_list_only_their_own_messages(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    factory.message(admin, author)
    client, key = factory.api_client()
    own = factory.message(client, factory.user(client, "carol"))
    headers = {"X-API-Key": key}
    assert ids(app_client.get("/api/v1/messages/", headers=headers).json()) == [str(own.id)]
    # Passing its own id works (upstream compared a string with a UUID and always answered 403).
    mine = app_client.get("/api/v1/messages/", params={"api_client_id": str(client.id)}, headers=headers)
    assert ids(mine.json()) == [str(own.id)]
    other = {"api_client_id": str(admin.id)}
    assert error(app_client.get("/api/v1/messages/", params=other, headers=headers)) == (403, 2)
    assert error(app_client.get("/api/v1/messages/cursor", params=other, headers=headers)) == (403, 2)
    page = app_client.get("/api/v1/messages/cursor", headers=headers).json()
    assert ids(page["items"]) == [str(own.id)]
    # The trusted client sees both clients, or one of them on request.
    assert len(app_client.get("/api/v1/messages/").json()) == 2
    assert ids(app_client.get("/api/v1/messages/", params={"api_client_id": str(client.id)}).json()) == [
        str(own.id)
    ]


# --- GET /messages/cursor ------------------------------------------------------------------------------


def cursor(message: Message) -> str:
    return f"{message.id}${message.created_date.isoformat()}"


def test_cursor_pages_forward_and_back(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    m = [factory.message(admin, author) for _ in range(5)]
    url = "/api/v1/messages/cursor"

    first = app_client.get(url, params={"max_count": 2}).json()
    assert first["sort_key"] == "created_date"
    assert first["order"] == "asc"
    assert ids(first["items"]) == [str(m[0].id), str(m[1].id)]
    assert first["prev"] is None
    assert first["next"] == cursor(m[1])

    second = app_client.get(url, params={"max_count": 2, "after": first["next"]}).json()
    assert ids(second["items"]) == [str(m[2].id), str(m[3].id)]
    assert (second["prev"], second["next"]) == (cursor(m[2]), cursor(m[3]))

    last = app_client.get(url, params={"max_count": 2, "after": second["next"]}).json()
    assert ids(last["items"]) == [str(m[4].id)]
    assert (last["prev"], last["next"]) == (cursor(m[4]), None)

    back = app_client.get(url, params={"max_count": 2, "before": last["prev"]}).json()
    assert ids(back["items"]) == [str(m[2].id), str(m[3].id)]
    assert (back["prev"], back["next"]) == (cursor(m[2]), cursor(m[3]))

    start = app_client.get(url, params={"max_count": 2, "before": back["prev"]}).json()
    assert ids(start["items"]) == [str(m[0].id), str(m[1].id)]
    assert (start["prev"], start["next"]) == (None, cursor(m[1]))

    between = app_client.get(
        url, params={"max_count": 5, "after": cursor(m[0]), "before": cursor(m[4])}
    ).json()
    assert ids(between["items"]) == [str(x.id) for x in m[1:4]]
    assert (between["prev"], between["next"]) == (cursor(m[1]), cursor(m[3]))


def test_cursor_pages_newest_first(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    m = [factory.message(admin, author) for _ in range(5)]
    url = "/api/v1/messages/cursor"
    first = app_client.get(url, params={"max_count": 2, "desc": True}).json()
    assert first["order"] == "desc"
    assert ids(first["items"]) == [str(m[4].id), str(m[3].id)]
    assert (first["prev"], first["next"]) == (None, cursor(m[3]))

    # In a newest-first listing `after` moves on to older messages.
    second = app_client.get(url, params={"max_count": 2, "desc": True, "after": first["next"]}).json()
    assert ids(second["items"]) == [str(m[2].id), str(m[1].id)]
    assert (second["prev"], second["next"]) == (cursor(m[2]), cursor(m[1]))

    back = app_client.get(url, params={"max_count": 2, "desc": True, "before": second["prev"]}).json()
    assert ids(back["items"]) == [str(m[4].id), str(m[3].id)]
    assert (back["prev"], back["next"]) == (None, cursor(m[3]))


def test_cursor_breaks_date_ties_by_id(app_client: TestClient, factory: Factory, admin: ApiClient) -> None:
    same = factory.next_date()
    made = sorted((factory.message(admin, created_date=same) for _ in range(3)), key=lambda x: str(x.id))
    seen: list[str] = []
    params: dict[str, Any] = {"max_count": 1}
    while True:
        page = app_client.get("/api/v1/messages/cursor", params=params).json()
        seen += ids(page["items"])
        if page["next"] is None:
            break
        params["after"] = page["next"]
    assert seen == [str(x.id) for x in made]


def test_empty_page_echoes_the_cursor_date(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    last = factory.message(admin, author)
    page = app_client.get("/api/v1/messages/cursor", params={"after": cursor(last)}).json()
    assert page["items"] == []
    assert page["prev"] == last.created_date.isoformat()
    assert page["next"] is None
    date_only = (last.created_date - timedelta(hours=1)).isoformat()
    earlier = app_client.get("/api/v1/messages/cursor", params={"before": date_only}).json()
    assert (earlier["items"], earlier["prev"], earlier["next"]) == ([], None, date_only)


def test_bad_cursor_is_400_101(app_client: TestClient, factory: Factory) -> None:
    for bad in ("yesterday", "not-a-uuid$2026-01-01T00:00:00+00:00", f"{uuid.uuid4()}$soon"):
        assert error(app_client.get("/api/v1/messages/cursor", params={"before": bad})) == (400, 101)


def test_cursor_search_is_case_insensitive_with_or_without_lang(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    cats = factory.message(admin, author, text="I like Cats a lot", lang="en")
    katzen = factory.message(admin, author, text="Katzen und CATS", lang="de")
    factory.message(admin, author, text="dogs only 100%", lang="en")
    url = "/api/v1/messages/cursor"
    assert ids(app_client.get(url, params={"search_query": "cats"}).json()["items"]) == [
        str(cats.id), str(katzen.id)
    ]  # fmt: skip
    assert ids(app_client.get(url, params={"search_query": "CATS", "lang": "de"}).json()["items"]) == [
        str(katzen.id)
    ]
    # LIKE wildcards in the query are plain characters.
    assert app_client.get(url, params={"search_query": "%"}).json()["items"][0]["text"] == "dogs only 100%"
    assert app_client.get(url, params={"search_query": "c_ts"}).json()["items"] == []


def test_cursor_filters_and_include_user(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    bob = factory.user(admin, "bob", display_name="Bob B")
    mine = factory.message(admin, author)
    his = factory.message(admin, bob, mine)
    factory.message(admin, bob, deleted=True)
    url = "/api/v1/messages/cursor"
    assert ids(app_client.get(url, params={"user_id": str(bob.id)}).json()["items"]) == [str(his.id)]
    assert (
        len(app_client.get(url, params={"user_id": str(bob.id), "include_deleted": True}).json()["items"])
        == 2
    )
    assert ids(app_client.get(url, params={"only_roots": True}).json()["items"]) == [str(mine.id)]
    items = app_client.get(
        url, params={"include_user": True, "auth_method": "local", "username": "bob"}
    ).json()
    assert ids(items["items"]) == [str(his.id)]
    user = items["items"][0]["user"]
    assert (user["id"], user["display_name"], user["user_id"]) == ("bob", "Bob B", str(bob.id))
    assert app_client.get(url).json()["items"][0]["user"] is None


# --- threads and trees ---------------------------------------------------------------------------------


def test_conversation_runs_from_the_root_through_accepted_ancestors(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root, reply, answer = factory.chain(admin, author, 3)
    pending = factory.message(admin, author, answer, review_result=None)
    body = app_client.get(f"/api/v1/messages/{pending.id}/conversation").json()
    assert ids(body["messages"]) == [str(root.id), str(reply.id), str(answer.id), str(pending.id)]
    assert [m["is_assistant"] for m in body["messages"]] == [False, True, False, True]
    assert set(body["messages"][0]) == {
        "id", "user_id", "frontend_message_id", "text", "lang", "is_assistant", "emojis", "user_emojis",
        "user_is_author", "synthetic",
    }  # fmt: skip


def test_conversation_through_a_rejected_ancestor_is_a_clear_2009(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root = factory.message(admin, author)
    rejected = factory.message(admin, author, root, review_result=False)
    child = factory.message(admin, author, rejected)
    assert error(app_client.get(f"/api/v1/messages/{child.id}/conversation")) == (409, 2009)


def test_tree_filters_spam_and_deleted(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root = factory.message(admin, author)
    good = factory.message(admin, author, root)
    spam = factory.message(admin, author, root, review_result=False)
    pending = factory.message(admin, author, root, review_result=None)
    gone = factory.message(admin, author, good, deleted=True)
    url = f"/api/v1/messages/{good.id}/tree"
    tree = app_client.get(url).json()
    assert tree["id"] == str(root.id)
    assert ids(tree["messages"]) == [str(root.id), str(good.id), str(spam.id), str(pending.id)]
    assert ids(app_client.get(url, params={"include_spam": False}).json()["messages"]) == [
        str(root.id), str(good.id)
    ]  # fmt: skip
    assert str(gone.id) in ids(app_client.get(url, params={"include_deleted": True}).json()["messages"])


def test_tree_state(app_client: TestClient, factory: Factory, admin: ApiClient, author: User) -> None:
    root = factory.message(admin, author)
    reply = factory.message(admin, author, root)
    state = app_client.get(f"/api/v1/messages/{reply.id}/tree/state").json()
    assert state == {
        "message_tree_id": str(root.id),
        "state": "growing",
        "goal_tree_size": 12,
        "max_depth": 3,
        "max_children_count": 3,
        "active": True,
        "origin": None,
    }


def test_children_and_descendants(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root = factory.message(admin, author)
    a = factory.message(admin, author, root, review_result=None)
    b = factory.message(admin, author, root)
    gone = factory.message(admin, author, root, deleted=True)
    a1 = factory.message(admin, author, a)
    b1 = factory.message(admin, author, b)
    a2 = factory.message(admin, author, a1)
    children = app_client.get(f"/api/v1/messages/{root.id}/children").json()
    assert ids(children) == [str(a.id), str(b.id)]
    below = app_client.get(f"/api/v1/messages/{root.id}/descendants").json()
    assert below["id"] == str(root.id)
    assert ids(below["messages"]) == [str(x.id) for x in (a, a1, a2, b, b1, gone)]
    assert ids(app_client.get(f"/api/v1/messages/{a.id}/descendants").json()["messages"]) == [
        str(a1.id), str(a2.id)
    ]  # fmt: skip


def test_longest_conversation_and_max_children(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root = factory.message(admin, author)
    a = factory.message(admin, author, root)
    b = factory.message(admin, author, root)
    b1 = factory.message(admin, author, b)
    b2 = factory.message(admin, author, b)
    factory.message(admin, author, b, review_result=None)
    deep = factory.message(admin, author, b1)
    factory.message(admin, author, deep, review_result=False)
    longest = app_client.get(f"/api/v1/messages/{a.id}/longest_conversation_in_tree").json()
    assert ids(longest["messages"]) == [str(root.id), str(b.id), str(b1.id), str(deep.id)]
    most = app_client.get(f"/api/v1/messages/{a.id}/max_children_in_tree").json()
    assert most["id"] == str(b.id)
    assert ids(most["messages"]) == [str(b.id), str(b1.id), str(b2.id)]


def test_tree_without_accepted_messages_has_empty_answers(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root = factory.message(admin, author, review_result=None)
    assert app_client.get(f"/api/v1/messages/{root.id}/longest_conversation_in_tree").json() == {
        "messages": []
    }
    assert app_client.get(f"/api/v1/messages/{root.id}/max_children_in_tree").json() == {
        "id": str(root.id),
        "messages": [],
    }


# --- /frontend_messages --------------------------------------------------------------------------------


def test_frontend_messages_are_looked_up_per_client(
    app_client: TestClient, factory: Factory, admin: ApiClient, author: User
) -> None:
    root = factory.message(admin, author, frontend_message_id="shared-id")
    reply = factory.message(admin, author, root, frontend_message_id="reply-id")
    client, key = factory.api_client()
    theirs = factory.message(client, factory.user(client), frontend_message_id="shared-id")

    mine = app_client.get("/api/v1/frontend_messages/shared-id", headers={"x-oasst-user": "local:alice"})
    assert mine.status_code == 200
    assert mine.json()["id"] == str(root.id)
    assert mine.json()["user_is_author"] is None
    other = app_client.get("/api/v1/frontend_messages/shared-id", headers={"X-API-Key": key})
    assert other.json()["id"] == str(theirs.id)
    assert error(app_client.get("/api/v1/frontend_messages/reply-id", headers={"X-API-Key": key})) == (
        404,
        2001,
    )

    base = "/api/v1/frontend_messages"
    assert ids(app_client.get(f"{base}/reply-id/conversation").json()["messages"]) == [
        str(root.id),
        str(reply.id),
    ]
    assert app_client.get(f"{base}/reply-id/tree").json()["id"] == str(root.id)
    assert ids(app_client.get(f"{base}/shared-id/children").json()) == [str(reply.id)]
    assert ids(app_client.get(f"{base}/shared-id/descendants").json()["messages"]) == [str(reply.id)]
    assert len(app_client.get(f"{base}/reply-id/longest_conversation_in_tree").json()["messages"]) == 2
    assert app_client.get(f"{base}/reply-id/max_children_in_tree").json()["id"] == str(root.id)
