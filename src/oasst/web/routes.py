"""The pages: sign-in, language, terms, the task loop, the tree viewer, profile, leaderboards, chat and
administration (accounts, gateway accounts)."""

from __future__ import annotations

import random
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from oasst.collection.admin import service as admin_service
from oasst.collection.deps import RngDep, SessionDep
from oasst.collection.messages import service as messages_service
from oasst.collection.stats.schemas import UserStatsTimeFrame
from oasst.errors import OasstError
from oasst.gateway import service as gateway_service
from oasst.gateway.schemas import MAX_BUDGET, AccountCreate, AccountUpdate
from oasst.inference import service as inference_service
from oasst.inference.deps import InferenceRuntime
from oasst.inference.service import QueuedMessage
from oasst.protocol.collection import ErrorCode
from oasst.protocol.inference import ChatUpdateRequest, MessageResponseEvent, ReportRequest
from oasst.web import account_routes, admin_routes, oauth, service
from oasst.web.deps import (
    MODERATOR_ROLES,
    AdminDep,
    ModeratorDep,
    Page,
    PageDep,
    SignedInDep,
    check_csrf,
    dev_sign_in_allowed,
    safe_next,
    sign_in_rate_limited,
)
from oasst.web.errors import core_text
from oasst.web.i18n import TASK_LANGS, UI_LANGS
from oasst.web.sessions import SignedIn

Text = Annotated[str, Form(max_length=100_000)]
Name = Annotated[str, Form(min_length=1, max_length=64)]
Secret = Annotated[str, Form(max_length=256)]
Next = Annotated[str, Form(max_length=2000)]
TaskKind = Annotated[str, Form(max_length=32)]
TaskLang = Annotated[str, Form(max_length=32)]


def build_router() -> APIRouter:
    """Every page; state-changing requests need the session's CSRF token."""
    router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
    router.add_api_route("/", index, methods=["GET"])
    router.add_api_route("/signin", sign_in_page, methods=["GET"])
    router.add_api_route("/signin", sign_in, methods=["POST"])
    router.add_api_route("/signin/dev", dev_sign_in, methods=["POST"])
    router.add_api_route("/signin/{provider}", oauth.start, methods=["GET"])
    router.add_api_route("/signin/{provider}/callback", oauth.callback, methods=["GET"])
    router.add_api_route("/register", register_page, methods=["GET"])
    router.add_api_route("/register", register, methods=["POST"])
    router.add_api_route("/signout", sign_out, methods=["POST"])
    router.add_api_route("/language", set_language, methods=["POST"])
    router.add_api_route("/tos", tos_page, methods=["GET"])
    router.add_api_route("/tos", accept_tos, methods=["POST"])
    router.add_api_route("/contribute", contribute, methods=["GET"])
    router.add_api_route("/contribute", start_task, methods=["POST"])
    router.add_api_route("/tasks/{task_id}", task_page, methods=["GET"])
    router.add_api_route("/tasks/{task_id}", answer_task, methods=["POST"])
    router.add_api_route("/tasks/{task_id}/skip", skip_task, methods=["POST"])
    router.add_api_route("/messages", messages, methods=["GET"])
    router.add_api_route("/messages/{message_id}", message_tree, methods=["GET"])
    router.add_api_route("/messages/{message_id}/halt", halt_tree, methods=["POST"])
    router.add_api_route("/messages/{message_id}/react", react, methods=["POST"])
    router.add_api_route("/moderation", moderation, methods=["GET"])
    router.add_api_route("/moderation/{message_id}/done", flag_done, methods=["POST"])
    router.add_api_route("/profile", profile, methods=["GET"])
    router.add_api_route("/admin/accounts", accounts_page, methods=["GET"])
    router.add_api_route("/admin/accounts/{username}", change_account, methods=["POST"])
    router.add_api_route("/admin/gateway", gateway_accounts, methods=["GET"])
    router.add_api_route("/admin/gateway", create_gateway_account, methods=["POST"])
    router.add_api_route("/admin/gateway/{account_id}/budget", set_gateway_budget, methods=["POST"])
    router.add_api_route("/admin/gateway/{account_id}/rotate", rotate_gateway_key, methods=["POST"])
    router.add_api_route("/admin/gateway/{account_id}/deactivate", deactivate_gateway, methods=["POST"])
    router.add_api_route("/leaderboard", leaderboard, methods=["GET"])
    router.add_api_route("/chat", chats, methods=["GET"])
    router.add_api_route("/chat", new_chat, methods=["POST"])
    router.add_api_route("/chat/{chat_id}", chat_page, methods=["GET"])
    router.add_api_route("/chat/{chat_id}", send, methods=["POST"])
    router.add_api_route("/chat/{chat_id}/settings", chat_settings, methods=["POST"])
    router.add_api_route("/chat/{chat_id}/delete", delete_chat, methods=["POST"])
    router.add_api_route("/chat/{chat_id}/branch", show_branch, methods=["POST"])
    router.add_api_route("/chat/{chat_id}/messages/{message_id}/regenerate", regenerate, methods=["POST"])
    router.add_api_route("/chat/{chat_id}/messages/{message_id}/vote", vote, methods=["POST"])
    router.add_api_route("/chat/{chat_id}/messages/{message_id}/prefer", prefer, methods=["POST"])
    router.add_api_route("/chat/{chat_id}/messages/{message_id}/report", report, methods=["POST"])
    router.add_api_route("/chat/{chat_id}/messages/{message_id}/events", chat_events, methods=["GET"])
    admin_routes.add_routes(router)
    account_routes.add_routes(router)
    return router


async def index(page: PageDep) -> HTMLResponse:
    return page.render("index.html")


# --- signing in and out ----------------------------------------------------------------------------------


def _sign_in_form(
    page: Page, next: str, *, status: int = 200, error: str | None = None, username: str = ""
) -> HTMLResponse:
    return page.render(
        "signin.html",
        status=status,
        next=safe_next(next),
        error=error,
        username=username,
        oauth=oauth.offered(page.settings),
    )


async def sign_in_page(page: PageDep, next: Annotated[str, Query(max_length=2000)] = "/") -> HTMLResponse:
    return _sign_in_form(page, next)


async def sign_in(
    page: PageDep,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Secret,
    next: Next = "/",
) -> Response:
    if not page.settings.local_auth:
        raise OasstError("Sign-in with a password is off on this site", ErrorCode.GENERIC_ERROR, 403)
    if await sign_in_rate_limited(page.request):
        error = page.gettext("Too many sign-in attempts. Please wait a few minutes.")
        return _sign_in_form(page, next, status=429, error=error, username=username)
    user = await service.sign_in(session, username, password)
    if user is None:
        error = page.gettext("Wrong username or password.")
        return _sign_in_form(page, next, status=401, error=error, username=username)
    page.session.sign_in(user)
    return page.redirect(safe_next(next))


async def dev_sign_in(
    page: PageDep, name: Name, role: Annotated[str, Form()] = "user", next: Next = "/"
) -> Response:
    if not dev_sign_in_allowed(page.settings):
        raise OasstError("The development sign-in is off", ErrorCode.GENERIC_ERROR, 403)
    if role not in ("user", *MODERATOR_ROLES):
        raise service.bad_input(f"Unknown role {role!r}")
    clean = name.strip()
    if not clean:
        raise service.bad_input("Please enter a name")
    page.session.sign_in(SignedIn("dev", clean, clean, role))
    return page.redirect(safe_next(next))


def _registration_open(page: PageDep) -> None:
    if not (page.settings.local_auth and page.settings.allow_registration):
        raise OasstError("Registration is closed on this site", ErrorCode.GENERIC_ERROR, 403)


async def register_page(page: PageDep) -> HTMLResponse:
    _registration_open(page)
    return page.render("register.html", error=None, username="", display_name="")


async def register(
    page: PageDep,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Secret,
    password_again: Secret,
    display_name: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    _registration_open(page)
    if await sign_in_rate_limited(page.request):
        error = page.gettext("Too many sign-in attempts. Please wait a few minutes.")
    elif password != password_again:
        error = page.gettext("The two passwords differ.")
    else:
        try:
            async with session.begin_nested():
                user = await service.register(session, username, password, display_name)
        except OasstError as failure:
            error = failure.message
        else:
            page.session.sign_in(user)
            return page.redirect("/contribute")
    return page.render("register.html", status=400, error=error, username=username, display_name=display_name)


async def sign_out(page: PageDep) -> Response:
    page.session.sign_out()
    return page.redirect("/")


async def set_language(
    page: PageDep, lang: Annotated[str, Form(max_length=16)], next: Next = "/"
) -> Response:
    if lang not in UI_LANGS:
        raise service.bad_input(f"Unknown language {lang!r}")
    page.session.set_lang(lang)
    return page.redirect(safe_next(next))


async def tos_page(page: PageDep, user: SignedInDep) -> HTMLResponse:
    return page.render("tos.html")


async def accept_tos(page: PageDep, session: SessionDep, user: SignedInDep) -> Response:
    await service.accept_tos(session, page.client, user)
    return page.redirect("/contribute")


# --- contributing -----------------------------------------------------------------------------------------


def _task_lang(page: PageDep, lang: str | None) -> str:
    if lang is None:
        return page.lang
    if lang not in TASK_LANGS:
        raise service.bad_input(f"Unknown language {lang!r}")
    return lang


async def contribute(
    page: PageDep,
    session: SessionDep,
    rng: RngDep,
    user: SignedInDep,
    lang: Annotated[str | None, Query(max_length=32)] = None,
    done: bool = False,
    none: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The task chooser: how many tasks of each type wait in the chosen language."""
    if await service.needs_tos(session, page.client, page.settings, user):
        return page.redirect("/tos")
    task_lang = _task_lang(page, lang)
    counts = await service.availability(session, page.client, page.settings, rng, user, task_lang)
    return page.render(
        "contribute.html",
        counts=counts,
        kinds=service.REQUESTABLE,
        task_lang=task_lang,
        done=done,
        missing=none,
    )


async def _next(
    page: PageDep,
    session: SessionDep,
    rng: RngDep,
    user: SignedIn,
    kind: str,
    lang: str,
    *,
    done: bool = False,
) -> Response:
    """Hand out the next task of `kind`, or go back to the chooser saying there is none."""
    saved = "&done=1" if done else ""
    try:
        async with session.begin_nested():
            task_id = await service.next_task(session, page.client, page.settings, rng, user, kind, lang)
    except OasstError as failure:
        if failure.code not in (ErrorCode.TASK_REQUESTED_TYPE_NOT_AVAILABLE, ErrorCode.TASK_TOO_MANY_PENDING):
            raise
        return page.redirect(f"/contribute?lang={lang}&none={kind}{saved}")
    return page.redirect(f"/tasks/{task_id}?kind={kind}{saved}")


async def start_task(
    page: PageDep, session: SessionDep, rng: RngDep, user: SignedInDep, kind: TaskKind, lang: TaskLang
) -> Response:
    if await service.needs_tos(session, page.client, page.settings, user):
        return page.redirect("/tos")
    return await _next(page, session, rng, user, kind, _task_lang(page, lang))


def _render_task(
    page: PageDep,
    open_: service.OpenTask,
    kind: str,
    form: dict[str, str],
    *,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    template = {"initial_prompt": "reply", "prompter_reply": "reply", "assistant_reply": "reply"}.get(
        open_.kind, "rank" if open_.kind.startswith("rank_") else "label"
    )
    return page.render(
        f"task_{template}.html",
        status=status,
        task=open_.task,
        task_id=open_.row.id,
        task_type=open_.kind,
        task_lang=open_.lang,
        kind=kind if kind in service.REQUESTABLE else "random",
        error=error,
        form=form,
        likert_steps=service.LIKERT_STEPS,
    )


async def task_page(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    task_id: uuid.UUID,
    kind: Annotated[str, Query(max_length=32)] = "random",
    done: bool = False,
) -> HTMLResponse:
    open_ = await service.open_task(session, page.client, user, task_id)
    return _render_task(page, open_, kind, {"saved": "1"} if done else {})


async def answer_task(
    request: Request,
    page: PageDep,
    session: SessionDep,
    rng: RngDep,
    user: SignedInDep,
    task_id: uuid.UUID,
    kind: TaskKind = "random",
) -> Response:
    """Store the answer, then go straight on to the next task of the same kind."""
    open_ = await service.open_task(session, page.client, user, task_id)
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    settings, client = page.settings, page.client
    try:
        if open_.kind in ("initial_prompt", "prompter_reply", "assistant_reply"):
            await service.answer_reply(session, client, settings, rng, user, open_, form.get("text", ""))
        elif open_.kind.startswith("rank_"):
            count = len(getattr(open_.task, "replies", []))
            ranking = service.parse_ranking(form.get("ranking", ""), count)
            not_rankable = form.get("not_rankable") == "1"
            await service.answer_ranking(session, client, settings, rng, user, open_, ranking, not_rankable)
        else:
            labels = service.labels_from_form(open_.task, form)
            await service.answer_labels(session, client, settings, rng, user, open_, labels)
    except OasstError as failure:
        if failure.status >= 500:
            raise
        return _render_task(page, open_, kind, form, status=400, error=page.gettext(core_text(failure)))
    return await _next(page, session, rng, user, kind, open_.lang, done=True)


async def skip_task(
    page: PageDep,
    session: SessionDep,
    rng: RngDep,
    user: SignedInDep,
    task_id: uuid.UUID,
    kind: TaskKind = "random",
    reason: Annotated[str, Form(max_length=512)] = "",
) -> Response:
    open_ = await service.open_task(session, page.client, user, task_id)
    await service.skip(session, page.client, user, open_, reason)
    return await _next(page, session, rng, user, kind, open_.lang)


# --- reading ---------------------------------------------------------------------------------------------


async def messages(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    lang: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    """The newest messages in a language (the UI's by default)."""
    shown = _task_lang(page, lang)
    recent = await service.recent_messages(session, page.client, user, shown)
    return page.render("messages.html", messages=recent, shown_lang=shown)


async def message_tree(
    page: PageDep, session: SessionDep, user: SignedInDep, message_id: uuid.UUID
) -> HTMLResponse:
    view = await service.tree(session, page.client, user, message_id, moderator=user.role in MODERATOR_ROLES)
    return page.render("tree.html", view=view)


async def react(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    message_id: uuid.UUID,
    emoji: Annotated[str, Form(max_length=16)],
) -> Response:
    await service.react(session, page.client, page.settings, user, message_id, emoji)
    return page.redirect(f"/messages/{message_id}#m-{message_id}")


async def moderation(page: PageDep, session: SessionDep, moderator: ModeratorDep) -> HTMLResponse:
    """The red-flagged messages nobody has handled yet."""
    return page.render("moderation.html", flagged=await service.flagged(session))


async def flag_done(
    page: PageDep, session: SessionDep, moderator: ModeratorDep, message_id: uuid.UUID
) -> Response:
    await admin_service.process_flagged(session, message_id)
    return page.redirect("/moderation")


async def halt_tree(
    page: PageDep,
    session: SessionDep,
    rng: RngDep,
    moderator: ModeratorDep,
    message_id: uuid.UUID,
    halt: Annotated[bool, Form()],
) -> Response:
    """Halt a tree (no more tasks), or resume it by the tree manager's rules."""
    await messages_service.set_tree_state(session, page.settings, rng, message_id, halt=halt)
    return page.redirect(f"/messages/{message_id}")


async def profile(page: PageDep, session: SessionDep, user: SignedInDep) -> HTMLResponse:
    return page.render("profile.html", profile=await service.profile(session, page.client, user))


async def leaderboard(
    page: PageDep, session: SessionDep, user: SignedInDep, frame: UserStatsTimeFrame = UserStatsTimeFrame.day
) -> HTMLResponse:
    board = await service.leaderboard(session, page.client, user, frame)
    return page.render("leaderboard.html", board=board, frame=frame.value, frames=list(UserStatsTimeFrame))


# --- administration ----------------------------------------------------------------------------------------


async def accounts_page(page: PageDep, session: SessionDep, admin: AdminDep) -> HTMLResponse:
    return page.render("admin_accounts.html", accounts=await service.list_accounts(session))


async def change_account(
    page: PageDep,
    session: SessionDep,
    admin: AdminDep,
    username: Annotated[str, Path(max_length=64)],
    role: Annotated[str | None, Form(max_length=16)] = None,
    enabled: Annotated[bool | None, Form()] = None,
) -> Response:
    """Change one account's role, or switch it on or off."""
    await service.change_account(session, admin, username, role=role, enabled=enabled)
    return page.redirect("/admin/accounts")


GatewayId = Annotated[int, Path(ge=1, le=2**31 - 1)]
GatewayName = Annotated[str, Form(min_length=1, max_length=80)]
GatewayBudget = Annotated[int, Form(ge=0, le=MAX_BUDGET)]


async def gateway_accounts(
    page: PageDep, session: SessionDep, admin: AdminDep, inactive: bool = False
) -> HTMLResponse:
    """The course gateway's accounts: budget, usage, and the forms to change them."""
    rows = await gateway_service.list_accounts(session, "false" if inactive else "true", None, None)
    return page.render("admin_gateway.html", accounts=rows, inactive=inactive)


async def create_gateway_account(
    page: PageDep,
    session: SessionDep,
    admin: AdminDep,
    name: GatewayName,
    course: GatewayName,
    budget: Annotated[int | None, Form(ge=0, le=MAX_BUDGET)] = None,
) -> HTMLResponse:
    """A new account; its key is on this answer only."""
    body = AccountCreate(name=name, course=course, budget=budget)
    account = await gateway_service.create_account(session, page.settings, body)
    return page.render("admin_gateway_key.html", account=account, created=True)


async def set_gateway_budget(
    page: PageDep, session: SessionDep, admin: AdminDep, account_id: GatewayId, budget: GatewayBudget
) -> Response:
    await gateway_service.update_account(session, account_id, AccountUpdate(budget=budget))
    return page.redirect("/admin/gateway")


async def rotate_gateway_key(
    page: PageDep, session: SessionDep, admin: AdminDep, account_id: GatewayId
) -> HTMLResponse:
    """A new key for the account (the old one stops working); shown on this answer only."""
    account = await gateway_service.rotate_key(session, account_id)
    return page.render("admin_gateway_key.html", account=account, created=False)


async def deactivate_gateway(
    page: PageDep, session: SessionDep, admin: AdminDep, account_id: GatewayId
) -> Response:
    await gateway_service.delete_account(session, account_id)
    return page.redirect("/admin/gateway")


# --- chat --------------------------------------------------------------------------------------------------

ChatText = Annotated[str, Form(min_length=1, max_length=100_000)]
ChatCursor = Annotated[str | None, Query(max_length=128)]


def _inference(page: PageDep) -> InferenceRuntime:
    runtime: InferenceRuntime = page.request.app.state.inference
    return runtime


def _chat_runtime(page: PageDep, rng: random.Random) -> service.ChatRuntime:
    runtime = _inference(page)
    return service.ChatRuntime(runtime.settings, runtime.queue, runtime.workers.models(), rng)


def _queued(page: PageDep, queued: QueuedMessage, chat_id: uuid.UUID) -> Response:
    """Back to the chat; the reply is queued once the response is out, so after the request's commit."""
    response = page.redirect(f"/chat/{chat_id}#m-{queued.message.id}")
    response.background = BackgroundTask(_inference(page).enqueue, queued)
    return response


async def chats(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    after: ChatCursor = None,
    hidden: bool = False,
) -> HTMLResponse:
    """The person's chats, newest first, 20 a page."""
    person = await service.chat_user(session, user)
    listing = await inference_service.list_chats(
        session, person, include_hidden=hidden, limit=20, after=after, before=None
    )
    return page.render("chats.html", listing=listing, hidden=hidden)


async def new_chat(page: PageDep, session: SessionDep, user: SignedInDep) -> Response:
    person = await service.chat_user(session, user)
    chat = await inference_service.create_chat(session, person)
    return page.redirect(f"/chat/{chat.id}")


async def chat_page(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    chat_id: uuid.UUID,
    reported: bool = False,
    preferred: bool = False,
) -> HTMLResponse:
    person = await service.chat_user(session, user)
    view = await service.chat_view(session, page.settings, person, chat_id, _inference(page).workers.models())
    return page.render(
        "chat.html", view=view, presets=service.PRESET_NAMES, reported=reported, preferred=preferred
    )


async def send(
    page: PageDep,
    session: SessionDep,
    rng: RngDep,
    user: SignedInDep,
    chat_id: uuid.UUID,
    content: ChatText,
    model: Annotated[str, Form(max_length=200)],
    preset: Annotated[str, Form(max_length=64)],
) -> Response:
    person = await service.chat_user(session, user)
    queued = await service.send(session, _chat_runtime(page, rng), person, chat_id, content, model, preset)
    return _queued(page, queued, chat_id)


async def regenerate(
    page: PageDep,
    session: SessionDep,
    rng: RngDep,
    user: SignedInDep,
    chat_id: uuid.UUID,
    message_id: uuid.UUID,
) -> Response:
    person = await service.chat_user(session, user)
    queued = await service.regenerate(session, _chat_runtime(page, rng), person, chat_id, message_id)
    return _queued(page, queued, chat_id)


async def show_branch(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    chat_id: uuid.UUID,
    message_id: Annotated[uuid.UUID, Form()],
) -> Response:
    person = await service.chat_user(session, user)
    await service.show_branch(session, person, chat_id, message_id)
    return page.redirect(f"/chat/{chat_id}#m-{message_id}")


async def prefer(
    page: PageDep, session: SessionDep, user: SignedInDep, chat_id: uuid.UUID, message_id: uuid.UUID
) -> Response:
    person = await service.chat_user(session, user)
    await service.prefer(session, person, chat_id, message_id)
    return page.redirect(f"/chat/{chat_id}?preferred=1#m-{message_id}")


async def vote(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    chat_id: uuid.UUID,
    message_id: uuid.UUID,
    score: Annotated[int, Form()],
) -> Response:
    person = await service.chat_user(session, user)
    await service.vote(session, person, chat_id, message_id, score)
    return page.redirect(f"/chat/{chat_id}#m-{message_id}")


async def report(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    chat_id: uuid.UUID,
    message_id: uuid.UUID,
    report_type: Annotated[Literal["spam", "offensive", "feedback"], Form()],
    reason: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    person = await service.chat_user(session, user)
    body = ReportRequest(report_type=report_type, reason=reason)
    await inference_service.report(session, person, chat_id, message_id, body)
    return page.redirect(f"/chat/{chat_id}?reported=1#m-{message_id}")


async def chat_settings(
    page: PageDep,
    session: SessionDep,
    user: SignedInDep,
    chat_id: uuid.UUID,
    title: Annotated[str, Form(max_length=100)] = "",
    allow_data_use: Annotated[bool, Form()] = False,
    hidden: Annotated[bool, Form()] = False,
) -> Response:
    """Rename the chat, let it be used for training data or not, hide it from the list."""
    person = await service.chat_user(session, user)
    update = ChatUpdateRequest(title=title.strip() or None, allow_data_use=allow_data_use, hidden=hidden)
    await inference_service.update_chat(session, person, chat_id, update)
    return page.redirect(f"/chat/{chat_id}")


async def delete_chat(page: PageDep, session: SessionDep, user: SignedInDep, chat_id: uuid.UUID) -> Response:
    person = await service.chat_user(session, user)
    await inference_service.delete_chat(session, person, chat_id)
    return page.redirect("/chat")


async def chat_events(
    page: PageDep, session: SessionDep, user: SignedInDep, chat_id: uuid.UUID, message_id: uuid.UUID
) -> Response:
    """The reply's events for the page's script: the inference stream, the session standing in for a token
    (an EventSource cannot send one). A reply that finished meanwhile is one `message` event."""
    person = await service.chat_user(session, user)
    runtime = _inference(page)
    message = await inference_service.stream_target(session, runtime.streams, person, chat_id, message_id)
    if message is None:
        finished = await inference_service.get_message(session, person, chat_id, message_id)
        return Response(
            inference_service.sse(MessageResponseEvent(message=finished)), media_type="text/event-stream"
        )
    stream = inference_service.events(
        message, runtime.settings, runtime.queue, runtime.streams, runtime.transaction
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
