"""Routes of /api/v1/messages (by backend id) and /api/v1/frontend_messages (by the client's own id).

Reads by backend UUID are open to every API client, as upstream: a UUID is unguessable, and the website,
bots and export tools share trees across clients. Listings, in contrast, show untrusted clients only their
own client's messages.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.status import HTTP_202_ACCEPTED

from oasst.collection.deps import ApiClientDep, FrontendIdentityDep, SessionDep, SettingsDep
from oasst.collection.messages import service
from oasst.collection.messages.schemas import MessageFilter
from oasst.collection.users import service as users_service
from oasst.db.models import Message, User
from oasst.protocol import collection as wire

messages_router = APIRouter(prefix="/messages", tags=["messages"])
frontend_messages_router = APIRouter(prefix="/frontend_messages", tags=["frontend_messages"])


async def _viewer(session: SessionDep, client: ApiClientDep, identity: FrontendIdentityDep) -> User | None:
    return await users_service.by_header(session, client, identity)


async def _message(session: SessionDep, _client: ApiClientDep, message_id: uuid.UUID) -> Message:
    return await service.get(session, message_id)


async def _frontend_message(session: SessionDep, client: ApiClientDep, message_id: str) -> Message:
    return await service.by_frontend_id(session, client, message_id)


ViewerDep = Annotated[User | None, Depends(_viewer)]
MessageDep = Annotated[Message, Depends(_message)]
FrontendMessageDep = Annotated[Message, Depends(_frontend_message)]
MaxCount = Annotated[int, Query(gt=0, le=1000)]
Name = Annotated[str | None, Query(max_length=128)]
Lang = Annotated[str | None, Query(max_length=32)]
Cursor = Annotated[str | None, Query(max_length=128)]


@messages_router.get("/", response_model=list[wire.Message])
async def query_messages(
    session: SessionDep,
    client: ApiClientDep,
    viewer: ViewerDep,
    auth_method: Name = None,
    username: Name = None,
    api_client_id: uuid.UUID | None = None,
    max_count: MaxCount = 10,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    only_roots: bool = False,
    desc: bool = True,
    allow_deleted: bool = False,
    lang: Lang = None,
) -> list[wire.Message]:
    where = MessageFilter(
        auth_method=auth_method,
        username=username,
        api_client_id=api_client_id,
        only_roots=only_roots,
        include_deleted=allow_deleted,
        lang=lang,
    )
    return await service.listing(
        session,
        client,
        viewer,
        where,
        start_date=start_date,
        end_date=end_date,
        max_count=max_count,
        desc=desc,
    )


@messages_router.get("/cursor", response_model=wire.MessagePage)
async def get_messages_cursor(
    session: SessionDep,
    client: ApiClientDep,
    viewer: ViewerDep,
    before: Cursor = None,
    after: Cursor = None,
    user_id: uuid.UUID | None = None,
    auth_method: Name = None,
    username: Name = None,
    api_client_id: uuid.UUID | None = None,
    only_roots: bool = False,
    include_deleted: bool = False,
    max_count: MaxCount = 10,
    desc: bool = False,
    search_query: Annotated[str | None, Query(max_length=1000)] = None,
    lang: Lang = None,
    include_user: bool | None = None,
) -> wire.MessagePage:
    where = MessageFilter(
        user_id=user_id,
        auth_method=auth_method,
        username=username,
        api_client_id=api_client_id,
        only_roots=only_roots,
        include_deleted=include_deleted,
        lang=lang,
        search_query=search_query,
    )
    return await service.page(
        session,
        client,
        viewer,
        where,
        before=before,
        after=after,
        max_count=max_count,
        desc=desc,
        include_user=bool(include_user),
    )


@messages_router.get("/{message_id}", response_model=wire.Message)
async def get_message(session: SessionDep, message: MessageDep, viewer: ViewerDep) -> wire.Message:
    return await service.view(session, message, viewer)


@messages_router.get("/{message_id}/conversation", response_model=wire.Conversation)
async def get_conv(session: SessionDep, message: MessageDep, viewer: ViewerDep) -> wire.Conversation:
    return await service.accepted_conversation(session, message, viewer)


@messages_router.get("/{message_id}/tree", response_model=wire.MessageTree)
async def get_tree(
    session: SessionDep,
    message: MessageDep,
    viewer: ViewerDep,
    include_spam: bool = True,
    include_deleted: bool = False,
) -> wire.MessageTree:
    return await service.tree_view(
        session, message, viewer, include_spam=include_spam, include_deleted=include_deleted
    )


@messages_router.get("/{message_id}/tree/state", response_model=wire.MessageTreeStateResponse)
async def get_message_tree_state(
    session: SessionDep, message: MessageDep, _viewer: ViewerDep
) -> wire.MessageTreeStateResponse:
    return await service.tree_state(session, message)


@messages_router.get("/{message_id}/children", response_model=list[wire.Message])
async def get_children(session: SessionDep, message: MessageDep, viewer: ViewerDep) -> list[wire.Message]:
    return await service.children(session, message, viewer)


@messages_router.get("/{message_id}/descendants", response_model=wire.MessageTree)
async def get_descendants(session: SessionDep, message: MessageDep, viewer: ViewerDep) -> wire.MessageTree:
    return await service.descendants(session, message, viewer)


@messages_router.get("/{message_id}/longest_conversation_in_tree", response_model=wire.Conversation)
async def get_longest_conv(session: SessionDep, message: MessageDep, viewer: ViewerDep) -> wire.Conversation:
    return await service.longest_conversation(session, message, viewer)


@messages_router.get("/{message_id}/max_children_in_tree", response_model=wire.MessageTree)
async def get_max_children(session: SessionDep, message: MessageDep, viewer: ViewerDep) -> wire.MessageTree:
    return await service.max_children(session, message, viewer)


@messages_router.post("/{message_id}/emoji", status_code=HTTP_202_ACCEPTED, response_model=wire.Message)
async def post_message_emoji(
    message_id: uuid.UUID,
    request: wire.MessageEmojiRequest,
    session: SessionDep,
    client: ApiClientDep,
    settings: SettingsDep,
) -> wire.Message:
    return await service.react(session, client, settings, message_id, request)


# Frontend-id routes take no current user (as upstream), so user_is_author is null and user_emojis empty.


@frontend_messages_router.get("/{message_id}", response_model=wire.Message)
async def get_message_by_frontend_id(session: SessionDep, message: FrontendMessageDep) -> wire.Message:
    return await service.view(session, message, None)


@frontend_messages_router.get("/{message_id}/conversation", response_model=wire.Conversation)
async def get_conv_by_frontend_id(session: SessionDep, message: FrontendMessageDep) -> wire.Conversation:
    return await service.accepted_conversation(session, message, None)


@frontend_messages_router.get("/{message_id}/tree", response_model=wire.MessageTree)
async def get_tree_by_frontend_id(
    session: SessionDep, message: FrontendMessageDep, include_spam: bool = True, include_deleted: bool = False
) -> wire.MessageTree:
    return await service.tree_view(
        session, message, None, include_spam=include_spam, include_deleted=include_deleted
    )


@frontend_messages_router.get("/{message_id}/children", response_model=list[wire.Message])
async def get_children_by_frontend_id(session: SessionDep, message: FrontendMessageDep) -> list[wire.Message]:
    return await service.children(session, message, None)


@frontend_messages_router.get("/{message_id}/descendants", response_model=wire.MessageTree)
async def get_descendants_by_frontend_id(
    session: SessionDep, message: FrontendMessageDep
) -> wire.MessageTree:
    return await service.descendants(session, message, None)


@frontend_messages_router.get("/{message_id}/longest_conversation_in_tree", response_model=wire.Conversation)
async def get_longest_conv_by_frontend_id(
    session: SessionDep, message: FrontendMessageDep
) -> wire.Conversation:
    return await service.longest_conversation(session, message, None)


@frontend_messages_router.get("/{message_id}/max_children_in_tree", response_model=wire.MessageTree)
async def get_max_children_by_frontend_id(
    session: SessionDep, message: FrontendMessageDep
) -> wire.MessageTree:
    return await service.max_children(session, message, None)
