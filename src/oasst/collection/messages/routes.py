"""Routes of /api/v1/messages (by backend id) and /api/v1/frontend_messages (by the client's own id).

Reads by backend UUID are open to every API client, as upstream: a UUID is unguessable, and the website,
bots and export tools share trees across clients. Listings, in contrast, show untrusted clients only their
own client's messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.status import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from oasst.collection.deps import ApiClientDep, RngDep, SessionDep, SettingsDep, TrustedClientDep, ViewerDep
from oasst.collection.messages import service
from oasst.collection.messages.schemas import (
    AllMessagesListingDep,
    MessageEditRequest,
    MessagePageDep,
    MessageRevision,
)
from oasst.db.models import Message, User
from oasst.protocol import collection as wire

messages_router = APIRouter(prefix="/messages", tags=["messages"])
frontend_messages_router = APIRouter(prefix="/frontend_messages", tags=["frontend_messages"])


async def _message(session: SessionDep, _client: ApiClientDep, message_id: uuid.UUID) -> Message:
    return await service.get(session, message_id)


async def _frontend_message(session: SessionDep, client: ApiClientDep, message_id: str) -> Message:
    return await service.by_frontend_id(session, client, message_id)


MessageDep = Annotated[Message, Depends(_message)]
FrontendMessageDep = Annotated[Message, Depends(_frontend_message)]
Name = Annotated[str | None, Query(max_length=128)]


@dataclass(frozen=True)
class _Shown:
    """A message and who looks at it."""

    message: Message
    viewer: User | None


async def _shown_by_id(message: MessageDep, viewer: ViewerDep) -> _Shown:
    return _Shown(message, viewer)


# Frontend-id routes take no current user (as upstream), so user_is_author is null and user_emojis empty.
async def _shown_by_frontend_id(message: FrontendMessageDep) -> _Shown:
    return _Shown(message, None)


@messages_router.get("/", response_model=list[wire.Message])
async def query_messages(
    session: SessionDep,
    client: ApiClientDep,
    viewer: ViewerDep,
    params: AllMessagesListingDep,
    auth_method: Name = None,
    username: Name = None,
    api_client_id: uuid.UUID | None = None,
) -> list[wire.Message]:
    where = params.where(auth_method=auth_method, username=username, api_client_id=api_client_id)
    return await service.listing(session, client, viewer, where, params)


@messages_router.get("/cursor", response_model=wire.MessagePage)
async def get_messages_cursor(
    session: SessionDep,
    client: ApiClientDep,
    viewer: ViewerDep,
    params: MessagePageDep,
    user_id: uuid.UUID | None = None,
    auth_method: Name = None,
    username: Name = None,
    api_client_id: uuid.UUID | None = None,
    search_query: Annotated[str | None, Query(max_length=1000)] = None,
    include_user: bool | None = None,
) -> wire.MessagePage:
    where = params.where(
        user_id=user_id,
        auth_method=auth_method,
        username=username,
        api_client_id=api_client_id,
        search_query=search_query,
    )
    return await service.page(session, client, viewer, where, params, include_user=bool(include_user))


# A service call that shows one message to its viewer.
View = Callable[[AsyncSession, Message, User | None], Awaitable[Any]]
# The views that take nothing but the message and its viewer: path, service call, response model and route
# name (with the suffix `_by_frontend_id` on /frontend_messages).
_VIEWS: tuple[tuple[str, View, Any, str], ...] = (
    ("", service.view, wire.Message, "get_message"),
    ("/conversation", service.accepted_conversation, wire.Conversation, "get_conv"),
    ("/children", service.children, list[wire.Message], "get_children"),
    ("/descendants", service.descendants, wire.MessageTree, "get_descendants"),
    ("/longest_conversation_in_tree", service.longest_conversation, wire.Conversation, "get_longest_conv"),
    ("/max_children_in_tree", service.max_children, wire.MessageTree, "get_max_children"),
)


def _add_views(router: APIRouter, shown: Callable[..., Awaitable[_Shown]], suffix: str) -> None:
    """The read-only views of one message on `router`, the message found by `shown`."""
    shown_dep = Depends(shown)

    def endpoint(view: View) -> Callable[..., Any]:
        async def get(session: SessionDep, target: _Shown = shown_dep) -> Any:
            return await view(session, target.message, target.viewer)

        return get

    for path, view, response_model, name in _VIEWS:
        router.add_api_route(
            f"/{{message_id}}{path}", endpoint(view), response_model=response_model, name=name + suffix
        )

    @router.get("/{message_id}/tree", response_model=wire.MessageTree, name=f"get_tree{suffix}")
    async def get_tree(
        session: SessionDep,
        target: _Shown = shown_dep,
        include_spam: bool = True,
        include_deleted: bool = False,
    ) -> wire.MessageTree:
        return await service.tree_view(
            session, target.message, target.viewer, include_spam=include_spam, include_deleted=include_deleted
        )


_add_views(messages_router, _shown_by_id, "")
_add_views(frontend_messages_router, _shown_by_frontend_id, "_by_frontend_id")


@messages_router.get("/{message_id}/tree/state", response_model=wire.MessageTreeStateResponse)
async def get_message_tree_state(
    session: SessionDep, message: MessageDep, _viewer: ViewerDep
) -> wire.MessageTreeStateResponse:
    return await service.tree_state(session, message)


@messages_router.put("/{message_id}/tree/state", response_model=wire.MessageTreeStateResponse)
async def put_message_tree_state(
    message_id: uuid.UUID,
    halt: bool,
    session: SessionDep,
    _client: TrustedClientDep,
    settings: SettingsDep,
    rng: RngDep,
) -> wire.MessageTreeStateResponse:
    return await service.set_tree_state(session, settings, rng, message_id, halt=halt)


@messages_router.post("/{message_id}/emoji", status_code=HTTP_202_ACCEPTED, response_model=wire.Message)
async def post_message_emoji(
    message_id: uuid.UUID,
    request: wire.MessageEmojiRequest,
    session: SessionDep,
    client: ApiClientDep,
    settings: SettingsDep,
) -> wire.Message:
    return await service.react(session, client, settings, message_id, request)


@messages_router.delete("/{message_id}", status_code=HTTP_204_NO_CONTENT)
async def mark_message_deleted(
    message_id: uuid.UUID, session: SessionDep, _client: TrustedClientDep, settings: SettingsDep, rng: RngDep
) -> Response:
    await service.delete(session, settings, rng, message_id)
    return Response(status_code=HTTP_204_NO_CONTENT)


# Unlike upstream, undelete needs a trusted client, like delete.
@messages_router.put("/{message_id}/undelete", status_code=HTTP_202_ACCEPTED)
async def undelete_message(
    message_id: uuid.UUID, session: SessionDep, _client: TrustedClientDep, settings: SettingsDep, rng: RngDep
) -> None:
    await service.undelete(session, settings, rng, message_id)


@messages_router.post("/{message_id}/edit")
async def edit_message(
    message_id: uuid.UUID,
    request: MessageEditRequest,
    session: SessionDep,
    client: TrustedClientDep,
    settings: SettingsDep,
) -> None:
    await service.edit(session, client, settings, message_id, request)


@messages_router.get("/{message_id}/history", response_model=list[MessageRevision])
async def get_revision_history(
    message_id: uuid.UUID, session: SessionDep, _client: TrustedClientDep, viewer: ViewerDep
) -> list[MessageRevision]:
    return await service.history(session, message_id, viewer)
