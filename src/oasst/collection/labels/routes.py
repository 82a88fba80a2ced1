"""Routes of /api/v1/text_labels: free labels and reports, and the label catalogue."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from starlette.status import HTTP_204_NO_CONTENT

from oasst.collection.deps import ApiClientDep, SessionDep, SettingsDep
from oasst.collection.labels import service
from oasst.collection.labels.schemas import ValidLabelsRead
from oasst.protocol import collection as wire

router = APIRouter(prefix="/text_labels", tags=["text_labels"])


@router.post("/", status_code=HTTP_204_NO_CONTENT, response_class=Response)
async def label_text(
    body: wire.TextLabels, session: SessionDep, client: ApiClientDep, settings: SettingsDep
) -> None:
    await service.label(session, client, settings, body)


@router.get("/valid_labels", response_model=ValidLabelsRead)
async def get_valid_labels(
    session: SessionDep, _client: ApiClientDep, settings: SettingsDep, message_id: uuid.UUID | None = None
) -> ValidLabelsRead:
    return ValidLabelsRead(
        valid_labels=await service.valid_labels(session, message_id, settings.tree_manager)
    )


@router.get("/report_labels", response_model=ValidLabelsRead)
async def get_report_labels() -> ValidLabelsRead:
    return ValidLabelsRead(valid_labels=service.report_labels())
