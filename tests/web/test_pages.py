"""Pages on both engines: local accounts, refused answers, the terms gate, profile and leaderboards."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from oasst.accounts import service as accounts
from oasst.app import create_app
from oasst.config import Settings
from oasst.db.models import ApiClient, User
from tests.factories import Factory
from tests.web.flow import (
    FULL_LOOP_TREES,
    PROMPT,
    WebUser,
    csrf,
    in_transaction,
    refresh_leaderboards,
    register,
)


def test_local_accounts_sign_in_and_out(visitor: WebUser, web_settings: Settings) -> None:
    register(web_settings, "ada", "correct horse battery")
    response = visitor.post("/signin", {"username": "ada", "password": "wrong password", "next": "/profile"})
    assert response.status_code == 401
    assert "Wrong username or password." in response.text

    response = visitor.post(
        "/signin", {"username": "Ada", "password": "correct horse battery", "next": "/profile"}
    )
    assert response.status_code == 200
    assert response.url.path == "/profile"
    assert "<h1>Ada Display</h1>" in response.text
    visitor.token = csrf(response.text)

    response = visitor.post("/signout")
    assert response.url.path == "/"
    assert visitor.client.get("/profile", follow_redirects=False).status_code == 303


def test_sign_in_never_redirects_off_the_site(visitor: WebUser, web_settings: Settings) -> None:
    register(web_settings, "ada", "correct horse battery")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        visitor.get("/signin")  # each sign-in starts a session with a new CSRF token
        response = visitor.post(
            "/signin",
            {"username": "ada", "password": "correct horse battery", "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"


def test_registration_creates_an_account_and_signs_in(visitor: WebUser) -> None:
    response = visitor.post(
        "/register",
        {
            "username": "grace",
            "password": "s3cret-enough",
            "password_again": "different",
            "display_name": "G",
        },
    )
    assert response.status_code == 400
    assert "The two passwords differ." in response.text
    response = visitor.post(
        "/register", {"username": "x", "password": "s3cret-enough", "password_again": "s3cret-enough"}
    )
    assert response.status_code == 400
    assert "A username has 3 to 32 characters" in response.text
    response = visitor.post(
        "/register",
        {
            "username": "grace",
            "password": "s3cret-enough",
            "password_again": "s3cret-enough",
            "display_name": "G",
        },
    )
    assert response.url.path == "/contribute"
    assert '<span class="who"' in response.text and ">G</span>" in response.text


def test_a_disabled_account_loses_its_session(visitor: WebUser, web_settings: Settings) -> None:
    register(web_settings, "ada", "correct horse battery")
    visitor.post("/signin", {"username": "ada", "password": "correct horse battery"})
    assert visitor.client.get("/profile").status_code == 200

    in_transaction(web_settings, lambda session: accounts.set_enabled(session, "ada", False))
    assert visitor.client.get("/profile", follow_redirects=False).status_code == 303


def test_a_refused_answer_keeps_the_text_and_says_why(visitor: WebUser) -> None:
    visitor.dev_sign_in("alice")
    path, _ = visitor.task("initial_prompt")
    visitor.answer(path, "initial_prompt", text=PROMPT)
    # The next prompt task follows; the same text again is a duplicate.
    path, _ = visitor.task("initial_prompt")
    response = visitor.answer(path, "initial_prompt", text=PROMPT)
    assert response.status_code == 400
    assert "Duplicate message text" in response.text
    assert f">{PROMPT}</textarea>" in response.text
    # The refused answer left the task open: a new text is taken.
    assert "Your answer was saved" in visitor.answer(path, "initial_prompt", text="Another prompt?").text


def test_the_terms_must_be_accepted_before_contributing(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(debug=True, debug_ignore_tos_acceptance=False, tree_manager=FULL_LOOP_TREES)
    with TestClient(create_app(settings)) as client:
        visitor = WebUser(client)
        visitor.dev_sign_in("alice")
        response = visitor.get("/contribute")
        assert response.url.path == "/tos"
        assert visitor.post("/contribute", {"kind": "random", "lang": "en"}).url.path == "/tos"
        response = visitor.post("/tos")
        assert response.url.path == "/contribute"
        assert 'data-task-type="initial_prompt"' in response.text


def test_profile_and_leaderboard_show_scores(visitor: WebUser, web_settings: Settings) -> None:
    visitor.dev_sign_in("alice")
    path, _ = visitor.task("initial_prompt")
    visitor.answer(path, "initial_prompt", text=PROMPT)
    refresh_leaderboards(web_settings)

    profile = visitor.get("/profile").text
    assert '<span class="value" data-stat="level">1</span>' in profile
    assert PROMPT in profile

    board = visitor.get("/leaderboard?frame=week").text
    assert '<tr class="me"><td>1</td><td>alice</td>' in board
    assert 'href="/leaderboard?frame=week"' in board and 'data-frame="week"' in board


def test_sessions_and_the_web_client_survive_a_restart(
    make_settings: Callable[..., Settings], factory: Factory
) -> None:
    settings = make_settings(debug=True)
    with TestClient(create_app(settings)) as client:
        WebUser(client).dev_sign_in("alice")
        cookies = dict(client.cookies)
    with TestClient(create_app(settings), cookies=cookies) as client:
        assert client.get("/profile").status_code == 200
    # One built-in API client however often the server starts; users stay with it.
    assert len(factory.rows(ApiClient, frontend_type="oasst-web")) == 1
    assert [user.username for user in factory.rows(User)] == ["dev:alice"]

    # Without debug, a development sign-in from before is over.
    with TestClient(create_app(make_settings(debug=False)), cookies=cookies) as client:
        response = client.get("/profile", follow_redirects=False)
    assert response.status_code == 303


def test_the_newest_messages_of_a_language(visitor: WebUser) -> None:
    visitor.dev_sign_in("alice")
    path, _ = visitor.task("initial_prompt")
    visitor.answer(path, "initial_prompt", text=PROMPT)
    visitor.dev_sign_in("bob")
    page = visitor.get("/messages").text
    assert page.count("data-message=") == 1 and PROMPT in page
    assert "No messages in this language yet." in visitor.get("/messages?lang=de").text
    assert visitor.client.get("/messages?lang=xx").status_code == 400
