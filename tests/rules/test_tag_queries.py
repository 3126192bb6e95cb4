"""Tag value queries (metric, first/last, preference, RFM, real-time) built once with SQLGlot
give the same values on DuckDB and on chDB (ClickHouse)."""

from __future__ import annotations

from typing import Any

import pytest

from flywheel.rules.compiler import RuleContext
from flywheel.tags import service
from flywheel.warehouse import Warehouse
from tests.rules.brokerage import ClickHouseMirror

SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "metric_buckets": (
        "metric",
        {
            "measure": {"event": "BuyFund", "aggregator": "count"},
            "window": {"relative_days": 30},
            "buckets": [
                {"value": "none", "max": 1},
                {"value": "low", "min": 1, "max": 3},
                {"value": "high", "min": 3},
            ],
        },
    ),
    "metric_quantiles": (
        "metric",
        {
            "measure": {"event": "BuyFund", "aggregator": "sum", "property": "amount"},
            "window": {"relative_days": 90},
            "quantiles": 4,
        },
    ),
    "metric_avg": (
        "metric",
        {
            "measure": {"event": "BuyFund", "aggregator": "avg", "property": "amount"},
            "window": {"relative_days": 90},
            "buckets": [{"value": "small", "max": 20000}, {"value": "large", "min": 20000}],
        },
    ),
    "days_since": ("first_last", {"event": "Login", "output": "days_since"}),
    "last_property": (
        "first_last",
        {"event": "ViewFundDetail", "output": "property", "property": "item_id"},
    ),
    "first_date": ("first_last", {"event": "BuyFund", "which": "first", "output": "date"}),
    "preference_top2": (
        "preference",
        {
            "event": "BuyFund",
            "property": "fund_category",
            "window": {"relative_days": 90},
            "top_n": 2,
        },
    ),
    "preference_weighted": (
        "preference",
        {
            "event": "BuyFund",
            "property": "fund_category",
            "window": {"relative_days": 90},
            "weight_property": "amount",
        },
    ),
    "rfm": ("rfm", {"window": {"relative_days": 90}}),
    "realtime_count": (
        "realtime",
        {"mode": "window_count", "event": "Login", "window_minutes": 4320},
    ),
    "realtime_last": (
        "realtime",
        {"mode": "last_value", "event": "BuyFund", "property": "item_id"},
    ),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_tag_values_are_the_same_on_duckdb_and_clickhouse(
    name: str, brokerage: Warehouse, clickhouse: ClickHouseMirror, context: RuleContext
) -> None:
    kind, spec = SPECS[name]
    compiled = service.value_query(kind, service.validate_spec(kind, spec), context)
    sql, params = compiled.bound("duckdb")
    on_duckdb = {(int(u), v) for u, v in brokerage.cursor().execute(sql, params).fetchall()}
    ch_sql, ch_params = compiled.bound("clickhouse")
    result = clickhouse.session.query(ch_sql, "ArrowTable", params=ch_params)
    on_clickhouse = {
        (int(u), v)
        for u, v in zip(result.column(0).to_pylist(), result.column(1).to_pylist(), strict=True)
    }
    assert on_duckdb == on_clickhouse
    assert len({v for _, v in on_duckdb}) > 1
