"""Playbooks: list them, preview what one would create, apply it in one transaction.

Apply creates, in this order, the playbook's tags, its segment (dynamic), its content items
(drafts: version 1 in ``draft``) and its journey (``draft``), then writes one audit entry
``playbook.applied``. It runs inside a SAVEPOINT: any failure (a rule the project's schema
refuses, a name taken meanwhile …) leaves nothing of it behind, and the error is raised.

Names: when any name the playbook would create is taken in the project (tag, segment, content
or journey), every name gets the same suffix ``n`` (tags ``<name>_n``, titles ``<title> (n)``),
the smallest n ≥ 2 with all names free, so applying a playbook twice gives a second, separate
set of drafts. Nothing existing is ever changed by an apply.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import structlog
from pydantic import ValidationError
from sqlalchemy.orm import Session

from flywheel.audit import service as audit
from flywheel.auth.schemas import Principal
from flywheel.content import service as content_service
from flywheel.core.errors import Conflict, FlywheelError, InvalidInput, NotFound
from flywheel.journeys import service as journey_service
from flywheel.journeys.schemas import JourneyDefinition
from flywheel.journeys.validation import structure_problems
from flywheel.playbooks.library import PLAYBOOKS, Names, Params, Plan, Playbook
from flywheel.playbooks.schemas import (
    AppliedOut,
    ContentPreview,
    PlaybookOut,
    PlaybookSummary,
    PreviewOut,
    SegmentPreview,
)
from flywheel.segments import service as segment_service
from flywheel.tags import service as tag_service
from flywheel.warehouse import Warehouse

log = structlog.get_logger(__name__)

SEGMENT_REF = "@segment"
CONTENT_REF = "@content:"
MAX_SUFFIX = 100


def _playbook(name: str) -> Playbook:
    playbook = PLAYBOOKS.get(name)
    if playbook is None:
        raise NotFound(f"unknown playbook {name!r} (known: {', '.join(PLAYBOOKS)})")
    return playbook


def _summary(playbook: Playbook) -> dict[str, Any]:
    plan = playbook.build(playbook.params(), Names())
    return {
        "name": playbook.name,
        "title_zh": playbook.title_zh,
        "title_en": playbook.title_en,
        "description": playbook.description,
        "creates": {
            "tags": len(plan.tags),
            "segments": 1,
            "content": len(plan.content),
            "journeys": 1,
        },
    }


def list_playbooks() -> list[PlaybookSummary]:
    """The gallery: every built-in playbook with what it creates."""
    return [PlaybookSummary(**_summary(p)) for p in PLAYBOOKS.values()]


def get_playbook(*, name: str) -> PlaybookOut:
    """One playbook with the JSON schema of its parameters; :class:`NotFound` when unknown."""
    playbook = _playbook(name)
    return PlaybookOut(**_summary(playbook), parameters=playbook.params.model_json_schema())


def parse_params(playbook: Playbook, raw: dict[str, Any]) -> Params:
    """Validated parameters (defaults filled); :class:`InvalidInput` naming the bad one."""
    try:
        return playbook.params.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "parameters"
        raise InvalidInput(
            f"parameters.{where}: {error['msg']}",
            detail={"errors": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]},
        ) from None


def _taken(session: Session, project_id: int, plan: Plan) -> bool:
    for tag in plan.tags:
        try:
            tag_service.get_by_name(session=session, project_id=project_id, name=tag.name)
        except NotFound:
            continue
        return True
    for item in plan.content.values():
        found = content_service.list_content(session=session, project_id=project_id, q=item.name)
        if any(existing.name == item.name for existing in found):
            return True
    segments = {
        s.name for s in segment_service.list_segments(session=session, project_id=project_id)
    }
    if plan.segment.name in segments:
        return True
    journeys = {
        j.name for j in journey_service.list_journeys(session=session, project_id=project_id)
    }
    return str(plan.journey["name"]) in journeys


def plan_for(
    *, session: Session, project_id: int, playbook: Playbook, params: Params
) -> tuple[int, Plan]:
    """The plan with the smallest suffix whose names are all free in the project."""
    for n in range(1, MAX_SUFFIX + 1):
        plan = playbook.build(params, Names(n))
        if not _taken(session, project_id, plan):
            return n, plan
    raise Conflict(f"playbook {playbook.name!r} was applied {MAX_SUFFIX} times already")


def resolve(value: Any, segment_id: int, content_ids: dict[str, int]) -> Any:
    """``value`` with ``"@segment"`` / ``"@content:<key>"`` replaced by the created ids."""
    if isinstance(value, dict):
        return {k: resolve(v, segment_id, content_ids) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, segment_id, content_ids) for v in value]
    if value == SEGMENT_REF:
        return segment_id
    if isinstance(value, str) and value.startswith(CONTENT_REF):
        return content_ids[value.removeprefix(CONTENT_REF)]
    return value


def _content_text(subject: str, body: str) -> str:
    return "\n".join([subject, body])


def preview(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    name: str,
    parameters: dict[str, Any],
    principal: Principal | None,
    now: datetime,
) -> PreviewOut:
    """What :func:`apply` would create with these parameters, without creating anything:
    suffixed names, the segment's size now (in the principal's data scope), the checker's
    findings on each text and the journey's structural problems."""
    playbook = _playbook(name)
    params = parse_params(playbook, parameters)
    suffix, plan = plan_for(
        session=session, project_id=project_id, playbook=playbook, params=params
    )
    size: int | None = None
    warnings: list[str] = []
    try:
        counted = segment_service.preview(
            session=session,
            warehouse=warehouse,
            project_id=project_id,
            rule=plan.segment.rule or {},
            now=now,
            principal=principal,
            sample=0,
        )
        size, warnings = counted.count, counted.warnings
    except FlywheelError as exc:
        warnings = [f"the segment cannot be counted before the apply: {exc.message}"]
    except duckdb.Error as exc:
        # e.g. a rule on properties the project has no data for yet; shown, never hidden.
        log.warning("playbook_preview_count_failed", playbook=name, error=str(exc)[:200])
        warnings = [f"the segment cannot be counted yet: {str(exc)[:200]}"]
    contents = [
        ContentPreview(
            key=key,
            content=item,
            findings=content_service.check_text(
                session=session,
                project_id=project_id,
                text=_content_text(item.subject, item.body),
                now=now,
            ),
        )
        for key, item in plan.content.items()
    ]
    placeholder_ids = dict.fromkeys(plan.content, 1)
    definition = JourneyDefinition.model_validate(resolve(plan.journey, 1, placeholder_ids))
    return PreviewOut(
        playbook=playbook.name,
        parameters=params.model_dump(mode="json"),
        suffix=suffix,
        tags=plan.tags,
        segment=SegmentPreview(segment=plan.segment, estimated_size=size, warnings=warnings),
        content=contents,
        journey=plan.journey,
        problems=structure_problems(definition),
    )


def apply(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    name: str,
    parameters: dict[str, Any],
    principal: Principal,
    now: datetime,
) -> AppliedOut:
    """Create the playbook's tags, segment, content (drafts) and journey (draft) at once.

    All or nothing (a SAVEPOINT): on any error nothing is left and the error is raised
    (:class:`InvalidInput` for bad parameters, the domain's own error otherwise). Audited as
    ``playbook.applied``. Nothing is submitted, approved or published: those stay human steps.
    """
    playbook = _playbook(name)
    params = parse_params(playbook, parameters)
    with session.begin_nested():
        suffix, plan = plan_for(
            session=session, project_id=project_id, playbook=playbook, params=params
        )
        tag_ids = [
            tag_service.create_tag(
                session=session, project_id=project_id, tag_in=tag, actor=principal.actor, now=now
            ).id
            for tag in plan.tags
        ]
        segment = segment_service.create_segment(
            session=session,
            warehouse=warehouse,
            project_id=project_id,
            segment_in=plan.segment,
            actor=principal.actor,
            now=now,
        )
        content_ids = {
            key: content_service.create_content(
                session=session,
                project_id=project_id,
                content_in=item,
                principal=principal,
                now=now,
            ).id
            for key, item in plan.content.items()
        }
        definition = journey_service.parse_definition(
            resolve(plan.journey, segment.id, content_ids)
        )
        created = journey_service.create_journey(
            session=session,
            project_id=project_id,
            definition=definition,
            principal=principal,
            now=now,
        )
        applied = AppliedOut(
            playbook=playbook.name,
            parameters=params.model_dump(mode="json"),
            suffix=suffix,
            tag_ids=tag_ids,
            segment_id=segment.id,
            content_ids=content_ids,
            journey_id=created.id,
            journey_status=created.status,
        )
        audit.record(
            session=session,
            actor=principal.actor,
            action="playbook.applied",
            target=f"playbook:{playbook.name}",
            detail=applied.model_dump(mode="json"),
            project_id=project_id,
            now=now,
        )
    log.info("playbook_applied", playbook=playbook.name, project_id=project_id, suffix=suffix)
    return applied
