"""Snapshots of compiled SQL on both dialects (tests/rules/snapshots/<rule>.<dialect>.sql).

Regenerate after an intended compiler change with ``FLYWHEEL_UPDATE_SNAPSHOTS=1``; review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flywheel.rules.compiler import RuleContext, Tables, compile_rule
from flywheel.rules.schema import parse
from tests.rules.brokerage import NOW
from tests.rules.test_engines import FEATURES

SNAPSHOTS = Path(__file__).parent / "snapshots"
CASES = ["canonical", "event_sum_zero_ok", "sequence_then_not", "tag_on_day", "nested_or"]
USERS = {"risk_tolerance": "VARCHAR", "city": "VARCHAR", "total_assets": "DOUBLE"}
EVENTS = {"amount": "DOUBLE", "fund_category": "VARCHAR"}


@pytest.mark.parametrize("dialect", ["duckdb", "clickhouse"])
@pytest.mark.parametrize("name", CASES)
def test_compiled_sql_matches_its_snapshot(name: str, dialect: str) -> None:
    context = RuleContext(
        tables=Tables.for_project(1),
        users_columns=USERS,
        events_columns=EVENTS,
        now=NOW,
        resolve_segment=lambda _segment_id: None,
    )
    compiled = compile_rule(parse(FEATURES[name]), context, output="count")
    text = compiled.sql(dialect, pretty=True) + "\n"  # type: ignore[arg-type]
    path = SNAPSHOTS / f"{name}.{dialect}.sql"
    if os.environ.get("FLYWHEEL_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert path.exists(), f"missing snapshot {path.name}: run with FLYWHEEL_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text()
    for value in compiled.params.values():
        assert str(value) not in text or isinstance(value, int | float), "values must be bound"
