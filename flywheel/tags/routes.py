"""Tags API: CRUD, preview, run, versions (distribution on a day, a customer's history),
file upload for imported tags, lineage, a customer's current tags."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Query, Response, UploadFile
from pydantic import BaseModel, Field

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.projects.deps import ProjectId
from flywheel.tags import service
from flywheel.tags.schemas import (
    ImportOut,
    LineageOut,
    TagDistribution,
    TagHistoryPoint,
    TagIn,
    TagKind,
    TagOut,
    TagPreviewOut,
    TagRunOut,
    TagUpdate,
)

router = APIRouter(prefix="/api/v1/tags", tags=["tags"])

Reader = Annotated[Principal, Depends(require("tags:read"))]
Writer = Annotated[Principal, Depends(require("tags:write"))]


class TagPreviewIn(BaseModel):
    kind: TagKind
    spec: dict[str, Any] = Field(default_factory=dict)


Ident = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=list[TagOut])
def list_tags(session: SessionDep, project_id: ProjectId, _: Reader) -> list[TagOut]:
    return service.list_tags(session=session, project_id=project_id)


@router.post("", response_model=TagOut, status_code=201)
def create_tag(
    body: TagIn, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Writer
) -> TagOut:
    return service.create_tag(
        session=session, project_id=project_id, tag_in=body, actor=who.actor, now=runtime.clock()
    )


@router.post("/preview", response_model=TagPreviewOut)
def preview_tag(
    body: TagPreviewIn, runtime: RuntimeDep, project_id: ProjectId, _: Reader
) -> TagPreviewOut:
    return service.preview_tag(
        warehouse=runtime.warehouse,
        project_id=project_id,
        kind=body.kind,
        spec=body.spec,
        now=runtime.clock(),
    )


@router.get("/users/{user_id}", response_model=dict[str, str | None])
def user_tags(
    user_id: Annotated[int, Path(ge=0, le=2**63 - 1)],
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: Reader,
    day: date | None = None,
) -> dict[str, str | None]:
    return service.user_tags(
        warehouse=runtime.warehouse, project_id=project_id, user_id=user_id, day=day
    )


@router.get("/{tag_id}", response_model=TagOut)
def get_tag(tag_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader) -> TagOut:
    return service.get_tag(session=session, project_id=project_id, tag_id=tag_id)


@router.patch("/{tag_id}", response_model=TagOut)
def update_tag(
    tag_id: Ident,
    body: TagUpdate,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: Writer,
) -> TagOut:
    return service.update_tag(
        session=session, project_id=project_id, tag_id=tag_id, update=body, now=runtime.clock()
    )


@router.delete("/{tag_id}", status_code=204)
def delete_tag(
    tag_id: Ident, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, _: Writer
) -> Response:
    service.delete_tag(
        session=session, warehouse=runtime.warehouse, project_id=project_id, tag_id=tag_id
    )
    return Response(status_code=204)


@router.post("/{tag_id}/run", response_model=TagRunOut)
def run_tag(
    tag_id: Ident, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, _: Writer
) -> TagRunOut:
    return service.run_tag(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        tag_id=tag_id,
        now=runtime.clock(),
        trigger="api",
    )


@router.get("/{tag_id}/runs", response_model=list[TagRunOut])
def list_runs(
    tag_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader
) -> list[TagRunOut]:
    return service.list_runs(session=session, project_id=project_id, tag_id=tag_id)


@router.get("/{tag_id}/distribution", response_model=TagDistribution)
def distribution(
    tag_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: Reader,
    day: date | None = None,
) -> TagDistribution:
    tag = service.get_tag(session=session, project_id=project_id, tag_id=tag_id)
    return service.distribution(
        warehouse=runtime.warehouse, project_id=project_id, tag=tag.name, day=day
    )


@router.get("/{tag_id}/history", response_model=list[TagHistoryPoint])
def history(
    tag_id: Ident,
    user_id: Annotated[int, Query(ge=0, le=2**63 - 1)],
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: Reader,
) -> list[TagHistoryPoint]:
    tag = service.get_tag(session=session, project_id=project_id, tag_id=tag_id)
    return service.history(
        warehouse=runtime.warehouse, project_id=project_id, tag=tag.name, user_id=user_id
    )


@router.post("/{tag_id}/upload", response_model=ImportOut)
def upload_values(
    tag_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: Writer,
    file: Annotated[UploadFile, File(description="CSV with header user_id,value")],
) -> ImportOut:
    return service.import_values(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        tag_id=tag_id,
        content=file.file.read(),
        now=runtime.clock(),
    )


@router.get("/{tag_id}/lineage", response_model=LineageOut)
def lineage(tag_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader) -> LineageOut:
    tag = service.get_tag(session=session, project_id=project_id, tag_id=tag_id)
    return service.lineage(
        session=session, project_id=project_id, kind="tag", key=tag.name, source_id=tag.id
    )
