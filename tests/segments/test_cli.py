"""`flywheel segments count` and `flywheel tags run` on a data folder."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from flywheel.bootstrap import open_runtime
from flywheel.cli import app
from flywheel.config import Settings
from flywheel.tags import service as tags
from flywheel.tags.schemas import TagIn
from tests.rules.brokerage import NOW, load, users_table


def test_count_a_rule_and_run_tags_from_the_command_line(settings: Settings) -> None:
    runtime = open_runtime(settings)
    load(runtime.warehouse, project_id=1)
    with runtime.db.unit_of_work() as session:
        tags.create_tag(
            session=session,
            project_id=1,
            tag_in=TagIn(
                name="rich",
                kind="sql",
                spec={
                    "query": "SELECT user_id, 'yes' AS value FROM users WHERE total_assets > 1e6"
                },
            ),
            actor="test",
            now=NOW,
        )
    runtime.close()
    rule = {
        "rules": [
            {"type": "profile_rule", "field": "city", "function": "equal", "params": ["北京"]}
        ]
    }
    runner = CliRunner()
    counted = runner.invoke(
        app, ["segments", "count", "--rule", json.dumps(rule), "--data-dir", str(settings.data_dir)]
    )
    assert counted.exit_code == 0, counted.output
    expected = sum(1 for u in users_table().to_pylist() if u["city"] == "北京")
    numbers = [line for line in counted.stdout.splitlines() if line.strip().isdigit()]
    assert numbers == [str(expected)]
    bad = runner.invoke(
        app, ["segments", "count", "--rule", '{"rules": []}', "--data-dir", str(settings.data_dir)]
    )
    assert bad.exit_code == 2
    ran = runner.invoke(app, ["tags", "run", "--tag", "rich", "--data-dir", str(settings.data_dir)])
    assert ran.exit_code == 0, ran.output
    rich = sum(1 for u in users_table().to_pylist() if (u["total_assets"] or 0) > 1e6)
    assert f"ok {rich} users" in ran.output


def test_refresh_from_the_command_line_lands_its_events(settings: Settings) -> None:
    """The membership events a refresh stages reach the event store before the command ends."""
    from flywheel.segments import service as segments
    from flywheel.segments.schemas import SegmentIn

    runtime = open_runtime(settings)
    load(runtime.warehouse, project_id=1)
    rule = {
        "rules": [
            {"type": "profile_rule", "field": "city", "function": "equal", "params": ["北京"]}
        ]
    }
    with runtime.db.unit_of_work() as session:
        created = segments.create_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=1,
            segment_in=SegmentIn.model_validate(
                {"name": "北京客户", "mode": "dynamic", "rule": rule, "schedule": "manual"}
            ),
            actor="test",
            now=NOW,
        )
    runtime.close()
    ran = CliRunner().invoke(
        app,
        ["segments", "refresh", "--segment", str(created.id), "--data-dir", str(settings.data_dir)],
    )
    assert ran.exit_code == 0, ran.output
    runtime = open_runtime(settings)
    try:
        members = runtime.warehouse.fetch(
            'SELECT count(*) FROM "p1_segment_members" WHERE segment_id = ?', [created.id]
        )[0][0]
        entered = runtime.warehouse.fetch(
            "SELECT count(DISTINCT user_id) FROM \"p1_events\" WHERE event = '$SegmentEnter'"
        )[0][0]
    finally:
        runtime.close()
    expected = sum(1 for u in users_table().to_pylist() if u["city"] == "北京")
    assert members == expected
    assert entered == expected
