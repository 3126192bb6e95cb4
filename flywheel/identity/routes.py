"""Identity API: key rules, refused binds, bind/unbind by hand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.identity import service
from flywheel.identity.schemas import (
    BindIn,
    BindOut,
    ConflictsOut,
    KeyRulesIn,
    KeyRulesOut,
    UnbindIn,
    UnbindOut,
)
from flywheel.projects import service as projects

router = APIRouter(prefix="/api/v1/identity", tags=["identity"])

ProjectQuery = Annotated[str, Query(max_length=64, description="project name")]


@router.get("/keys", response_model=KeyRulesOut)
def get_keys(
    session: SessionDep,
    _: Annotated[Principal, Depends(require("ingest:read"))],
    project: ProjectQuery = "default",
) -> KeyRulesOut:
    project_id = projects.get_by_name(session=session, name=project).id
    rules = service.key_rules(session=session, project_id=project_id)
    return KeyRulesOut(project=project, keys=list(rules.values()))


@router.put("/keys", response_model=KeyRulesOut)
def put_keys(
    body: KeyRulesIn,
    session: SessionDep,
    _: Annotated[Principal, Depends(require("ingest:admin"))],
    project: ProjectQuery = "default",
) -> KeyRulesOut:
    project_id = projects.get_by_name(session=session, name=project).id
    rules = service.set_key_rules(session=session, project_id=project_id, rules=body.keys)
    return KeyRulesOut(project=project, keys=rules)


@router.get("/conflicts", response_model=ConflictsOut)
def get_conflicts(
    session: SessionDep,
    _: Annotated[Principal, Depends(require("ingest:read"))],
    project: ProjectQuery = "default",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ConflictsOut:
    project_id = projects.get_by_name(session=session, name=project).id
    rows, total = service.list_conflicts(
        session=session, project_id=project_id, limit=limit, offset=offset
    )
    return ConflictsOut(conflicts=rows, total=total)


@router.post("/bind", response_model=BindOut)
def bind(
    body: BindIn,
    session: SessionDep,
    runtime: RuntimeDep,
    _: Annotated[Principal, Depends(require("customers:write"))],
    project: ProjectQuery = "default",
) -> BindOut:
    project_id = projects.get_by_name(session=session, name=project).id
    result = service.bind(
        session=session, project_id=project_id, identities=body.identities, now=runtime.clock()
    )
    return BindOut(user_id=result.user_id, bound=result.bound, conflicts=result.conflicts)


@router.post("/unbind", response_model=UnbindOut)
def unbind(
    body: UnbindIn,
    session: SessionDep,
    _: Annotated[Principal, Depends(require("customers:write"))],
    project: ProjectQuery = "default",
) -> UnbindOut:
    project_id = projects.get_by_name(session=session, name=project).id
    user_id = service.unbind(session=session, project_id=project_id, key=body.key, value=body.value)
    return UnbindOut(key=body.key, user_id=user_id, unbound=True)
