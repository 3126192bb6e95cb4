"""Journeys API: CRUD, validation, lifecycle, export/import, API triggers, live statistics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Body, Depends, Path, Response
from sqlalchemy.orm import Session

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.core.errors import NotFound
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.journeys import schemas, service
from flywheel.journeys.engine import Engine
from flywheel.journeys.schemas import (
    JourneyDefinition,
    JourneyOut,
    JourneyStats,
    JourneySummary,
    PublishDecisionIn,
    PublishIn,
    TriggerIn,
    TriggerOut,
    ValidationOut,
    VersionOut,
)
from flywheel.journeys.validation import FIXED_PORTS, NEXT, blocking
from flywheel.projects.deps import ProjectId
from flywheel.recommend import service as recommend_service
from flywheel.runtime import Runtime

router = APIRouter(prefix="/api/v1/journeys", tags=["journeys"])

Reader = Annotated[Principal, Depends(require("journeys:read"))]
Writer = Annotated[Principal, Depends(require("journeys:write"))]
Publisher = Annotated[Principal, Depends(require("journeys:publish"))]
Approver = Annotated[Principal, Depends(require("journeys:approve"))]
Ident = Annotated[int, Path(ge=1, le=2**31 - 1)]

_CATEGORIES = {
    "entry": schemas.ENTRY_TYPES,
    "flow": {"delay", "wait_event", "condition", "split", "tag_branch", "goal"},
    "action": {"send", "webhook", "recommend", "set_tag", "set_property", "advisor_task"},
    "end": {"exit"},
}


@router.get("/node-types")
def node_types(_: Reader) -> list[dict[str, Any]]:
    """Every node type with its exits and the JSON schema of its settings (canvas palette)."""
    union = get_args(get_args(schemas.Node)[0])
    out = []
    for model in union:
        node_type = model.model_fields["type"].annotation.__args__[0]
        category = next(c for c, types in _CATEGORIES.items() if node_type in types)
        if node_type in FIXED_PORTS:
            ports: list[str] | str = list(FIXED_PORTS[node_type])
        elif node_type == "split":
            ports = "branches[].port (a branch named 'control' is the control group)"
        elif node_type == "tag_branch":
            ports = "cases[].port, else"
        else:
            ports = [NEXT]
        out.append(
            {
                "type": node_type,
                "category": category,
                "ports": ports,
                "description": (model.__doc__ or "").strip(),
                "schema": model.model_json_schema(),
            }
        )
    return out


@router.get("", response_model=list[JourneySummary])
def list_journeys(session: SessionDep, project_id: ProjectId, _: Reader) -> list[JourneySummary]:
    return service.list_journeys(session=session, project_id=project_id)


@router.post("", response_model=JourneyOut, status_code=201)
def create_journey(
    body: JourneyDefinition,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Writer,
) -> JourneyOut:
    return service.create_journey(
        session=session, project_id=project_id, definition=body, principal=who, now=runtime.clock()
    )


@router.post("/import", response_model=JourneyOut, status_code=201)
def import_journey(
    body: JourneyDefinition,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Writer,
) -> JourneyOut:
    """Import an exported definition as a new draft."""
    return service.create_journey(
        session=session, project_id=project_id, definition=body, principal=who, now=runtime.clock()
    )


@router.post("/validate", response_model=ValidationOut)
def validate_definition(
    body: JourneyDefinition,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: Reader,
) -> ValidationOut:
    problems = service.check_definition(
        session=session, project_id=project_id, definition=body, now=runtime.clock()
    )
    return ValidationOut(valid=not blocking(problems), problems=problems)


@router.get("/using-content/{content_id}")
def using_content(
    content_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader
) -> list[dict[str, Any]]:
    """Journeys that send a content item (its usage)."""
    return service.journeys_using_content(
        session=session, project_id=project_id, content_id=content_id
    )


@router.get("/{journey_id}", response_model=JourneyOut)
def get_journey(
    journey_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader
) -> JourneyOut:
    return service.get_journey(session=session, project_id=project_id, journey_id=journey_id)


@router.put("/{journey_id}", response_model=JourneyOut)
def update_journey(
    journey_id: Ident,
    body: JourneyDefinition,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Writer,
) -> JourneyOut:
    return service.update_journey(
        session=session,
        project_id=project_id,
        journey_id=journey_id,
        definition=body,
        actor=who.actor,
        now=runtime.clock(),
    )


@router.delete("/{journey_id}", status_code=204)
def delete_journey(
    journey_id: Ident, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Writer
) -> Response:
    service.delete_journey(
        session=session,
        project_id=project_id,
        journey_id=journey_id,
        actor=who.actor,
        now=runtime.clock(),
    )
    return Response(status_code=204)


@router.post("/{journey_id}/validate", response_model=ValidationOut)
def validate_draft(
    journey_id: Ident, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, _: Reader
) -> ValidationOut:
    journey = service.get_journey(session=session, project_id=project_id, journey_id=journey_id)
    definition = service.parse_definition(journey.definition)
    problems = service.check_definition(
        session=session, project_id=project_id, definition=definition, now=runtime.clock()
    )
    return ValidationOut(valid=not blocking(problems), problems=problems)


@router.post(
    "/{journey_id}/publish",
    response_model=JourneyOut,
    responses={202: {"description": "four-eyes: the request awaits a second person"}},
)
def publish(
    journey_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Publisher,
    response: Response,
    body: Annotated[PublishIn | None, Body()] = None,
) -> JourneyOut:
    """Publish the draft — or, when the project's compliance settings ask for four-eyes
    publishing, record a request for a second person to approve (202)."""
    in_flight = (body or PublishIn()).in_flight
    if service.review_required(session=session, project_id=project_id):
        response.status_code = 202
        return service.request_publish(
            session=session,
            project_id=project_id,
            journey_id=journey_id,
            principal=who,
            now=runtime.clock(),
            in_flight=in_flight,
        )
    return service.publish(
        session=session,
        project_id=project_id,
        journey_id=journey_id,
        actor=who.actor,
        now=runtime.clock(),
        in_flight=in_flight,
    )


@router.post("/{journey_id}/publish/approve", response_model=JourneyOut)
def approve_publish(
    journey_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Approver,
    body: Annotated[PublishDecisionIn | None, Body()] = None,
) -> JourneyOut:
    """The second person publishes a requested journey (not its author, not who asked)."""
    decision = body or PublishDecisionIn()
    return service.approve_publish(
        session=session,
        project_id=project_id,
        journey_id=journey_id,
        principal=who,
        now=runtime.clock(),
        draft_sha=decision.draft_sha,
        comment=decision.comment,
    )


@router.post("/{journey_id}/publish/reject", response_model=JourneyOut)
def reject_publish(
    journey_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Approver,
    body: Annotated[PublishDecisionIn | None, Body()] = None,
) -> JourneyOut:
    """Turn a publication request down; the draft stays."""
    return service.reject_publish(
        session=session,
        project_id=project_id,
        journey_id=journey_id,
        principal=who,
        now=runtime.clock(),
        comment=(body or PublishDecisionIn()).comment,
    )


def _transition(
    step: Callable[..., JourneyOut],
    journey_id: int,
    session: Session,
    runtime: Runtime,
    project_id: int,
    who: Principal,
) -> JourneyOut:
    """Pause, resume or stop: the same call shape for each lifecycle step."""
    return step(
        session=session,
        project_id=project_id,
        journey_id=journey_id,
        actor=who.actor,
        now=runtime.clock(),
    )


@router.post("/{journey_id}/pause", response_model=JourneyOut)
def pause(
    journey_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Publisher,
) -> JourneyOut:
    return _transition(service.pause, journey_id, session, runtime, project_id, who)


@router.post("/{journey_id}/resume", response_model=JourneyOut)
def resume(
    journey_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Publisher,
) -> JourneyOut:
    return _transition(service.resume, journey_id, session, runtime, project_id, who)


@router.post("/{journey_id}/stop", response_model=JourneyOut)
def stop(
    journey_id: Ident,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Publisher,
) -> JourneyOut:
    return _transition(service.stop, journey_id, session, runtime, project_id, who)


@router.get("/{journey_id}/versions", response_model=list[VersionOut])
def versions(
    journey_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader
) -> list[VersionOut]:
    return service.list_versions(session=session, project_id=project_id, journey_id=journey_id)


@router.get("/{journey_id}/export")
def export_journey(
    journey_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader
) -> dict[str, Any]:
    """The draft definition as JSON (what ``POST /import`` takes)."""
    return service.get_journey(
        session=session, project_id=project_id, journey_id=journey_id
    ).definition


@router.get("/{journey_id}/stats", response_model=JourneyStats)
def stats(journey_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader) -> JourneyStats:
    return service.stats(session=session, project_id=project_id, journey_id=journey_id)


@router.post("/{journey_id}/trigger", response_model=TriggerOut)
def trigger(
    journey_id: Ident,
    body: TriggerIn,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: Publisher,
) -> TriggerOut:
    """Enter customers through the journey's API entry node (re-entry rules apply)."""
    users = list(body.user_ids)
    unknown = 0
    for key, value in body.identities:
        try:
            users.append(
                recommend_service.resolve_user(
                    session=session, project_id=project_id, key=key, value=value
                )
            )
        except NotFound:
            unknown += 1
    entered, skipped = Engine(runtime).trigger(
        session=session,
        project_id=project_id,
        journey_id=journey_id,
        user_ids=users,
        properties=body.properties,
        now=runtime.clock(),
    )
    return TriggerOut(entered=entered, skipped=skipped + unknown)
