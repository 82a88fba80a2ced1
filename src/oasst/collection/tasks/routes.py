"""Routes of /api/v1/tasks: request, availability, ack, nack, interaction, close."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response

from oasst.collection.deps import ApiClientDep, FrontendIdentityDep, RngDep, SessionDep, SettingsDep
from oasst.collection.ratelimits import check_task_request
from oasst.collection.tasks import service
from oasst.metrics import record_task_answered, record_task_handed_out
from oasst.protocol import collection as wire

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.post("/", response_model=wire.AnyTask)
async def request_task(
    body: wire.TaskRequest,
    request: Request,
    session: SessionDep,
    client: ApiClientDep,
    settings: SettingsDep,
    rng: RngDep,
) -> service.AnyTaskModel:
    await check_task_request(request, body)
    task = await service.request_task(session, client, settings, body, rng)
    record_task_handed_out(request, task.type)
    return task


@router.post("/availability")
async def tasks_availability(
    session: SessionDep,
    client: ApiClientDep,
    settings: SettingsDep,
    rng: RngDep,
    user: Annotated[wire.User | None, Body()] = None,
    lang: Annotated[str, Query(min_length=2, max_length=32)] = "en",
) -> dict[str, int]:
    return await service.availability(session, client, settings, user, lang, rng)


@router.post("/{task_id}/ack", status_code=204)
async def ack_task(
    task_id: uuid.UUID, body: wire.TaskAck, session: SessionDep, client: ApiClientDep
) -> Response:
    await service.ack(session, client, task_id, body.message_id)
    return Response(status_code=204)


@router.post("/{task_id}/nack", status_code=204)
async def nack_task(
    task_id: uuid.UUID,
    body: wire.TaskNAck,
    session: SessionDep,
    client: ApiClientDep,
    identity: FrontendIdentityDep,
) -> Response:
    await service.nack(session, client, task_id, body.reason, identity)
    return Response(status_code=204)


@router.post("/interaction", response_model=wire.TaskDone)
async def tasks_interaction(
    body: Annotated[wire.AnyInteraction, Body()],
    request: Request,
    session: SessionDep,
    client: ApiClientDep,
    settings: SettingsDep,
    rng: RngDep,
) -> wire.TaskDone:
    done, task_type = await service.interaction(session, client, settings, body, rng)
    if task_type is not None:
        record_task_answered(request, task_type)
    return done


@router.post("/close", response_model=wire.TaskDone)
async def close_collective_task(
    body: wire.TaskClose, session: SessionDep, client: ApiClientDep
) -> wire.TaskDone:
    return await service.close(session, client, body.message_id)
