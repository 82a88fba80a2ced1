"""The account pages on both engines: a new display name everywhere at once, the password behind the current
one, and deleting an account as the core deletes users."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.accounts import repository as accounts_repository
from oasst.config import Settings
from oasst.db.models import Message, User
from tests.web.flow import PROMPT, WebUser, in_transaction, refresh_leaderboards, register

PASSWORD = "correct horse battery"
HEADER_NAME = '<span class="who" title="user">{}</span>'


def _contribute_a_prompt(person: WebUser) -> None:
    path, _ = person.task("initial_prompt")
    assert "Your answer was saved" in person.answer(path, "initial_prompt", text=PROMPT).text


def test_a_new_display_name_shows_in_the_header_and_on_the_leaderboard(
    visitor: WebUser, web_settings: Settings
) -> None:
    register(web_settings, "ada", PASSWORD)
    visitor.sign_in("ada", PASSWORD)
    _contribute_a_prompt(visitor)
    refresh_leaderboards(web_settings)
    page = visitor.get("/account").text
    assert "You sign in as ada." in page and 'value="Ada Display"' in page

    renamed = visitor.post("/account/name", {"display_name": "  Ada Lovelace "})
    assert renamed.url.path == "/account"
    assert "Your display name was changed." in renamed.text
    assert HEADER_NAME.format("Ada Lovelace") in renamed.text
    assert HEADER_NAME.format("Ada Lovelace") in visitor.get("/profile").text

    # Another person's leaderboard shows the new name: ada's own pages did not have to be seen first.
    visitor.dev_sign_in("bob")
    board = visitor.get("/leaderboard?frame=week").text
    assert "<td>1</td><td>Ada Lovelace</td>" in board and "Ada Display" not in board


def test_a_display_name_is_checked(visitor: WebUser, web_settings: Settings) -> None:
    register(web_settings, "ada", PASSWORD)
    visitor.sign_in("ada", PASSWORD)
    for refused in ("   ", "Ada\u202eecalevol", "Ada\nLovelace"):
        response = visitor.post("/account/name", {"display_name": refused})
        assert response.status_code == 422, refused
        assert "A display name must not be empty or too long" in response.text
        assert HEADER_NAME.format("Ada Display") in response.text  # nothing changed
    assert visitor.post("/account/name", {"display_name": "x" * 257}).status_code == 400
    assert visitor.client.post("/account/name", data={"display_name": "Eve"}).status_code == 403  # no token

    visitor.dev_sign_in("dev")  # a development sign-in has no account to rename
    response = visitor.post("/account/name", {"display_name": "Someone"})
    assert response.status_code == 400
    assert "Only an account with a password on this site has this setting." in response.text


def test_the_password_changes_only_with_the_current_one(visitor: WebUser, web_settings: Settings) -> None:
    register(web_settings, "ada", PASSWORD)
    visitor.sign_in("ada", PASSWORD)
    new = "a much better passphrase"

    def change(current: str, password: str, again: str) -> str:
        fields = {"current_password": current, "new_password": password, "new_password_again": again}
        response = visitor.post("/account/password", fields)
        return f"{response.status_code} {response.text}"

    assert change("wrong password", new, new).startswith("403 ")
    assert "Your current password is wrong." in change("wrong password", new, new)
    assert "The two passwords differ." in change(PASSWORD, new, new + "!")
    assert "The password must have at least 8 characters" in change(PASSWORD, "short", "short")
    visitor.sign_in("ada", PASSWORD)  # every refusal left the password as it was

    assert "Your password was changed." in change(PASSWORD, new, new)
    refused = visitor.post("/signin", {"username": "ada", "password": PASSWORD})
    assert refused.status_code == 401
    visitor.sign_in("ada", new)


def test_a_deleted_account_can_no_longer_sign_in(visitor: WebUser, web_settings: Settings) -> None:
    register(web_settings, "ada", PASSWORD)
    visitor.sign_in("ada", PASSWORD)
    _contribute_a_prompt(visitor)
    cookies = dict(visitor.client.cookies)
    assert "cannot be undone" in visitor.get("/account/delete").text

    unconfirmed = visitor.post("/account/delete", {"password": PASSWORD})
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.text
    wrong = visitor.post("/account/delete", {"password": "not my password", "confirm": "true"})
    assert wrong.status_code == 403 and "Your current password is wrong." in wrong.text
    assert visitor.get("/profile").status_code == 200  # still there

    gone = visitor.post("/account/delete", {"password": PASSWORD, "confirm": "true"})
    assert gone.url.path == "/account/deleted"
    assert "Your account was deleted and you are signed out." in gone.text
    assert '<span class="who"' not in gone.text
    visitor.get("/signin")  # the signed-out session's new form token
    refused = visitor.post("/signin", {"username": "ada", "password": PASSWORD})
    assert refused.status_code == 401 and "Wrong username or password." in refused.text

    # A session from before the deletion (another browser) is over as well.
    visitor.client.cookies.clear()
    visitor.client.cookies.update(cookies)
    assert visitor.client.get("/profile", follow_redirects=False).status_code == 303

    async def rows(session: AsyncSession) -> tuple[object, list[tuple[str, bool, bool]], int]:
        account = await accounts_repository.by_username(session, "ada")
        users = await session.execute(select(User.display_name, User.deleted, User.show_on_leaderboard))
        messages = len((await session.scalars(select(Message))).all())
        return account, [tuple(row) for row in users.all()], messages

    account, users, messages = in_transaction(web_settings, rows)
    assert account is None  # the credentials are gone
    assert users == [("Deleted User", True, False)]  # the contributor is anonymised ...
    assert messages == 1  # ... and the contributions stay
