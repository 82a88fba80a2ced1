"""The account pages (upstream's /account, /account/edit and /account/delete): display name, password, the
course budget that pays for the person's chat replies, and deleting the account."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, Response

from oasst.accounts.service import MAX_DISPLAY_NAME
from oasst.collection.deps import SessionDep
from oasst.errors import OasstError
from oasst.protocol.collection import ErrorCode
from oasst.web import account_service
from oasst.web.deps import PageDep, SignedInDep, sign_in_rate_limited
from oasst.web.errors import core_text

Secret = Annotated[str, Form(max_length=256)]
Section = Literal["name", "password", "course"]
Saved = Literal["name", "password", "joined", "left"]


def add_routes(router: APIRouter) -> None:
    """Add the pages to the web UI's router (whose dependencies check the CSRF token)."""
    router.add_api_route("/account", account, methods=["GET"])
    router.add_api_route("/account/name", rename, methods=["POST"])
    router.add_api_route("/account/password", change_password, methods=["POST"])
    router.add_api_route("/account/course", join_course, methods=["POST"])
    router.add_api_route("/account/course/leave", leave_course, methods=["POST"])
    router.add_api_route("/account/delete", delete_page, methods=["GET"])
    router.add_api_route("/account/delete", delete, methods=["POST"])
    router.add_api_route("/account/deleted", deleted, methods=["GET"])


async def _render(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    *,
    status: int = 200,
    saved: Saved | None = None,
    section: Section | None = None,
    error: str | None = None,
) -> HTMLResponse:
    view = await account_service.account_view(session, page.settings, user)
    return page.render(
        "account.html",
        status=status,
        view=view,
        saved=saved,
        section=section,
        error=error,
        max_display_name=MAX_DISPLAY_NAME,
    )


async def _refused(
    page: PageDep, session: SessionDep, user: SignedInDep, section: Section, failure: OasstError
) -> HTMLResponse:
    """The account page again, saying in `section` why the change was refused (nothing was changed)."""
    if failure.status >= 500:
        raise failure
    error = page.gettext(core_text(failure))
    return await _render(page, session, user, status=failure.status, section=section, error=error)


async def _too_many_attempts(page: PageDep) -> None:
    """Password checks count as sign-in attempts: a session in other hands cannot guess the password."""
    if await sign_in_rate_limited(page.request):
        raise OasstError(
            "Too many sign-in attempts. Please wait a few minutes.", ErrorCode.TOO_MANY_REQUESTS, 429
        )


async def account(
    page: PageDep, session: SessionDep, user: SignedInDep, saved: Annotated[Saved | None, Query()] = None
) -> HTMLResponse:
    return await _render(page, session, user, saved=saved)


async def rename(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    display_name: Annotated[str, Form(max_length=MAX_DISPLAY_NAME)],
) -> Response:
    try:
        async with session.begin_nested():
            await account_service.rename(session, page.client, user, display_name)
    except OasstError as failure:
        return await _refused(page, session, user, "name", failure)
    return page.redirect("/account?saved=name")


async def change_password(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    current_password: Secret,
    new_password: Secret,
    new_password_again: Secret,
) -> Response:
    await _too_many_attempts(page)
    try:
        async with session.begin_nested():
            await account_service.change_password(
                session, user, current_password, new_password, new_password_again
            )
    except OasstError as failure:
        return await _refused(page, session, user, "password", failure)
    return page.redirect("/account?saved=password")


async def join_course(
    page: PageDep, session: SessionDep, user: SignedInDep, key: Annotated[str, Form(max_length=256)]
) -> Response:
    try:
        async with session.begin_nested():
            await account_service.join_course(session, page.settings, user, key)
    except OasstError as failure:
        return await _refused(page, session, user, "course", failure)
    return page.redirect("/account?saved=joined")


async def leave_course(page: PageDep, session: SessionDep, user: SignedInDep) -> Response:
    await account_service.leave_course(session, user)
    return page.redirect("/account?saved=left")


async def delete_page(page: PageDep, user: SignedInDep) -> HTMLResponse:
    """What deleting means, and the form that confirms it."""
    return page.render("account_delete.html", error=None)


async def delete(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    confirm: Annotated[bool, Form()] = False,
    password: Secret = "",
) -> Response:
    """Delete the account, then end the session (every other session of a local account ends with it)."""
    if not confirm:
        error = page.gettext("Tick the box to confirm that the account is to be deleted.")
        return page.render("account_delete.html", status=400, error=error)
    await _too_many_attempts(page)
    try:
        async with session.begin_nested():
            await account_service.delete(session, page.client, user, password)
    except OasstError as failure:
        if failure.status >= 500:
            raise
        error = page.gettext(core_text(failure))
        return page.render("account_delete.html", status=failure.status, error=error)
    page.session.sign_out()
    return page.redirect("/account/deleted")


async def deleted(page: PageDep) -> HTMLResponse:
    return page.render("account_deleted.html")
