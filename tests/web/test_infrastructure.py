"""The page infrastructure (SQLite only: no query here differs by engine): sessions, CSRF, sign-in
gates, languages, error pages and escaping."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from oasst.app import create_app
from oasst.config import Settings
from oasst.web.sessions import COOKIE
from tests.web.flow import WebUser, texts


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "oasst.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def test_the_session_cookie_is_signed_http_only_and_same_site(visitor: WebUser) -> None:
    response = visitor.get("/")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    visitor.dev_sign_in("alice")
    assert visitor.get("/profile").status_code == 200
    # A tampered cookie is no session at all: the page asks to sign in again.
    payload, signature = visitor.client.cookies[COOKIE].rsplit(".", 1)
    visitor.client.cookies.clear()
    visitor.client.cookies.set(COOKIE, f"{payload}.{signature[::-1]}")
    response = visitor.client.get("/profile", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/profile"


def test_pages_are_never_cached_nor_framed(visitor: WebUser) -> None:
    headers = visitor.get("/").headers
    assert headers["cache-control"] == "private, no-store"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    # The APIs keep their own headers.
    assert "content-security-policy" not in visitor.client.get("/health").headers


def test_the_pages_stay_out_of_a_collection_only_server(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(serve_only="collection"))) as client:
        response = client.get("/contribute")
        assert response.status_code == 404 and response.headers["content-type"] == "application/json"
        assert "set-cookie" not in response.headers


def test_the_cookie_is_secure_over_https(web_settings: Settings) -> None:
    with TestClient(create_app(web_settings), base_url="https://oasst.example") as client:
        assert "Secure" in client.get("/").headers["set-cookie"]


def test_a_post_without_the_csrf_token_is_refused(visitor: WebUser) -> None:
    response = visitor.client.post("/signin/dev", data={"name": "mallory"})
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    wrong = visitor.client.post("/signin/dev", data={"name": "mallory", "csrf_token": "forged"})
    assert wrong.status_code == 403
    # htmx sends the token as a header.
    visitor.get("/")
    response = visitor.client.post(
        "/signin/dev", data={"name": "alice"}, headers={"X-CSRF-Token": visitor.token}
    )
    assert response.status_code == 200
    assert "alice" in response.text


def test_sign_in_is_rate_limited(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(rate_limit=True, web_signin_attempts=2, web_signin_window_minutes=5)
    with TestClient(create_app(settings)) as client:
        visitor = WebUser(client)
        statuses = [
            visitor.post("/signin", {"username": "nobody", "password": "whatever1"}).status_code
            for _ in range(3)
        ]
    assert statuses == [401, 401, 429]


def test_registration_is_closed_unless_allowed(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(debug=True))) as client:
        visitor = WebUser(client)
        assert 'href="/register"' not in visitor.get("/signin").text
        assert client.get("/register").status_code == 403
        form = {"username": "grace", "password": "s3cret-enough", "password_again": "s3cret-enough"}
        assert visitor.post("/register", form).status_code == 403


def test_the_development_sign_in_needs_debug(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(debug=False, allow_debug_auth=False))) as client:
        visitor = WebUser(client)
        assert "Development sign-in" not in visitor.get("/signin").text
        response = visitor.post("/signin/dev", {"name": "alice"})
    assert response.status_code == 403


def test_the_language_follows_the_browser_then_the_choice(visitor: WebUser) -> None:
    german = visitor.client.get("/", headers={"Accept-Language": "de-CH,de;q=0.9,en;q=0.5"})
    assert '<html lang="de">' in german.text
    assert "Hilf mit, einen offenen Assistenten zu bauen" in german.text
    assert "Help build an open assistant" in visitor.get("/").text

    visitor.post("/language", {"lang": "de", "next": "/"})
    page = visitor.client.get("/", headers={"Accept-Language": "en"}).text
    assert "Mitmachen" in page and "Contribute" not in page
    assert visitor.post("/language", {"lang": "xx"}).status_code == 400


def test_task_pages_are_translated_too(visitor: WebUser) -> None:
    visitor.dev_sign_in("alice")
    visitor.post("/language", {"lang": "de"})
    _, page = visitor.task("initial_prompt", lang="de")
    assert "Einen neuen Prompt schreiben" in page and "Richtlinien" in page


def test_error_pages_are_html_and_the_apis_keep_json(visitor: WebUser) -> None:
    page = visitor.client.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no such page." in page.text
    german = visitor.client.get("/no/such/page", headers={"Accept-Language": "de"})
    assert "Diese Seite gibt es nicht." in german.text

    api = visitor.client.get("/api/v1/no/such/route")
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"

    visitor.dev_sign_in("alice")
    assert visitor.client.get("/messages/not-a-uuid").status_code == 400
    missing = visitor.client.get("/messages/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "This message does not exist or was deleted." in missing.text
    assert visitor.client.get("/tasks/00000000-0000-0000-0000-000000000000").status_code == 404
    assert visitor.post("/contribute", {"kind": "bogus", "lang": "en"}).status_code == 400
    assert visitor.post("/contribute", {"kind": "random", "lang": "xx"}).status_code == 400
    assert visitor.client.get("/leaderboard?frame=year").status_code == 400


def test_what_people_write_is_escaped_everywhere(visitor: WebUser) -> None:
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    visitor.dev_sign_in(attack)
    path, _ = visitor.task("initial_prompt")
    response = visitor.answer(path, "initial_prompt", text=attack)
    assert "Your answer was saved" in response.text
    for page in (visitor.get("/profile").text, response.text):
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    profile = visitor.get("/profile").text
    tree_link = profile.split('href="/messages/', 1)[1].split('"', 1)[0]
    tree = visitor.get(f"/messages/{tree_link}").text
    assert "<script>alert" not in tree
    assert texts(tree) == [attack]


def test_pages_that_need_a_person_ask_to_sign_in(visitor: WebUser) -> None:
    for path in ("/contribute", "/profile", "/leaderboard", "/tasks/00000000-0000-0000-0000-000000000000"):
        response = visitor.client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin?next=/")
    htmx = visitor.client.get("/profile", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.headers["HX-Redirect"] == "/signin?next=/profile"


@pytest.mark.parametrize("kind", ["rank_assistant_replies", "label_prompter_reply"])
def test_a_type_without_tasks_says_so(visitor: WebUser, kind: str) -> None:
    visitor.dev_sign_in("alice")
    response = visitor.post("/contribute", {"kind": kind, "lang": "en"})
    assert response.url.path == "/contribute"
    assert "There is no task of this type right now" in response.text
    assert f'data-task-type="{kind}"' in response.text
