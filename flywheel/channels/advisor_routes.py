"""HTTP routes under /api/v1/advisor: the advisor task inbox (data scope applies)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.channels import service
from flywheel.channels.schemas import AdvisorTaskOut, AdvisorTaskPatch
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.projects.deps import ProjectId

router = APIRouter(prefix="/api/v1/advisor", tags=["advisor"])

Advisor = Annotated[Principal, Depends(require("advisor:tasks"))]
TaskId = Annotated[int, Path(ge=1)]


@router.get("/tasks", response_model=list[AdvisorTaskOut])
def tasks(
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Advisor,
    status: Literal["open", "in_progress", "done", "cancelled"] | None = None,
    reveal: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AdvisorTaskOut]:
    return service.list_tasks(
        session=session,
        project_id=project_id,
        principal=who,
        status=status,
        reveal=reveal,
        now=runtime.clock(),
        limit=limit,
        offset=offset,
    )


@router.get("/tasks/{task_id}", response_model=AdvisorTaskOut)
def task(
    task_id: TaskId,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Advisor,
    reveal: bool = False,
) -> AdvisorTaskOut:
    return service.get_task(
        session=session,
        project_id=project_id,
        task_id=task_id,
        principal=who,
        reveal=reveal,
        now=runtime.clock(),
    )


@router.patch("/tasks/{task_id}", response_model=AdvisorTaskOut)
def update(
    task_id: TaskId,
    body: AdvisorTaskPatch,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Advisor,
) -> AdvisorTaskOut:
    return service.update_task(
        session=session,
        project_id=project_id,
        task_id=task_id,
        patch=body,
        principal=who,
        now=runtime.clock(),
    )
