"""Journeys: create, edit, validate, publish (immutable versions), pause, resume, stop, export,
import, API triggers and live statistics. The engine that moves customers is ``engine.py``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from flywheel.audit import service as audit
from flywheel.audit.models import AuditEntry
from flywheel.auth.schemas import Principal
from flywheel.auth.service import SeparationOfDuties, ensure_not_author
from flywheel.channels import catalog as channel_catalog
from flywheel.channels import outbox
from flywheel.compliance import service as compliance
from flywheel.content import service as content_service
from flywheel.content import templates
from flywheel.core.clock import utc_naive
from flywheel.core.errors import Conflict, FlywheelError, Forbidden, InvalidInput, NotFound
from flywheel.ingest import feed
from flywheel.journeys.models import Journey, JourneyNodeCount, JourneyState, JourneyVersion
from flywheel.journeys.schemas import (
    AdvisorTask,
    Condition,
    ContentRef,
    EntryEvent,
    EntryNotDone,
    EntrySegment,
    EntrySegmentChange,
    Goal,
    InlineContent,
    JourneyDefinition,
    JourneyOut,
    JourneyStats,
    JourneySummary,
    NodeStats,
    Problem,
    PublishRequestOut,
    Recommend,
    Send,
    SetTag,
    TagBranch,
    VersionOut,
    WaitEvent,
    Webhook,
)
from flywheel.journeys.validation import blocking, build_graph, validate
from flywheel.recommend import service as recommend_service
from flywheel.rules.schema import referenced_tags
from flywheel.segments import service as segment_service
from flywheel.segments.service import ENTER_EVENT, LEAVE_EVENT
from flywheel.tags import service as tag_service

SUBSCRIBER = "journeys"
LIVE_STATES = ("live", "draining")
IN_FLIGHT = ("active", "waiting")


class InvalidJourney(FlywheelError):
    """Publishing refused: the problems say where (422)."""

    status = 422
    code = "invalid_journey"

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0].message if problems else "invalid journey"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"the journey cannot be published: {first}{more}",
            detail={"problems": [p.model_dump() for p in problems]},
        )


# -- reference checks ----------------------------------------------------------------------------
def reference_checks(
    session: Session, project_id: int, now: datetime
) -> list[Callable[[JourneyDefinition], list[Problem]]]:
    """Checks that need the project: referenced objects exist, texts are compliant."""

    def check(definition: JourneyDefinition) -> list[Problem]:
        problems: list[Problem] = []
        channels = set(channel_catalog.channel_names())
        for node in definition.nodes:
            problems.extend(
                _node_references(session, project_id, node, channels, definition.purpose, now)
            )
        return problems

    return [check]


class ReviewRequired(Forbidden):
    """Publishing needs a second person's approval (compliance setting)."""

    code = "review_required"


def _missing(node_id: str, what: str) -> Problem:
    return Problem(code="invalid_reference", message=f"{what} does not exist", node=node_id)


def _node_references(
    session: Session, project_id: int, node: Any, channels: set[str], purpose: str, now: datetime
) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(node, EntrySegment | EntrySegmentChange):
        try:
            segment_service.get_segment(
                session=session, project_id=project_id, segment_id=node.segment_id
            )
        except NotFound:
            problems.append(_missing(node.id, f"segment {node.segment_id}"))
        if isinstance(node, EntrySegment) and node.cron:
            problems.extend(_cron_problem(node.id, node.cron))
    elif isinstance(node, TagBranch | SetTag):
        problems.extend(_tag_problems(session, project_id, node.id, {node.tag}))
    elif isinstance(node, Condition):
        problems.extend(_tag_problems(session, project_id, node.id, referenced_tags(node.rule)))
    elif isinstance(node, Recommend):
        try:
            recommend_service.get_scene(session=session, project_id=project_id, name=node.scene)
        except NotFound:
            problems.append(_missing(node.id, f"recommendation scene {node.scene!r}"))
    elif isinstance(node, Send | Webhook):
        channel = node.channel if isinstance(node, Send) else "webhook"
        for name in (channel, node.fallback_channel if isinstance(node, Send) else None):
            if name is not None and name not in channels:
                problems.append(
                    Problem(
                        code="unknown_channel",
                        message=f"channel {name!r} is not available "
                        f"(available: {', '.join(sorted(channels)) or 'none'})",
                        node=node.id,
                    )
                )
        risk = node.product_risk_level if isinstance(node, Send) else None
        if isinstance(node.content, ContentRef):
            problems.extend(_content_problems(session, project_id, node.id, node.content))
        elif isinstance(node.content, InlineContent):
            problems.extend(
                _inline_problems(session, project_id, node.id, node.content, risk, purpose, now)
            )
    elif isinstance(node, AdvisorTask):
        text = InlineContent(text=f"{node.title}\n{node.script}")
        problems.extend(_inline_problems(session, project_id, node.id, text, None, purpose, now))
    return problems


def _cron_problem(node_id: str, cron: str) -> list[Problem]:
    from croniter import croniter

    if croniter.is_valid(cron) and len(cron.split()) == 5:
        return []
    return [Problem(code="invalid_cron", message=f"{cron!r} is not a 5-field cron", node=node_id)]


def _tag_problems(
    session: Session, project_id: int, node_id: str, names: set[str]
) -> list[Problem]:
    problems = []
    for name in sorted(names):
        try:
            tag_service.get_by_name(session=session, project_id=project_id, name=name)
        except NotFound:
            problems.append(_missing(node_id, f"tag {name!r}"))
    return problems


def _content_problems(
    session: Session, project_id: int, node_id: str, ref: ContentRef
) -> list[Problem]:
    try:
        item = content_service.get_content(
            session=session, project_id=project_id, content_id=ref.content_id
        )
    except NotFound:
        return [_missing(node_id, f"content {ref.content_id}")]
    if item.approved_version_id is None:
        return [
            Problem(
                code="warn_content_not_approved",
                message=f"content {item.name!r} has no approved version yet: "
                "its messages are blocked until compliance approves it",
                node=node_id,
            )
        ]
    return []


def _inline_problems(
    session: Session,
    project_id: int,
    node_id: str,
    content: InlineContent,
    risk_level: int | None,
    purpose: str,
    now: datetime,
) -> list[Problem]:
    """Template syntax and the claims checker. Prohibited claims always block; a missing risk
    warning blocks marketing (a product promotion) and only warns on a service notice."""
    problems: list[Problem] = []
    parts = [content.text, content.subject, content.html, content.title, *content.fields.values()]
    for part in (p for p in parts if p):
        try:
            templates.validate(part)
        except InvalidInput as exc:
            problems.append(Problem(code="invalid_template", message=exc.message, node=node_id))
    text = "\n".join(p for p in parts if p)
    findings = content_service.check_text(
        session=session,
        project_id=project_id,
        text=text,
        now=now,
        product_card=risk_level is not None,
        risk_level=f"R{risk_level}" if risk_level is not None else None,
    )
    for finding in findings:
        promotional = finding.rule != "prohibited_claim"
        code = "prohibited_claims"
        if promotional and purpose == "service" and risk_level is None:
            code = "warn_risk_warning"
        problems.append(
            Problem(
                code=code,
                message=f"{finding.rule}: {finding.phrase!r} at {finding.start}–{finding.end}",
                node=node_id,
            )
        )
    return problems


def check_definition(
    *, session: Session, project_id: int, definition: JourneyDefinition, now: datetime
) -> list[Problem]:
    """Every problem of ``definition`` in this project (structure and references)."""
    return validate(definition, reference_checks(session, project_id, now))


def parse_definition(data: dict[str, Any]) -> JourneyDefinition:
    """A stored or imported definition, or :class:`InvalidInput` naming the first error."""
    try:
        return JourneyDefinition.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise InvalidInput(f"{where}: {error['msg']}") from exc


# -- CRUD --------------------------------------------------------------------------------------
def _get(session: Session, project_id: int, journey_id: int) -> Journey:
    journey = session.get(Journey, journey_id)
    if journey is None or journey.project_id != project_id:
        raise NotFound(f"journey {journey_id} not found")
    return journey


def _version_out(version: JourneyVersion | None) -> VersionOut | None:
    if version is None:
        return None
    return VersionOut(
        id=version.id,
        number=version.number,
        state=version.state,
        published_by=version.published_by,
        published_at=version.published_at,
    )


def _out(session: Session, journey: Journey) -> JourneyOut:
    live = session.get(JourneyVersion, journey.live_version_id) if journey.live_version_id else None
    return JourneyOut(
        id=journey.id,
        name=journey.name,
        status=journey.status,
        purpose=str(journey.draft.get("purpose", "marketing")),
        definition=journey.draft,
        live_version=_version_out(live),
        publish_request=(
            PublishRequestOut.model_validate(journey.publish_request)
            if journey.publish_request
            else None
        ),
        created_by=journey.created_by,
        created_at=journey.created_at,
        updated_at=journey.updated_at,
    )


def _dump(definition: JourneyDefinition) -> dict[str, Any]:
    return definition.model_dump(mode="json", by_alias=True, exclude_none=True)


def _check_name(session: Session, project_id: int, name: str, journey_id: int | None) -> None:
    found = session.scalar(
        select(Journey.id).where(Journey.project_id == project_id, Journey.name == name)
    )
    if found is not None and found != journey_id:
        raise Conflict(f"a journey named {name!r} already exists")


def create_journey(
    *,
    session: Session,
    project_id: int,
    definition: JourneyDefinition,
    principal: Principal | None,
    now: datetime,
    actor: str | None = None,
) -> JourneyOut:
    """Save a new journey as a draft (it may be incomplete; publishing validates it)."""
    _check_name(session, project_id, definition.name, None)
    who = actor or (principal.actor if principal else "system")
    journey = Journey(
        project_id=project_id,
        name=definition.name,
        status="draft",
        draft=_dump(definition),
        author_user_id=principal.user_id if principal else None,
        created_by=who,
        created_at=utc_naive(now),
        updated_at=utc_naive(now),
    )
    session.add(journey)
    session.flush()
    audit.record(
        session=session,
        actor=who,
        action="journey.created",
        target=f"journey:{journey.id}",
        detail={"name": journey.name},
        project_id=project_id,
        now=now,
    )
    return _out(session, journey)


def update_journey(
    *,
    session: Session,
    project_id: int,
    journey_id: int,
    definition: JourneyDefinition,
    actor: str,
    now: datetime,
) -> JourneyOut:
    """Replace the draft; the live version keeps running until the next publish."""
    journey = _get(session, project_id, journey_id)
    _check_name(session, project_id, definition.name, journey.id)
    journey.name = definition.name
    draft = _dump(definition)
    withdrawn = journey.publish_request is not None and _draft_sha(draft) != (
        journey.publish_request or {}
    ).get("draft_sha")
    journey.draft = draft
    journey.updated_at = utc_naive(now)
    if withdrawn:
        journey.publish_request = None  # the request was for the draft as it was
    audit.record(
        session=session,
        actor=actor,
        action="journey.edited",
        target=f"journey:{journey.id}",
        detail={"name": journey.name, **({"publish_request_withdrawn": True} if withdrawn else {})},
        project_id=project_id,
        now=now,
    )
    session.flush()
    return _out(session, journey)


def delete_journey(
    *, session: Session, project_id: int, journey_id: int, actor: str, now: datetime
) -> None:
    """Delete a never-published draft. Published journeys are stopped, not deleted (their
    history stays for reports and audit)."""
    journey = _get(session, project_id, journey_id)
    has_versions = session.scalar(
        select(func.count())
        .select_from(JourneyVersion)
        .where(JourneyVersion.journey_id == journey.id)
    )
    if has_versions:
        raise Conflict("a journey that was published cannot be deleted; stop it instead")
    session.delete(journey)
    audit.record(
        session=session,
        actor=actor,
        action="journey.deleted",
        target=f"journey:{journey_id}",
        detail={"name": journey.name},
        project_id=project_id,
        now=now,
    )
    session.flush()


def get_journey(*, session: Session, project_id: int, journey_id: int) -> JourneyOut:
    return _out(session, _get(session, project_id, journey_id))


def list_journeys(*, session: Session, project_id: int) -> list[JourneySummary]:
    journeys = session.scalars(
        select(Journey).where(Journey.project_id == project_id).order_by(Journey.id)
    ).all()
    in_flight = dict(
        session.execute(
            select(JourneyState.journey_id, func.count())
            .where(JourneyState.project_id == project_id, JourneyState.status.in_(IN_FLIGHT))
            .group_by(JourneyState.journey_id)
        ).all()
    )
    numbers = dict(
        session.execute(
            select(JourneyVersion.id, JourneyVersion.number).where(
                JourneyVersion.project_id == project_id
            )
        ).all()
    )
    return [
        JourneySummary(
            id=j.id,
            name=j.name,
            status=j.status,
            purpose=str(j.draft.get("purpose", "marketing")),
            live_version=numbers.get(j.live_version_id) if j.live_version_id else None,
            in_flight=int(in_flight.get(j.id, 0)),
            awaiting_approval=j.publish_request is not None,
            updated_at=j.updated_at,
        )
        for j in journeys
    ]


def list_versions(*, session: Session, project_id: int, journey_id: int) -> list[VersionOut]:
    journey = _get(session, project_id, journey_id)
    versions = session.scalars(
        select(JourneyVersion)
        .where(JourneyVersion.journey_id == journey.id)
        .order_by(JourneyVersion.number)
    ).all()
    return [v for v in (_version_out(x) for x in versions) if v is not None]


def journeys_using_content(
    *, session: Session, project_id: int, content_id: int
) -> list[dict[str, Any]]:
    """Journeys whose draft or a live/draining version sends ``content_id`` (content usage)."""
    found: list[dict[str, Any]] = []
    journeys = session.scalars(select(Journey).where(Journey.project_id == project_id)).all()
    for journey in journeys:
        definitions = [("draft", journey.draft)]
        versions = session.scalars(
            select(JourneyVersion).where(
                JourneyVersion.journey_id == journey.id, JourneyVersion.state.in_(LIVE_STATES)
            )
        ).all()
        definitions += [(f"v{v.number}", v.definition) for v in versions]
        for where, definition in definitions:
            nodes = [
                str(n.get("id"))
                for n in definition.get("nodes", [])
                if isinstance(n.get("content"), dict)
                and n["content"].get("content_id") == content_id
            ]
            if nodes:
                found.append(
                    {
                        "journey_id": journey.id,
                        "name": journey.name,
                        "status": journey.status,
                        "where": where,
                        "nodes": nodes,
                    }
                )
    return found


# -- lifecycle ---------------------------------------------------------------------------------
def publish(
    *,
    session: Session,
    project_id: int,
    journey_id: int,
    actor: str,
    now: datetime,
    in_flight: str = "drain",
    reviewed: bool = False,
) -> JourneyOut:
    """Freeze the draft as a new immutable version and make it live.

    Customers in flight on the previous version either finish there (``drain``) or move to
    the node with the same id in the new version (``migrate``; those whose node no longer
    exists keep draining). :class:`InvalidJourney` lists what prevents publishing;
    :class:`ReviewRequired` when the project publishes four-eyes and this is not the approval
    of a request (``reviewed``).
    """
    if not reviewed and review_required(session=session, project_id=project_id):
        raise ReviewRequired(
            "this project publishes journeys four-eyes: request publication"
            " (POST /api/v1/journeys/{id}/publish) and have a second person approve it"
        )
    journey = _get(session, project_id, journey_id)
    definition = parse_definition(journey.draft)
    problems = blocking(
        check_definition(session=session, project_id=project_id, definition=definition, now=now)
    )
    if problems:
        raise InvalidJourney(problems)
    number = (
        int(
            session.scalar(
                select(func.coalesce(func.max(JourneyVersion.number), 0)).where(
                    JourneyVersion.journey_id == journey.id
                )
            )
            or 0
        )
        + 1
    )
    version = JourneyVersion(
        project_id=project_id,
        journey_id=journey.id,
        number=number,
        definition=_dump(definition),
        state="live",
        published_by=actor,
        published_at=utc_naive(now),
        entry_runs={},
    )
    session.add(version)
    session.flush()
    _register_specs(session, project_id, journey.id, version, definition)
    previous = (
        session.get(JourneyVersion, journey.live_version_id) if journey.live_version_id else None
    )
    migrated = 0
    if previous is not None:
        previous.state = "draining"
        if in_flight == "migrate":
            migrated = _migrate(session, previous, version, definition, now)
        version.entry_runs = dict(previous.entry_runs)  # a "once" entry does not run again
    journey.live_version_id = version.id
    journey.status = "published"
    journey.publish_request = None
    journey.updated_at = utc_naive(now)
    refresh_watch(session=session, project_id=project_id)
    audit.record(
        session=session,
        actor=actor,
        action="journey.published",
        target=f"journey:{journey.id}",
        detail={"version": number, "in_flight": in_flight, "migrated": migrated},
        project_id=project_id,
        now=now,
    )
    session.flush()
    return _out(session, journey)


def review_required(*, session: Session, project_id: int) -> bool:
    """Whether the project's compliance settings ask for four-eyes publishing."""
    return compliance.get_settings(session=session, project_id=project_id).journey_publish_review


def _draft_sha(draft: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(draft, option=orjson.OPT_SORT_KEYS)).hexdigest()


def request_publish(
    *,
    session: Session,
    project_id: int,
    journey_id: int,
    principal: Principal,
    now: datetime,
    in_flight: str = "drain",
) -> JourneyOut:
    """Ask a second person to publish the draft as it is now (four-eyes setting).

    The draft must be publishable (:class:`InvalidJourney` otherwise, so the approver never
    sees a request that cannot go live). A newer request replaces an older one; editing the
    draft withdraws it.
    """
    journey = _get(session, project_id, journey_id)
    definition = parse_definition(journey.draft)
    problems = blocking(
        check_definition(session=session, project_id=project_id, definition=definition, now=now)
    )
    if problems:
        raise InvalidJourney(problems)
    request = PublishRequestOut(
        by=principal.actor,
        by_user_id=principal.user_id,
        at=utc_naive(now),
        in_flight=in_flight,
        draft_sha=_draft_sha(journey.draft),
        edited_by=_last_editor(session, journey),
    )
    journey.publish_request = request.model_dump(mode="json")
    journey.updated_at = utc_naive(now)
    audit.record(
        session=session,
        actor=principal.actor,
        action="journey.publish_requested",
        target=f"journey:{journey.id}",
        detail={"in_flight": in_flight, "draft_sha": request.draft_sha},
        project_id=project_id,
        now=now,
    )
    session.flush()
    return _out(session, journey)


def _last_editor(session: Session, journey: Journey) -> str:
    """Who last wrote the draft (the audit trail records every create and edit)."""
    actor = session.scalar(
        select(AuditEntry.actor)
        .where(
            AuditEntry.target == f"journey:{journey.id}",
            AuditEntry.action.in_(("journey.created", "journey.edited")),
        )
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    )
    return str(actor or journey.created_by)


def _pending(journey: Journey, principal: Principal, draft_sha: str | None) -> PublishRequestOut:
    """The request a second person may decide: not the requester, the journey's author or the
    draft's last editor (403); the draft still the one requested, and the one the approver
    reviewed when ``draft_sha`` is given (409)."""
    if journey.publish_request is None:
        raise Conflict("no publication is awaiting approval for this journey")
    request = PublishRequestOut.model_validate(journey.publish_request)
    if _draft_sha(journey.draft) != request.draft_sha:
        raise Conflict("the draft changed after the request; request publication again")
    if draft_sha is not None and draft_sha != request.draft_sha:
        raise Conflict("the request is not for the draft you reviewed; reload it")
    ensure_not_author(principal, request.by_user_id)
    ensure_not_author(principal, journey.author_user_id)
    if request.edited_by and principal.actor == request.edited_by:
        raise SeparationOfDuties(
            "separation of duties: whoever last edited the journey cannot approve it"
        )
    return request


def _audit_decision(
    session: Session,
    journey: Journey,
    principal: Principal,
    decision: str,
    request: PublishRequestOut,
    comment: str,
    now: datetime,
) -> None:
    audit.record(
        session=session,
        actor=principal.actor,
        action=f"journey.publish_{decision}",
        target=f"journey:{journey.id}",
        detail={"requested_by": request.by, "draft_sha": request.draft_sha, "comment": comment},
        project_id=journey.project_id,
        now=now,
    )


def approve_publish(
    *,
    session: Session,
    project_id: int,
    journey_id: int,
    principal: Principal,
    now: datetime,
    draft_sha: str | None = None,
    comment: str = "",
) -> JourneyOut:
    """Publish a requested journey as the second person. Refused (403) to whoever asked and to
    the journey's author; (409) when nothing waits or ``draft_sha`` — what the approver
    reviewed — is not what was requested."""
    journey = _get(session, project_id, journey_id)
    request = _pending(journey, principal, draft_sha)
    _audit_decision(session, journey, principal, "approved", request, comment, now)
    return publish(
        session=session,
        project_id=project_id,
        journey_id=journey_id,
        actor=principal.actor,
        now=now,
        in_flight=request.in_flight,
        reviewed=True,
    )


def reject_publish(
    *,
    session: Session,
    project_id: int,
    journey_id: int,
    principal: Principal,
    now: datetime,
    comment: str = "",
) -> JourneyOut:
    """Turn a publication request down (the draft stays as it is); same refusals as
    :func:`approve_publish`."""
    journey = _get(session, project_id, journey_id)
    request = _pending(journey, principal, None)
    journey.publish_request = None
    journey.updated_at = utc_naive(now)
    _audit_decision(session, journey, principal, "rejected", request, comment, now)
    session.flush()
    return _out(session, journey)


def spec_owner(journey_id: int, version: JourneyVersion, node_id: str) -> str:
    return f"journey:{journey_id}:v{version.number}:{node_id}"


def _register_specs(
    session: Session,
    project_id: int,
    journey_id: int,
    version: JourneyVersion,
    definition: JourneyDefinition,
) -> None:
    for node in definition.nodes:
        owner = spec_owner(journey_id, version, node.id)
        if isinstance(node, Send):
            config: dict[str, Any] = dict(node.options)
            if node.webhook is not None:
                config.update(node.webhook.model_dump())
            outbox.register_spec(
                session=session,
                project_id=project_id,
                owner=owner,
                channel=node.channel,
                purpose=definition.purpose,
                content_id=node.content.content_id
                if isinstance(node.content, ContentRef)
                else None,
                template=node.content.model_dump(exclude_none=True)
                if isinstance(node.content, InlineContent)
                else {},
                config=config,
                fallback_channel=node.fallback_channel,
                product_risk_level=node.product_risk_level,
            )
        elif isinstance(node, Webhook):
            outbox.register_spec(
                session=session,
                project_id=project_id,
                owner=owner,
                channel="webhook",
                purpose=definition.purpose,
                content_id=None,
                template=node.content.model_dump(exclude_none=True)
                if node.content
                else {"text": ""},
                config=node.webhook.model_dump(),
            )
        elif isinstance(node, AdvisorTask):
            outbox.register_spec(
                session=session,
                project_id=project_id,
                owner=owner,
                channel="advisor",
                purpose=definition.purpose,
                content_id=None,
                template={"text": node.script, "title": node.title},
                config={"title": node.title, "script": node.script, "due_days": node.due_days},
                product_risk_level=node.product_risk_level,
            )


def _migrate(
    session: Session,
    previous: JourneyVersion,
    version: JourneyVersion,
    definition: JourneyDefinition,
    now: datetime,
) -> int:
    node_ids = [n.id for n in definition.nodes]
    result = session.execute(
        update(JourneyState)
        .where(
            JourneyState.version_id == previous.id,
            JourneyState.status.in_(IN_FLIGHT),
            JourneyState.node_id.in_(node_ids),
        )
        .values(version_id=version.id, updated_at=utc_naive(now))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _set_status(
    session: Session,
    project_id: int,
    journey_id: int,
    *,
    allowed: Iterable[str],
    status: str,
    actor: str,
    now: datetime,
) -> Journey:
    journey = _get(session, project_id, journey_id)
    if journey.status not in allowed:
        raise Conflict(f"a {journey.status} journey cannot be {status}")
    journey.status = status
    journey.updated_at = utc_naive(now)
    audit.record(
        session=session,
        actor=actor,
        action=f"journey.{status}",
        target=f"journey:{journey.id}",
        detail={},
        project_id=project_id,
        now=now,
    )
    return journey


def pause(
    *, session: Session, project_id: int, journey_id: int, actor: str, now: datetime
) -> JourneyOut:
    """No new entries and no steps while paused; customers hold where they are."""
    journey = _set_status(
        session,
        project_id,
        journey_id,
        allowed=("published",),
        status="paused",
        actor=actor,
        now=now,
    )
    refresh_watch(session=session, project_id=project_id)
    return _out(session, journey)


def resume(
    *, session: Session, project_id: int, journey_id: int, actor: str, now: datetime
) -> JourneyOut:
    journey = _set_status(
        session,
        project_id,
        journey_id,
        allowed=("paused",),
        status="published",
        actor=actor,
        now=now,
    )
    refresh_watch(session=session, project_id=project_id)
    return _out(session, journey)


def stop(
    *, session: Session, project_id: int, journey_id: int, actor: str, now: datetime
) -> JourneyOut:
    """End the journey: customers in flight exit, unsent messages are cancelled. It can be
    edited and published again later (as a new version)."""
    journey = _set_status(
        session,
        project_id,
        journey_id,
        allowed=("published", "paused"),
        status="stopped",
        actor=actor,
        now=now,
    )
    session.execute(
        update(JourneyState)
        .where(JourneyState.journey_id == journey.id, JourneyState.status.in_(IN_FLIGHT))
        .values(status="exited", wake_at=None, wait_event=None, updated_at=utc_naive(now))
    )
    session.execute(
        update(JourneyVersion)
        .where(JourneyVersion.journey_id == journey.id, JourneyVersion.state.in_(LIVE_STATES))
        .values(state="closed")
    )
    outbox.cancel(session=session, journey_id=journey.id, reason="journey_stopped", now=now)
    journey.live_version_id = None
    refresh_watch(session=session, project_id=project_id)
    session.flush()
    return _out(session, journey)


# -- what the engine watches ---------------------------------------------------------------------
def watched_events(definition: JourneyDefinition) -> set[str]:
    """Event names a version needs from the live feed."""
    names: set[str] = {g.event for g in definition.goals}
    for node in definition.nodes:
        if isinstance(node, EntryEvent | WaitEvent | Goal):
            names.add(node.event)
        elif isinstance(node, EntryNotDone):
            names.update({node.event, node.not_event})
        elif isinstance(node, EntrySegmentChange):
            names.add(ENTER_EVENT if node.change == "enter" else LEAVE_EVENT)
    return names


def refresh_watch(*, session: Session, project_id: int) -> None:
    """Tell ingest which events the project's running journeys need."""
    session.flush()
    rows = session.execute(
        select(JourneyVersion.definition)
        .join(Journey, Journey.id == JourneyVersion.journey_id)
        .where(
            JourneyVersion.project_id == project_id,
            JourneyVersion.state.in_(LIVE_STATES),
            Journey.status.in_(("published", "paused")),
        )
    ).scalars()
    names: set[str] = set()
    for definition in rows:
        names |= watched_events(parse_definition(definition))
    feed.watch(session=session, project_id=project_id, subscriber=SUBSCRIBER, events=names)


# -- statistics ----------------------------------------------------------------------------------
def stats(*, session: Session, project_id: int, journey_id: int) -> JourneyStats:
    """Live per-node numbers of the live version (or the latest one)."""
    journey = _get(session, project_id, journey_id)
    if journey.live_version_id:
        version = session.get(JourneyVersion, journey.live_version_id)
    else:
        version = session.scalar(
            select(JourneyVersion)
            .where(JourneyVersion.journey_id == journey.id)
            .order_by(JourneyVersion.number.desc())
            .limit(1)
        )
    definition = parse_definition(version.definition if version else journey.draft)
    counters: dict[str, dict[str, int]] = {}
    active: dict[str, int] = {}
    messages: dict[str, dict[str, int]] = {}
    blocked: dict[str, dict[str, int]] = {}
    if version is not None:
        for node_id, metric, count in session.execute(
            select(JourneyNodeCount.node_id, JourneyNodeCount.metric, JourneyNodeCount.count).where(
                JourneyNodeCount.version_id == version.id
            )
        ):
            counters.setdefault(node_id, {})[metric] = int(count)
        active = {
            node: int(n)
            for node, n in session.execute(
                select(JourneyState.node_id, func.count())
                .where(JourneyState.version_id == version.id, JourneyState.status.in_(IN_FLIGHT))
                .group_by(JourneyState.node_id)
            )
        }
        for node_id, status, reason, count in outbox.node_outcomes(
            session=session, journey_id=journey.id, version_id=version.id
        ):
            messages.setdefault(node_id, {})[status] = (
                messages.get(node_id, {}).get(status, 0) + count
            )
            if status == "blocked" and reason:
                blocked.setdefault(node_id, {})[reason] = count
    graph = build_graph(definition)
    nodes = [
        NodeStats(
            node_id=node_id,
            type=node.type,
            entered=counters.get(node_id, {}).get("entered", 0),
            active=active.get(node_id, 0),
            counters=counters.get(node_id, {}),
            messages=messages.get(node_id, {}),
            blocked=blocked.get(node_id, {}),
        )
        for node_id, node in graph.nodes.items()
    ]
    totals = {
        status: int(n)
        for status, n in session.execute(
            select(JourneyState.status, func.count())
            .where(JourneyState.journey_id == journey.id)
            .group_by(JourneyState.status)
        )
    }
    goals: dict[str, int] = {}
    for node_counters in counters.values():
        for metric, count in node_counters.items():
            if metric.startswith("goal:"):
                goals[metric[5:]] = goals.get(metric[5:], 0) + count
    return JourneyStats(
        journey_id=journey.id,
        version=version.number if version else None,
        entered=sum(totals.values()),
        in_flight=sum(totals.get(s, 0) for s in IN_FLIGHT),
        completed=totals.get("done", 0),
        goals=goals,
        nodes=nodes,
    )
