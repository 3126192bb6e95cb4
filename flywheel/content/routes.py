"""Content API: the checker, the phrase list, materials and templates, review, preview."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Path, Query, Response, UploadFile

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.content import service, storage
from flywheel.content.schemas import (
    CheckIn,
    CheckOut,
    ContentEdit,
    ContentIn,
    ContentOut,
    DecisionIn,
    ExportedContent,
    ImportIn,
    ImportReport,
    MediaOut,
    PhraseIn,
    PhraseOut,
    PreviewIn,
    RenderedMessage,
    ReviewEventOut,
    VersionOut,
)
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.projects.deps import ProjectId

router = APIRouter(prefix="/api/v1/content", tags=["content"])

Reader = Annotated[Principal, Depends(require("content:read"))]
Writer = Annotated[Principal, Depends(require("content:write"))]
Approver = Annotated[Principal, Depends(require("content:approve"))]
Ident = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/check", response_model=CheckOut)
def check(
    body: CheckIn, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, _: Reader
) -> CheckOut:
    findings = service.check_text(
        session=session,
        project_id=project_id,
        text=body.text,
        now=runtime.clock(),
        product_card=body.product_card,
        risk_level=body.risk_level,
    )
    return CheckOut(findings=findings)


@router.get("/phrases", response_model=list[PhraseOut])
def list_phrases(
    session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, _: Reader
) -> list[PhraseOut]:
    return service.list_phrases(session=session, project_id=project_id, now=runtime.clock())


@router.post("/phrases", response_model=PhraseOut, status_code=201)
def add_phrase(
    body: PhraseIn, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Approver
) -> PhraseOut:
    return service.add_phrase(
        session=session, project_id=project_id, phrase_in=body, actor=who.actor, now=runtime.clock()
    )


@router.delete("/phrases/{phrase_id}", status_code=204)
def delete_phrase(
    phrase_id: Ident, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Approver
) -> Response:
    service.delete_phrase(
        session=session,
        project_id=project_id,
        phrase_id=phrase_id,
        actor=who.actor,
        now=runtime.clock(),
    )
    return Response(status_code=204)


@router.get("/reviews", response_model=list[VersionOut])
def review_queue(
    session: SessionDep,
    project_id: ProjectId,
    _: Reader,
    status: Literal["draft", "submitted", "approved", "rejected"] = "submitted",
) -> list[VersionOut]:
    return service.review_queue(session=session, project_id=project_id, status=status)


@router.get("/items", response_model=list[ContentOut])
def list_items(
    session: SessionDep,
    project_id: ProjectId,
    _: Reader,
    q: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
) -> list[ContentOut]:
    return service.list_content(session=session, project_id=project_id, q=q, tag=tag)


@router.post("/items", response_model=ContentOut, status_code=201)
def create_item(
    body: ContentIn, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Writer
) -> ContentOut:
    return service.create_content(
        session=session, project_id=project_id, content_in=body, principal=who, now=runtime.clock()
    )


@router.get("/items/{content_id}", response_model=ContentOut)
def get_item(
    content_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader
) -> ContentOut:
    return service.get_content(session=session, project_id=project_id, content_id=content_id)


@router.patch("/items/{content_id}", response_model=ContentOut)
def edit_item(
    content_id: Ident,
    body: ContentEdit,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Writer,
) -> ContentOut:
    return service.edit_content(
        session=session,
        project_id=project_id,
        content_id=content_id,
        edit=body,
        principal=who,
        now=runtime.clock(),
    )


@router.post("/items/{content_id}/submit", response_model=ContentOut)
def submit(
    content_id: Ident, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Writer
) -> ContentOut:
    return service.submit(
        session=session,
        project_id=project_id,
        content_id=content_id,
        principal=who,
        now=runtime.clock(),
    )


@router.post("/items/{content_id}/approve", response_model=ContentOut)
def approve(
    content_id: Ident,
    body: DecisionIn,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Approver,
) -> ContentOut:
    return service.decide(
        session=session,
        project_id=project_id,
        content_id=content_id,
        principal=who,
        approve=True,
        comment=body.comment,
        now=runtime.clock(),
    )


@router.post("/items/{content_id}/reject", response_model=ContentOut)
def reject(
    content_id: Ident,
    body: DecisionIn,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Approver,
) -> ContentOut:
    return service.decide(
        session=session,
        project_id=project_id,
        content_id=content_id,
        principal=who,
        approve=False,
        comment=body.comment,
        now=runtime.clock(),
    )


@router.get("/items/{content_id}/history", response_model=list[ReviewEventOut])
def history(
    content_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader
) -> list[ReviewEventOut]:
    return service.history(session=session, project_id=project_id, content_id=content_id)


@router.post("/items/{content_id}/preview", response_model=RenderedMessage)
def preview(
    content_id: Ident,
    body: PreviewIn,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Reader,
) -> RenderedMessage:
    return service.preview(
        session=session,
        project_id=project_id,
        content_id=content_id,
        principal=who,
        user_id=body.user_id,
        reveal=body.reveal,
        now=runtime.clock(),
        draft=body.draft,
    )


@router.post("/import", response_model=ImportReport)
def import_items(
    body: ImportIn, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Writer
) -> ImportReport:
    return service.import_content(
        session=session,
        project_id=project_id,
        items=body.items,
        actor=who.actor,
        author_user_id=who.user_id,
        now=runtime.clock(),
    )


@router.get("/export", response_model=list[ExportedContent])
def export_items(
    session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Reader
) -> list[ExportedContent]:
    return service.export_content(
        session=session, project_id=project_id, actor=who.actor, now=runtime.clock()
    )


@router.post("/media", response_model=MediaOut, status_code=201)
def upload_image(
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: Writer,
    file: Annotated[UploadFile, File(description="PNG, JPEG, GIF or WebP image")],
) -> MediaOut:
    data = file.file.read(storage.MAX_IMAGE_BYTES + 1)
    name = storage.media_store(runtime.settings).put(project_id=project_id, data=data)
    return MediaOut(name=name, size=len(data), url=f"/api/v1/content/media/{name}")


@router.get("/media/{name}")
def get_image(
    name: Annotated[str, Path(max_length=80)], runtime: RuntimeDep, project_id: ProjectId, _: Reader
) -> Response:
    data, content_type = storage.media_store(runtime.settings).get(project_id=project_id, name=name)
    return Response(content=data, media_type=content_type)


@router.delete("/media/{name}", status_code=204)
def delete_image(
    name: Annotated[str, Path(max_length=80)],
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Writer,
) -> Response:
    service.delete_media(
        session=session,
        store=storage.media_store(runtime.settings),
        project_id=project_id,
        name=name,
        actor=who.actor,
        now=runtime.clock(),
    )
    return Response(status_code=204)
