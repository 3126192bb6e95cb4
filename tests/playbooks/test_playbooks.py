"""Every playbook applies on the demo brokerage: its tags compute, its segment selects
customers, its content is compliant and its journey validates and publishes once a different
user approved the content. Applying twice gives suffixed copies; a failure leaves nothing."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from flywheel.audit.models import AuditEntry
from flywheel.content import checker, templates
from flywheel.content import service as content_service
from flywheel.core.clock import SHANGHAI
from flywheel.core.errors import InvalidInput, NotFound
from flywheel.ingest import bulk
from flywheel.journeys import service as journey_service
from flywheel.journeys.schemas import JourneyDefinition
from flywheel.journeys.validation import blocking, structure_problems
from flywheel.playbooks import service
from flywheel.playbooks.library import PLAYBOOKS, Names
from flywheel.projects import service as projects
from flywheel.projects.schemas import ProjectIn
from flywheel.rules.compiler import Tables
from flywheel.rules.schema import InvalidRule
from flywheel.runtime import Runtime
from flywheel.segments import service as segment_service
from flywheel.tags import service as tag_service
from flywheel.warehouse import PropertyType, TableKind
from tests.playbooks.conftest import principal_of

CASES = [(name, {}) for name in PLAYBOOKS] + [("greetings", {"occasion": "holiday"})]


@pytest.mark.parametrize(("name", "parameters"), CASES)
def test_plans_are_valid_graphs_with_compliant_texts(name: str, parameters: dict[str, Any]) -> None:
    playbook = PLAYBOOKS[name]
    plan = playbook.build(playbook.params.model_validate(parameters), Names())
    definition = JourneyDefinition.model_validate(
        service.resolve(plan.journey, 1, dict.fromkeys(plan.content, 1))
    )
    assert structure_problems(definition) == []
    assert plan.tags and plan.content
    for item in plan.content.values():
        templates.validate(item.body)
        assert checker.check(f"{item.subject}\n{item.body}") == [], item.name
    for node in definition.nodes:
        if node.type == "advisor_task":
            assert checker.check(f"{node.title}\n{node.script}") == [], node.id
    promotes = [i for i in plan.content.values() if "基金" in i.body or "申购" in i.body]
    assert all("投资需谨慎" in i.body or "入市需谨慎" in i.body for i in promotes)


def _birthdays_today(runtime: Runtime, project_id: int) -> int:
    """Customers whose birthday is today in Shanghai by the wall clock (what the SQL tag reads:
    the warehouse's current date); 29 February counts on 28 February in common years."""
    table = Tables.for_project(project_id).users
    rows = runtime.warehouse.cursor().execute(f'SELECT birthday FROM "{table}"').fetchall()
    today = datetime.now(SHANGHAI).date()

    def this_year(born: date) -> date:
        try:
            return born.replace(year=today.year)
        except ValueError:
            return date(today.year, 2, 28)

    return sum(1 for (born,) in rows if born is not None and this_year(born) == today)


@pytest.mark.parametrize(("name", "parameters"), CASES)
def test_playbook_applies_on_demo_and_publishes_after_review(
    demo_runtime: Runtime, name: str, parameters: dict[str, Any]
) -> None:
    runtime, now = demo_runtime, demo_runtime.clock()
    tag = f"{name}_{parameters.get('occasion', '')}"
    author = principal_of(runtime, f"author_{tag}", "marketer")
    reviewer = principal_of(runtime, f"reviewer_{tag}", "compliance")
    with runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name="default").id
        applied = service.apply(
            session=session,
            warehouse=runtime.warehouse,
            project_id=project_id,
            name=name,
            parameters=parameters,
            principal=author,
            now=now,
        )
    assert applied.journey_status == "draft"
    with runtime.db.unit_of_work() as session:
        # Everything in draft: content awaits review, the journey awaits publishing.
        for content_id in applied.content_ids.values():
            item = content_service.get_content(
                session=session, project_id=project_id, content_id=content_id
            )
            assert item.latest.status == "draft" and item.latest.findings == []
            assert item.approved_version_id is None
        journey = journey_service.get_journey(
            session=session, project_id=project_id, journey_id=applied.journey_id
        )
        assert journey.status == "draft" and journey.live_version is None
        definition = journey_service.parse_definition(journey.definition)
        problems = journey_service.check_definition(
            session=session, project_id=project_id, definition=definition, now=now
        )
        assert blocking(problems) == [], problems
        assert {p.code for p in problems} <= {"warn_content_not_approved"}

        for tag_id in applied.tag_ids:
            run = tag_service.run_tag(
                session=session,
                warehouse=runtime.warehouse,
                project_id=project_id,
                tag_id=tag_id,
                now=now,
            )
            assert run.status == "ok", run.error
            assert run.users > 0
        counted = segment_service.count_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=project_id,
            segment_id=applied.segment_id,
            now=now,
            live=True,
        ).count
    if name == "greetings" and not parameters:
        assert counted == _birthdays_today(runtime, project_id)
    else:
        assert counted > 0

    with runtime.db.unit_of_work() as session:
        for content_id in applied.content_ids.values():
            content_service.submit(
                session=session, project_id=project_id, content_id=content_id,
                principal=author, now=now,
            )  # fmt: skip
            content_service.decide(
                session=session, project_id=project_id, content_id=content_id,
                principal=reviewer, approve=True, comment="ok", now=now,
            )  # fmt: skip
        published = journey_service.publish(
            session=session,
            project_id=project_id,
            journey_id=applied.journey_id,
            actor=author.actor,
            now=now,
        )
    assert published.status == "published" and published.live_version is not None


def test_applying_twice_creates_a_suffixed_second_set(demo_runtime: Runtime) -> None:
    runtime, now = demo_runtime, demo_runtime.clock()
    author = principal_of(runtime, "twice", "marketer")
    results = []
    for _ in range(2):
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name="default").id
            results.append(
                service.apply(
                    session=session,
                    warehouse=runtime.warehouse,
                    project_id=project_id,
                    name="dormant_reactivation",
                    parameters={"inactive_days": 45},
                    principal=author,
                    now=now,
                )
            )
    first, second = results
    assert second.suffix == first.suffix + 1 >= 2
    assert not set(first.tag_ids) & set(second.tag_ids)
    assert first.segment_id != second.segment_id and first.journey_id != second.journey_id
    assert not set(first.content_ids.values()) & set(second.content_ids.values())
    n = second.suffix
    with runtime.db.unit_of_work() as session:
        tag = tag_service.get_tag(session=session, project_id=project_id, tag_id=second.tag_ids[0])
        assert tag.name == f"days_since_login_{n}"
        segment = segment_service.get_segment(
            session=session, project_id=project_id, segment_id=second.segment_id
        )
        assert segment.name.endswith(f" ({n})")
        journey = journey_service.get_journey(
            session=session, project_id=project_id, journey_id=second.journey_id
        )
        assert journey.name == f"沉睡客户唤醒 ({n})"
        assert journey.definition["nodes"][0]["segment_id"] == second.segment_id
        items = [
            content_service.get_content(session=session, project_id=project_id, content_id=i)
            for i in second.content_ids.values()
        ]
        assert all(item.name.endswith(f" ({n})") for item in items)
        # The first set is untouched and still refers to its own objects.
        earlier = journey_service.get_journey(
            session=session, project_id=project_id, journey_id=first.journey_id
        )
        assert earlier.definition["nodes"][0]["segment_id"] == first.segment_id


def _counts(runtime: Runtime, project_id: int) -> dict[str, int]:
    with runtime.db.unit_of_work() as session:
        return {
            "tags": len(tag_service.list_tags(session=session, project_id=project_id)),
            "segments": len(segment_service.list_segments(session=session, project_id=project_id)),
            "content": len(content_service.list_content(session=session, project_id=project_id)),
            "journeys": len(journey_service.list_journeys(session=session, project_id=project_id)),
            "audit": int(
                session.scalar(
                    select(func.count())
                    .select_from(AuditEntry)
                    .where(AuditEntry.action == "playbook.applied")
                )
                or 0
            ),
        }


def test_failure_half_way_leaves_nothing_behind(runtime: Runtime) -> None:
    """A project whose ``has_margin_account`` is text, not a boolean: the margin playbook's
    tag is created, then its segment rule (``isFalse``) is refused — and the tag goes too."""
    author = principal_of(runtime, "author", "marketer")
    now = runtime.clock()
    with runtime.db.unit_of_work() as session:
        project_id = projects.create(session=session, project_in=ProjectIn(name="textual")).id
        bulk.registered_types(
            session=session,
            project_id=project_id,
            kind=TableKind.USERS,
            wanted={"has_margin_account": PropertyType.STRING},
        )
    runtime.warehouse.ensure_project(project_id)
    runtime.warehouse.ensure_columns(
        project_id, TableKind.USERS, {"has_margin_account": PropertyType.STRING}
    )
    before = _counts(runtime, project_id)
    with runtime.db.unit_of_work() as session:
        with pytest.raises(InvalidRule, match=r"isFalse|BOOL|bool"):
            service.apply(
                session=session,
                warehouse=runtime.warehouse,
                project_id=project_id,
                name="margin_conversion",
                parameters={},
                principal=author,
                now=now,
            )
        # The caller's transaction goes on (the savepoint rolled back only the apply).
        with pytest.raises(NotFound):
            tag_service.get_by_name(
                session=session, project_id=project_id, name="margin_eligibility"
            )
    assert (
        _counts(runtime, project_id)
        == before
        == {
            "tags": 0,
            "segments": 0,
            "content": 0,
            "journeys": 0,
            "audit": 0,
        }
    )
    # The same playbook then applies cleanly where the schema fits.
    with runtime.db.unit_of_work() as session:
        applied = service.apply(
            session=session,
            warehouse=runtime.warehouse,
            project_id=project_id,
            name="risk_assessment_renewal",
            parameters={"days_before": 15},
            principal=author,
            now=now,
        )
    assert applied.suffix == 1
    assert _counts(runtime, project_id) == {
        "tags": 1,
        "segments": 1,
        "content": 1,
        "journeys": 1,
        "audit": 1,
    }


def test_bad_parameters_are_refused_before_anything_is_created(runtime: Runtime) -> None:
    author = principal_of(runtime, "author", "marketer")
    cases = [
        ({"channel": "fax"}, "parameters.channel"),
        ({"wait_days": 0}, "parameters.wait_days"),
        ({"unknown": 1}, "parameters.unknown"),
    ]
    with runtime.db.unit_of_work() as session:
        for parameters, where in cases:
            with pytest.raises(InvalidInput, match=where):
                service.apply(
                    session=session,
                    warehouse=runtime.warehouse,
                    project_id=1,
                    name="fund_aip_activation",
                    parameters=parameters,
                    principal=author,
                    now=runtime.clock(),
                )
        # Template syntax cannot come in through a text parameter.
        with pytest.raises(InvalidInput, match="holiday_name"):
            service.preview(
                session=session,
                warehouse=runtime.warehouse,
                project_id=1,
                name="greetings",
                parameters={"occasion": "holiday", "holiday_name": "{{ config }}"},
                principal=author,
                now=runtime.clock(),
            )
        with pytest.raises(NotFound, match="unknown playbook"):
            service.get_playbook(name="nope")
    assert _counts(runtime, 1)["tags"] == 0
