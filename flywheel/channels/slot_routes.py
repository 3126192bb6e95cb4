"""HTTP routes under /api/v1/slots: what an app shows a customer in an in-app slot now.

Called by the firm's app backend with an API token of a user holding ``slots:read`` (role
``app_backend``); never by the customer's device directly.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.channels import service
from flywheel.channels.schemas import SlotCardOut, SlotOut
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.projects.deps import ProjectId

router = APIRouter(prefix="/api/v1/slots", tags=["slots"])

App = Annotated[Principal, Depends(require("slots:read"))]
SlotName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


@router.get("/{slot}", response_model=SlotOut)
def slot(
    slot: SlotName,
    user: Annotated[str, Query(min_length=1, max_length=256)],
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: App,
) -> SlotOut:
    return service.slot_content(
        session=session, project_id=project_id, slot=slot, user=user, now=runtime.clock()
    )


@router.post("/{slot}/{message_id}/click", response_model=SlotCardOut)
def click(
    slot: SlotName,
    message_id: Annotated[int, Path(ge=1)],
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: App,
) -> SlotCardOut:
    return service.slot_click(
        session=session,
        project_id=project_id,
        slot=slot,
        message_id=message_id,
        now=runtime.clock(),
    )


@router.post("/{slot}/{message_id}/dismiss", response_model=SlotCardOut)
def dismiss(
    slot: SlotName,
    message_id: Annotated[int, Path(ge=1)],
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: App,
) -> SlotCardOut:
    return service.slot_dismiss(
        session=session,
        project_id=project_id,
        slot=slot,
        message_id=message_id,
        now=runtime.clock(),
    )
