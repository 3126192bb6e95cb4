"""HTTP routes under /api/v1/compliance: settings, consents, opt-outs, black/white lists.

Every change is audited (see :mod:`flywheel.compliance.service`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.compliance import service
from flywheel.compliance.schemas import (
    CHANNEL_PATTERN,
    ComplianceSettingsIn,
    ComplianceSettingsOut,
    ConsentIn,
    ConsentOut,
    CustomerCompliance,
    ListEntryIn,
    ListEntryOut,
    OptOutIn,
    OptOutOut,
)
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.projects.deps import ProjectId

router = APIRouter(prefix="/api/v1/compliance", tags=["compliance"])

Reader = Annotated[Principal, Depends(require("compliance:read"))]
Admin = Annotated[Principal, Depends(require("compliance:admin"))]
UserId = Annotated[int, Path(ge=1)]


@router.get("/settings", response_model=ComplianceSettingsOut)
def get_settings(session: SessionDep, project_id: ProjectId, _: Reader) -> ComplianceSettingsOut:
    return service.get_settings(session=session, project_id=project_id)


@router.put("/settings", response_model=ComplianceSettingsOut)
def put_settings(
    body: ComplianceSettingsIn,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Admin,
) -> ComplianceSettingsOut:
    return service.put_settings(
        session=session,
        project_id=project_id,
        settings_in=body,
        actor=who.actor,
        now=runtime.clock(),
    )


@router.get("/customers/{user_id}", response_model=CustomerCompliance)
def customer(
    user_id: UserId, session: SessionDep, project_id: ProjectId, who: Reader
) -> CustomerCompliance:
    return service.customer_compliance(
        session=session, project_id=project_id, user_id=user_id, principal=who
    )


@router.put("/customers/{user_id}/consents", response_model=ConsentOut)
def consent(
    user_id: UserId,
    body: ConsentIn,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Admin,
) -> ConsentOut:
    return service.set_consent(
        session=session,
        project_id=project_id,
        user_id=user_id,
        consent_in=body,
        actor=who.actor,
        now=runtime.clock(),
        principal=who,
    )


@router.post("/customers/{user_id}/opt-outs", response_model=OptOutOut, status_code=201)
def opt_out(
    user_id: UserId,
    body: OptOutIn,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Admin,
) -> OptOutOut:
    return service.opt_out(
        session=session,
        project_id=project_id,
        user_id=user_id,
        opt_out_in=body,
        actor=who.actor,
        now=runtime.clock(),
        principal=who,
    )


@router.delete("/customers/{user_id}/opt-outs", status_code=204)
def remove_opt_out(
    user_id: UserId,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Admin,
    channel: Annotated[str, Query(pattern=CHANNEL_PATTERN)] = "*",
    purpose: Literal["marketing", "service", "*"] = "marketing",
) -> Response:
    service.remove_opt_out(
        session=session,
        project_id=project_id,
        user_id=user_id,
        channel=channel,
        purpose=purpose,
        actor=who.actor,
        now=runtime.clock(),
        principal=who,
    )
    return Response(status_code=204)


@router.get("/lists", response_model=list[ListEntryOut])
def lists(
    session: SessionDep,
    project_id: ProjectId,
    _: Reader,
    kind: Literal["black", "white"] | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ListEntryOut]:
    return service.list_entries(
        session=session, project_id=project_id, kind=kind, limit=limit, offset=offset
    )


@router.post("/lists", response_model=ListEntryOut, status_code=201)
def add_entry(
    body: ListEntryIn, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Admin
) -> ListEntryOut:
    return service.add_entry(
        session=session, project_id=project_id, entry_in=body, actor=who.actor, now=runtime.clock()
    )


@router.delete("/lists/{entry_id}", status_code=204)
def delete_entry(
    entry_id: Annotated[int, Path(ge=1)],
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Admin,
) -> Response:
    service.delete_entry(
        session=session,
        project_id=project_id,
        entry_id=entry_id,
        actor=who.actor,
        now=runtime.clock(),
    )
    return Response(status_code=204)
