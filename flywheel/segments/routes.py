"""Segments API: preview while editing, CRUD, file upload, refresh, counts, members, export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile
from fastapi.responses import StreamingResponse

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.projects.deps import ProjectId
from flywheel.segments import service
from flywheel.segments.schemas import (
    CountOut,
    MembersOut,
    PreviewIn,
    PreviewOut,
    RefreshOut,
    SegmentIn,
    SegmentOut,
    SegmentRunOut,
    SegmentUpdate,
)
from flywheel.tags import service as tags
from flywheel.tags.schemas import LineageOut

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])

Reader = Annotated[Principal, Depends(require("segments:read"))]
Writer = Annotated[Principal, Depends(require("segments:write"))]
Exporter = Annotated[Principal, Depends(require("users:export"))]


Ident = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/preview", response_model=PreviewOut)
def preview(
    body: PreviewIn, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Reader
) -> PreviewOut:
    return service.preview(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        rule=body.rule,
        now=runtime.clock(),
        principal=who,
        sample=body.sample,
    )


@router.get("", response_model=list[SegmentOut])
def list_segments(session: SessionDep, project_id: ProjectId, _: Reader) -> list[SegmentOut]:
    return service.list_segments(session=session, project_id=project_id)


@router.post("", response_model=SegmentOut, status_code=201)
def create_segment(
    body: SegmentIn, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Writer
) -> SegmentOut:
    return service.create_segment(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        segment_in=body,
        actor=who.actor,
        now=runtime.clock(),
    )


@router.post("/upload", response_model=SegmentOut, status_code=201)
def upload_segment(
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Writer,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    file: Annotated[UploadFile, File(description="CSV whose first column is user_id")],
) -> SegmentOut:
    return service.create_from_upload(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        name=name,
        content=file.file.read(),
        actor=who.actor,
        now=runtime.clock(),
    )


@router.get("/{segment_id}", response_model=SegmentOut)
def get_segment(
    segment_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader
) -> SegmentOut:
    return service.get_segment(session=session, project_id=project_id, segment_id=segment_id)


@router.patch("/{segment_id}", response_model=SegmentOut)
def update_segment(
    segment_id: Ident,
    body: SegmentUpdate,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: Writer,
) -> SegmentOut:
    return service.update_segment(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        segment_id=segment_id,
        update=body,
        now=runtime.clock(),
    )


@router.delete("/{segment_id}", status_code=204)
def delete_segment(
    segment_id: Ident, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, _: Writer
) -> Response:
    service.delete_segment(
        session=session, warehouse=runtime.warehouse, project_id=project_id, segment_id=segment_id
    )
    return Response(status_code=204)


@router.post("/{segment_id}/refresh", response_model=RefreshOut)
def refresh(
    segment_id: Ident, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, _: Writer
) -> RefreshOut:
    return service.refresh_segment(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        segment_id=segment_id,
        now=runtime.clock(),
    )


@router.get("/{segment_id}/count", response_model=CountOut)
def count(
    segment_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Reader,
    live: bool = False,
) -> CountOut:
    return service.count_segment(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        segment_id=segment_id,
        now=runtime.clock(),
        principal=who,
        live=live,
    )


@router.get("/{segment_id}/members", response_model=MembersOut)
def members(
    segment_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Reader,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MembersOut:
    return service.members(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        segment_id=segment_id,
        principal=who,
        offset=offset,
        limit=limit,
    )


@router.get("/{segment_id}/export")
def export(
    segment_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Exporter,
    columns: Annotated[list[str] | None, Query()] = None,
    reveal: bool = False,
) -> StreamingResponse:
    chunks = service.export_csv(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        segment_id=segment_id,
        principal=who,
        now=runtime.clock(),
        columns=columns,
        reveal=reveal,
    )
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{segment_id}.csv"'},
    )


@router.get("/{segment_id}/runs", response_model=list[SegmentRunOut])
def runs(
    segment_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader
) -> list[SegmentRunOut]:
    return service.runs(session=session, project_id=project_id, segment_id=segment_id)


@router.get("/{segment_id}/lineage", response_model=LineageOut)
def lineage(segment_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader) -> LineageOut:
    service.get_segment(session=session, project_id=project_id, segment_id=segment_id)
    return tags.lineage(
        session=session,
        project_id=project_id,
        kind="segment",
        key=str(segment_id),
        source_id=segment_id,
    )
