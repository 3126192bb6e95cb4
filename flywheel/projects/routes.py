from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.http.deps import SessionDep
from flywheel.projects import service
from flywheel.projects.schemas import ProjectIn, ProjectOut

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.get("", response_model=list[ProjectOut])
def list_projects(
    session: SessionDep, _: Annotated[Principal, Depends(require("projects:read"))]
) -> list[ProjectOut]:
    return service.list_projects(session=session)


@router.post("", response_model=ProjectOut, status_code=201)
def create_project(
    body: ProjectIn,
    session: SessionDep,
    _: Annotated[Principal, Depends(require("projects:admin"))],
) -> ProjectOut:
    return service.create(session=session, project_in=body)
