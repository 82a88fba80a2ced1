"""The moderators' and admins' pages beyond flags and accounts: editing, deleting and restoring messages, the
trollboard and a contributor's page, the roles of OAuth accounts, API clients, and the status of the tree
manager and the workers."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, Response

from oasst.collection.auth import service as auth_service
from oasst.collection.deps import RngDep, SessionDep
from oasst.collection.messages import service as messages_service
from oasst.collection.messages.schemas import MessageText
from oasst.collection.stats import service as stats_service
from oasst.collection.stats.schemas import TrollboardParams, UserStatsTimeFrame
from oasst.collection.users import service as users_service
from oasst.errors import OasstError
from oasst.inference.deps import InferenceRuntime
from oasst.web import admin_service, service
from oasst.web.deps import AdminDep, ModeratorDep, PageDep
from oasst.web.errors import core_text
from oasst.web.i18n import TASK_LANGS
from oasst.web.oauth import PROVIDERS

Enabled = Annotated[bool, Form()]
ClientText = Annotated[str, Form(max_length=256)]


def add_routes(router: APIRouter) -> None:
    """Add the pages to the web UI's router (whose dependencies check the CSRF token)."""
    router.add_api_route("/messages/{message_id}/edit", edit_page, methods=["GET"])
    router.add_api_route("/messages/{message_id}/edit", edit_message, methods=["POST"])
    router.add_api_route("/messages/{message_id}/delete", delete_message, methods=["POST"])
    router.add_api_route("/messages/{message_id}/undelete", undelete_message, methods=["POST"])
    router.add_api_route("/moderation/trollboard", trollboard, methods=["GET"])
    router.add_api_route("/moderation/users/{user_id}", user_page, methods=["GET"])
    router.add_api_route("/moderation/users/{user_id}", set_user_enabled, methods=["POST"])
    router.add_api_route("/admin/people", people, methods=["GET"])
    router.add_api_route("/admin/people/{account_id}", set_person_role, methods=["POST"])
    router.add_api_route("/admin/api_clients", api_clients, methods=["GET"])
    router.add_api_route("/admin/api_clients", create_api_client, methods=["POST"])
    router.add_api_route("/admin/api_clients/{client_id}", set_api_client_enabled, methods=["POST"])
    router.add_api_route("/admin/status", status, methods=["GET"])


def _in_tree(message_id: uuid.UUID) -> str:
    return f"/messages/{message_id}#m-{message_id}"


# --- messages ----------------------------------------------------------------------------------------------


def _render_edit(
    page: PageDep, edit: admin_service.MessageEdit, text: str, *, status: int = 200, error: str | None = None
) -> HTMLResponse:
    return page.render("message_edit.html", status=status, edit=edit, text=text, error=error)


async def edit_page(
    page: PageDep, session: SessionDep, moderator: ModeratorDep, message_id: uuid.UUID
) -> HTMLResponse:
    """The message's text to change, and its earlier versions."""
    edit = await admin_service.message_edit(session, message_id)
    return _render_edit(page, edit, edit.message.text)


async def edit_message(
    page: PageDep,
    session: SessionDep,
    moderator: ModeratorDep,
    message_id: uuid.UUID,
    text: Annotated[MessageText, Form()],
) -> Response:
    try:
        await admin_service.edit(session, page.client, page.settings, moderator, message_id, text)
    except OasstError as failure:
        if failure.status >= 500:
            raise
        edit = await admin_service.message_edit(session, message_id)
        return _render_edit(page, edit, text, status=400, error=page.gettext(core_text(failure)))
    return page.redirect(_in_tree(message_id))


async def delete_message(
    page: PageDep, session: SessionDep, rng: RngDep, moderator: ModeratorDep, message_id: uuid.UUID
) -> Response:
    """Delete the message and every reply below it (moderators still see them, marked)."""
    await messages_service.delete(session, page.settings, rng, message_id)
    return page.redirect(_in_tree(message_id))


async def undelete_message(
    page: PageDep, session: SessionDep, rng: RngDep, moderator: ModeratorDep, message_id: uuid.UUID
) -> Response:
    """Restore the message and the messages above it (the replies below stay as they are)."""
    await messages_service.undelete(session, page.settings, rng, message_id)
    return page.redirect(_in_tree(message_id))


# --- contributors ------------------------------------------------------------------------------------------


async def trollboard(
    page: PageDep,
    session: SessionDep,
    moderator: ModeratorDep,
    frame: UserStatsTimeFrame = UserStatsTimeFrame.day,
    banned: bool = False,
) -> HTMLResponse:
    """Contributors by troll score, worst first: the active ones, or those already banned."""
    board = await stats_service.trollboard(session, TrollboardParams(frame, 100, enabled=not banned))
    return page.render(
        "trollboard.html", board=board, frame=frame.value, frames=list(UserStatsTimeFrame), banned=banned
    )


async def user_page(
    page: PageDep, session: SessionDep, moderator: ModeratorDep, user_id: uuid.UUID
) -> HTMLResponse:
    view = await admin_service.user_view(session, page.settings, page.client, user_id)
    return page.render("moderation_user.html", view=view)


async def set_user_enabled(
    page: PageDep, session: SessionDep, moderator: ModeratorDep, user_id: uuid.UUID, enabled: Enabled
) -> Response:
    """Ban a contributor (no more tasks, reactions or answers) or lift the ban."""
    await users_service.update(session, user_id, enabled=enabled)
    return page.redirect(f"/moderation/users/{user_id}")


# --- administration ----------------------------------------------------------------------------------------


async def people(
    page: PageDep, session: SessionDep, admin: AdminDep, q: Annotated[str, Query(max_length=128)] = ""
) -> HTMLResponse:
    """The people who sign in with Discord, GitHub or Google, and their roles here."""
    found = await admin_service.oauth_people(session, page.settings, q)
    titles = {name: provider.title for name, provider in PROVIDERS.items()}
    return page.render(
        "admin_people.html", people=found, q=q, titles=titles, shown=admin_service.OAUTH_ACCOUNTS_SHOWN
    )


async def set_person_role(
    page: PageDep,
    session: SessionDep,
    admin: AdminDep,
    account_id: uuid.UUID,
    role: Annotated[str, Form(max_length=16)],
    q: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Make a person who signs in through OAuth a volunteer, a moderator or an admin (admins only)."""
    await admin_service.set_oauth_role(session, page.settings, admin, account_id, role)
    return page.redirect(f"/admin/people?{urlencode({'q': q})}" if q else "/admin/people")


async def api_clients(page: PageDep, session: SessionDep, admin: AdminDep) -> HTMLResponse:
    clients = await auth_service.list_clients(session)
    return page.render("admin_api_clients.html", clients=clients, web_client_id=page.client.id)


async def create_api_client(
    page: PageDep,
    session: SessionDep,
    admin: AdminDep,
    description: Annotated[str, Form(min_length=1, max_length=256)],
    frontend_type: ClientText = "",
    admin_email: ClientText = "",
    trusted: Enabled = False,
) -> HTMLResponse:
    """A new client of /api/v1; its key is on this answer only."""
    new = await admin_service.create_client(session, description, frontend_type, admin_email, trusted=trusted)
    return page.render("admin_api_client_key.html", client=new.client, api_key=new.api_key)


async def set_api_client_enabled(
    page: PageDep, session: SessionDep, admin: AdminDep, client_id: uuid.UUID, enabled: Enabled
) -> Response:
    await admin_service.set_client_enabled(session, page.client, client_id, enabled)
    return page.redirect("/admin/api_clients")


async def status(
    page: PageDep,
    session: SessionDep,
    rng: RngDep,
    admin: AdminDep,
    lang: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    """Trees by state and language, tasks on offer, and the chat's workers and queues."""
    task_lang = lang or page.lang
    if task_lang not in TASK_LANGS:
        raise service.bad_input(f"Unknown language {task_lang!r}")
    runtime: InferenceRuntime = page.request.app.state.inference
    view = await admin_service.status(
        session, page.client, page.settings, rng, admin, task_lang, runtime.workers
    )
    return page.render("admin_status.html", view=view, kinds=service.REQUESTABLE)
