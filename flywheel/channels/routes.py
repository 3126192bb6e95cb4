"""HTTP routes under /api/v1/channels: known channels and the message log.

Channel *settings* (provider accounts) are added by the providers work in this module's
neighbours; these routes only read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.channels import service
from flywheel.channels.schemas import ChannelOut, MessageOut, MessagePage, NodeCount
from flywheel.http.deps import SessionDep
from flywheel.projects.deps import ProjectId

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])

Reader = Annotated[Principal, Depends(require("channels:read"))]


@router.get("", response_model=list[ChannelOut])
def channels(_: Reader) -> list[ChannelOut]:
    return service.known_channels()


@router.get("/messages", response_model=MessagePage)
def messages(
    session: SessionDep,
    project_id: ProjectId,
    who: Reader,
    user: Annotated[int | None, Query(ge=1)] = None,
    journey: Annotated[int | None, Query(ge=1)] = None,
    status: Annotated[str | None, Query(max_length=12)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> MessagePage:
    return service.list_messages(
        session=session,
        project_id=project_id,
        principal=who,
        user_id=user,
        journey_id=journey,
        status=status,
        limit=limit,
        offset=offset,
    )


@router.get("/messages/{message_id}", response_model=MessageOut)
def message(
    message_id: Annotated[int, Path(ge=1)], session: SessionDep, project_id: ProjectId, who: Reader
) -> MessageOut:
    return service.get_message(
        session=session, project_id=project_id, message_id=message_id, principal=who
    )


@router.get("/journeys/{journey_id}/counts", response_model=list[NodeCount])
def journey_counts(
    journey_id: Annotated[int, Path(ge=1)], session: SessionDep, project_id: ProjectId, _: Reader
) -> list[NodeCount]:
    return service.node_counts(session=session, project_id=project_id, journey_id=journey_id)
