"""The same analyses rendered for ClickHouse and run on chDB give DuckDB's answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest
from chdb import session as chdb_session

from flywheel.analytics.queries import Binder, QueryBuilder, render
from flywheel.analytics.schemas import PropertyFilter
from flywheel.runtime import Runtime
from flywheel.warehouse.engine import TableKind
from tests.analytics.dataset import Dataset, arrow_events, arrow_users, generate

START, END = datetime(2026, 9, 30, 16, 0), datetime(2026, 10, 31, 16, 0)

EVENTS_DDL = (
    "CREATE TABLE p1_events (id String, user_id Int64, distinct_id Nullable(String),"
    " event String, time DateTime64(6), `$receive_time` DateTime64(6), amount Nullable(Float64),"
    " fund_category Nullable(String), utm_source Nullable(String),"
    " `$app_version` Nullable(String), labels Array(String))"
    " ENGINE = MergeTree ORDER BY (user_id, time)"
)
USERS_DDL = (
    "CREATE TABLE p1_users (user_id Int64, `$update_time` DateTime64(6), branch Nullable(String),"
    " channel Nullable(String), advisor_id Nullable(String)) ENGINE = MergeTree ORDER BY user_id"
)


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("chdb")
    data = generate()
    pq.write_table(arrow_events(data.events), folder / "events.parquet")
    pq.write_table(arrow_users(data.users), folder / "users.parquet")
    session = chdb_session.Session(str(folder / "db"))
    session.query(EVENTS_DDL)
    session.query(USERS_DDL)
    session.query(
        f"INSERT INTO p1_events SELECT * FROM file('{folder / 'events.parquet'}', Parquet)"
    )
    session.query(f"INSERT INTO p1_users SELECT * FROM file('{folder / 'users.parquet'}', Parquet)")
    yield session
    session.close()


@pytest.fixture
def builder(runtime: Runtime, project_id: int, loaded: Dataset) -> QueryBuilder:
    assert project_id == 1  # the chDB tables are named for project 1
    return QueryBuilder(
        events_table="p1_events",
        users_table="p1_users",
        event_columns=runtime.warehouse.columns(project_id, TableKind.EVENTS),
        user_columns=runtime.warehouse.columns(project_id, TableKind.USERS),
    )


def _normalise(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-":
        return value[:10]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _both(runtime: Runtime, clickhouse: Any, build: Any) -> tuple[list[Any], list[Any]]:
    binder = Binder()
    query = build(binder)
    duck = render(query, binder, "duckdb")
    house = render(query, binder, "clickhouse")
    assert "$p" not in house.sql and "{p" not in house.sql
    duck_rows = runtime.warehouse.cursor().execute(duck.sql, duck.params).fetchall()
    house_rows = json.loads(clickhouse.query(house.sql, "JSONCompact").bytes())["data"]
    norm = [[_normalise(v) for v in row] for row in duck_rows]
    return norm, [[_normalise(v) for v in row] for row in house_rows]


def test_funnel_same_on_chdb(runtime: Runtime, clickhouse: Any, builder: QueryBuilder) -> None:
    steps = [
        ("$AppStart", []),
        ("$SignUp", []),
        ("ViewFundDetail", []),
        ("BuyFund", [PropertyFilter(property="amount", op="gt", value=5000)]),
    ]

    def build(binder: Binder) -> Any:
        return builder.funnel(
            steps=steps,
            window_seconds=7 * 86400,
            start=START,
            end=END,
            group_by=None,
            global_filters=[PropertyFilter(property="user.branch", op="ne", value="BR003")],
            binder=binder,
        )

    duck, house = _both(runtime, clickhouse, build)
    # step, users (medians are compared loosely: ClickHouse's median is an estimator)
    assert [r[:2] for r in duck] == [r[:2] for r in house]
    assert duck[-1][1] > 0

    def dropped(binder: Binder) -> Any:
        return builder.funnel(
            steps=steps,
            window_seconds=7 * 86400,
            start=START,
            end=END,
            group_by=None,
            global_filters=[],
            binder=binder,
            dropped_step=3,
            dropped_limit=50,
        )

    duck, house = _both(runtime, clickhouse, dropped)
    assert duck == house and duck


def test_retention_same_on_chdb(runtime: Runtime, clickhouse: Any, builder: QueryBuilder) -> None:
    cases = [("day", 7, date(2026, 10, 1), 31 + 7), ("week", 3, date(2026, 9, 28), 5 + 3)]
    for unit, periods, origin, span in cases:

        def build(
            binder: Binder,
            unit: Any = unit,
            periods: int = periods,
            origin: date = origin,
            span: int = span,
        ) -> Any:
            return builder.retention(
                start_event="$SignUp",
                return_event="$AppStart",
                start_filters=[],
                return_filters=[PropertyFilter(property="utm_source", op="ne", value="sms")],
                global_filters=[PropertyFilter(property="user.branch", op="ne", value="BR002")],
                unit=unit,
                periods=periods,
                origin=origin,
                span=span,
                start=START,
                end=END,
                returns_end=END + timedelta(days=30),
                binder=binder,
            )

        duck, house = _both(runtime, clickhouse, build)
        assert duck == house and len(duck) > 3
        assert any(sum(r[3:]) > 0 for r in duck)


def test_event_analysis_and_attribution_same_on_chdb(
    runtime: Runtime, clickhouse: Any, builder: QueryBuilder
) -> None:
    def series(binder: Binder) -> Any:
        return builder.event_series(
            event="BuyFund",
            measure="sum",
            property_ref="amount",
            filters=[PropertyFilter(property="fund_category", op="in", value=["股票", "货币"])],
            global_filters=[],
            group_by=["user.channel"],
            bucket="week",
            start=START,
            end=END,
            limit=1000,
            binder=binder,
        )

    duck, house = _both(runtime, clickhouse, series)
    assert duck == house and duck

    def touches(binder: Binder) -> Any:
        return builder.attribution(
            conversion_event="BuyFund",
            touch_events=["$AppStart", "Search"],
            by="utm_source",
            model="last_touch",
            window_seconds=10 * 86400,
            value_property="amount",
            filters=[],
            start=START,
            end=END,
            touch_start=START - timedelta(days=10),
            binder=binder,
        )

    duck, house = _both(runtime, clickhouse, touches)
    assert duck == house and duck
