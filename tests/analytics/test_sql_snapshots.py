"""Snapshots of the compiled SQL on both dialects, and bound values never becoming SQL text.

Regenerate after an intended change: ``FLYWHEEL_UPDATE_SNAPSHOTS=1 pytest tests/analytics``.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.analytics.queries import Binder, QueryBuilder, render
from flywheel.analytics.schemas import PropertyFilter, SegmentFilter

SNAPSHOTS = Path(__file__).parent / "snapshots"
START, END = datetime(2026, 9, 30, 16), datetime(2026, 10, 31, 16)

BUILDER = QueryBuilder(
    events_table="p1_events",
    users_table="p1_users",
    event_columns={
        "id": "VARCHAR",
        "user_id": "BIGINT",
        "event": "VARCHAR",
        "time": "TIMESTAMP",
        "amount": "DOUBLE",
        "utm_source": "VARCHAR",
        "labels": "VARCHAR[]",
    },
    user_columns={"user_id": "BIGINT", "branch": "VARCHAR", "channel": "VARCHAR"},
    segment_members_table="p1_segment_members",
)


def _funnel(binder: Binder) -> Any:
    return BUILDER.funnel(
        steps=[
            ("$AppStart", []),
            ("ViewFundDetail", [PropertyFilter(property="labels", op="contains", value="vip")]),
            ("BuyFund", [PropertyFilter(property="amount", op="gte", value=1000)]),
        ],
        window_seconds=7 * 86400,
        start=START,
        end=END,
        group_by="user.channel",
        global_filters=[SegmentFilter(segment_id=3)],
        binder=binder,
    )


def _retention(binder: Binder) -> Any:
    return BUILDER.retention(
        start_event="$SignUp",
        return_event="BuyFund",
        start_filters=[],
        return_filters=[PropertyFilter(property="amount", op="gt", value=0)],
        global_filters=[PropertyFilter(property="user.branch", op="in", value=["BR001"])],
        unit="week",
        periods=4,
        origin=date(2026, 9, 28),
        span=9,
        start=START,
        end=END,
        returns_end=END,
        binder=binder,
    )


@pytest.mark.parametrize("dialect", ["duckdb", "clickhouse"])
@pytest.mark.parametrize(("name", "build"), [("funnel", _funnel), ("retention", _retention)])
def test_compiled_sql_snapshot(name: str, build: Any, dialect: Any) -> None:
    binder = Binder()
    sql = render(build(binder), binder, dialect).sql + "\n"
    path = SNAPSHOTS / f"{name}.{dialect}.sql"
    if os.environ.get("FLYWHEEL_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(sql)
    assert sql == path.read_text()


def _series_sql(value: str) -> tuple[str, dict[str, Any]]:
    binder = Binder()
    query = BUILDER.event_series(
        event=value,
        measure="count",
        property_ref=None,
        filters=[PropertyFilter(property="utm_source", op="eq", value=value)],
        global_filters=[],
        group_by=[],
        bucket="day",
        start=START,
        end=END,
        limit=10,
        binder=binder,
    )
    compiled = render(query, binder, "duckdb")
    return compiled.sql, compiled.params


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_user_values_never_enter_duckdb_sql(value: str) -> None:
    sql, params = _series_sql(value)
    # the SQL text does not depend on the value at all: it only travels as a parameter
    assert sql == _series_sql("x")[0]
    assert list(params.values()).count(value) == 2
