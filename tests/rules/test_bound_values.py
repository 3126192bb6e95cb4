"""User values never reach the SQL text, on either dialect, whatever they contain."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.rules.compiler import RuleContext, Tables, compile_rule
from flywheel.rules.schema import parse
from tests.rules.brokerage import NOW

CONTEXT = RuleContext(
    tables=Tables.for_project(1),
    users_columns={"city": "VARCHAR", "interests": "VARCHAR[]"},
    events_columns={"keyword": "VARCHAR"},
    now=NOW,
)
hostile = st.text(min_size=1, max_size=40).map(lambda s: "ZQX" + s)


@settings(max_examples=100, deadline=None)
@given(hostile, hostile, hostile)
def test_values_are_bound_not_spliced(city: str, keyword: str, tag_value: str) -> None:
    rule = parse(
        {
            "relation": "or",
            "rules": [
                {"type": "profile_rule", "field": "city", "function": "in", "params": [city]},
                {
                    "type": "profile_rule",
                    "field": "interests",
                    "function": "contain",
                    "params": [city],
                },
                {
                    "type": "event_rule",
                    "measure": {"event": "Search"},
                    "window": {"relative_days": 7},
                    "filters": {
                        "conditions": [
                            {"field": "keyword", "function": "contain", "params": [keyword]}
                        ]
                    },
                    "function": "did",
                },
                {"type": "tag_rule", "tag": "t", "function": "notEqual", "params": [tag_value]},
            ],
        }
    )
    compiled = compile_rule(rule, CONTEXT)
    for dialect in ("duckdb", "clickhouse"):
        sql, params = compiled.bound(dialect)  # type: ignore[arg-type]
        assert "ZQX" not in sql
        assert {city, keyword, tag_value} <= set(params.values())
