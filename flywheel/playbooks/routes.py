"""Playbooks API: the gallery, one playbook, preview and apply."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.playbooks import service
from flywheel.playbooks.schemas import (
    AppliedOut,
    ParamsIn,
    PlaybookOut,
    PlaybookSummary,
    PreviewOut,
)
from flywheel.projects.deps import ProjectId

router = APIRouter(prefix="/api/v1/playbooks", tags=["playbooks"])

Reader = Annotated[Principal, Depends(require("journeys:read"))]
JourneyWriter = Annotated[Principal, Depends(require("journeys:write"))]
ContentWriter = Annotated[Principal, Depends(require("content:write"))]
Name = Annotated[str, Path(max_length=64)]


@router.get("", response_model=list[PlaybookSummary])
def list_playbooks(_: Reader) -> list[PlaybookSummary]:
    return service.list_playbooks()


@router.get("/{name}", response_model=PlaybookOut)
def get_playbook(name: Name, _: Reader) -> PlaybookOut:
    return service.get_playbook(name=name)


@router.post("/{name}/preview", response_model=PreviewOut)
def preview(
    name: Name,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Reader,
    body: ParamsIn | None = None,
) -> PreviewOut:
    return service.preview(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        name=name,
        parameters=(body or ParamsIn()).parameters,
        principal=who,
        now=runtime.clock(),
    )


@router.post("/{name}/apply", response_model=AppliedOut, status_code=201)
def apply(
    name: Name,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: JourneyWriter,
    _: ContentWriter,
    body: ParamsIn | None = None,
) -> AppliedOut:
    return service.apply(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        name=name,
        parameters=(body or ParamsIn()).parameters,
        principal=who,
        now=runtime.clock(),
    )
