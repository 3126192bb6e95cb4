"""Every DSL feature runs on DuckDB and on chDB (ClickHouse) and selects the same customers;
key semantics are also checked against a plain-Python oracle over the same rows."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from flywheel.rules.compiler import RuleContext, compile_rule, sh_midnight
from flywheel.rules.schema import InvalidRule, RuleGroup, parse
from flywheel.warehouse import Warehouse
from tests.rules.brokerage import (
    N_USERS,
    NOW,
    ClickHouseMirror,
    duck_user_ids,
    events_table,
    naive,
    users_table,
)

CANONICAL = {
    "relation": "and",
    "rules": [
        {
            "type": "profile_rule",
            "field": "risk_tolerance",
            "function": "in",
            "params": ["C3", "C4", "C5"],
        },
        {
            "type": "event_rule",
            "measure": {"event": "BuyFund", "aggregator": "count"},
            "window": {"relative_days": 7},
            "function": "gte",
            "params": [2],
        },
        {
            "type": "event_rule",
            "measure": {"event": "RedeemFund", "aggregator": "count"},
            "window": {"relative_days": 30},
            "function": "equal",
            "params": [0],
        },
    ],
}


def _p(field: str, function: str, *params: Any) -> dict[str, Any]:
    return {"type": "profile_rule", "field": field, "function": function, "params": list(params)}


def _e(event: str | None, function: str, *params: Any, **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "type": "event_rule",
        "measure": {"event": event, "aggregator": extra.pop("aggregator", "count")},
        "window": extra.pop("window", {"relative_days": 30}),
        "function": function,
        "params": list(params),
    }
    if "property" in extra:
        rule["measure"]["property"] = extra.pop("property")
    rule.update(extra)
    return rule


FEATURES: dict[str, dict[str, Any]] = {
    "canonical": CANONICAL,
    "profile_equal": {"rules": [_p("city", "equal", "上海")]},
    "profile_not_equal": {"rules": [_p("risk_tolerance", "notEqual", "C1", "C2")]},
    "profile_contain": {"rules": [_p("advisor_id", "contain", "0003")]},
    "profile_not_contain": {"rules": [_p("advisor_id", "notContain", "0003")]},
    "profile_is_set": {"rules": [_p("risk_tolerance", "isSet")]},
    "profile_not_set": {"rules": [_p("risk_tolerance", "notSet")]},
    "profile_bool": {"rules": [_p("has_margin_account", "isTrue")]},
    "profile_bool_false": {"rules": [_p("has_margin_account", "isFalse")]},
    "profile_between": {"rules": [_p("total_assets", "between", 100000, 500000)]},
    "profile_gte": {"rules": [_p("total_assets", "gte", 500000)]},
    "profile_date_before": {"rules": [_p("account_open_date", "before", "2025-06-01")]},
    "profile_date_after": {"rules": [_p("account_open_date", "after", "2026-06-01")]},
    "profile_relative_within": {"rules": [_p("account_open_date", "relativeWithin", 90)]},
    "profile_relative_before": {"rules": [_p("account_open_date", "relativeBefore", 365)]},
    "profile_timestamp_within": {"rules": [_p("last_login_time", "relativeWithin", 7)]},
    "profile_timestamp_after": {"rules": [_p("last_login_time", "after", "2026-10-20")]},
    "profile_list_contain": {"rules": [_p("interests", "contain", "ipo")]},
    "profile_list_equal_any": {"rules": [_p("interests", "equal", "ipo", "margin")]},
    "profile_missing_property": {"rules": [_p("nobody_has_this", "equal", "x")]},
    "profile_missing_not_set": {"rules": [_p("nobody_has_this", "notSet")]},
    "event_count_gte": {"rules": [_e("BuyFund", "gte", 3)]},
    "event_count_lt_includes_no_events": {"rules": [_e("BuyFund", "lt", 2)]},
    "event_did": {"rules": [_e("Login", "did", window={"relative_days": 3})]},
    "event_not_did": {"rules": [_e("Login", "notDid", window={"relative_days": 3})]},
    "event_any": {"rules": [_e(None, "gte", 8)]},
    "event_between": {"rules": [_e("ViewFundDetail", "between", 1, 3)]},
    "event_not_equal": {"rules": [_e("ViewFundDetail", "notEqual", 1)]},
    "event_sum": {"rules": [_e("BuyFund", "gte", 60000, aggregator="sum", property="amount")]},
    "event_sum_zero_ok": {
        "rules": [_e("BuyFund", "lt", 10000, aggregator="sum", property="amount")]
    },
    "event_avg": {"rules": [_e("BuyFund", "gt", 25000, aggregator="avg", property="amount")]},
    "event_max": {"rules": [_e("BuyFund", "gte", 40000, aggregator="max", property="amount")]},
    "event_min": {"rules": [_e("BuyFund", "lte", 5000, aggregator="min", property="amount")]},
    "event_distinct": {
        "rules": [_e("ViewFundDetail", "gte", 2, aggregator="distinct_count", property="item_id")]
    },
    "event_filters_and": {
        "rules": [
            _e(
                "BuyFund",
                "gte",
                1,
                filters={
                    "relation": "and",
                    "conditions": [
                        {"field": "fund_category", "function": "in", "params": ["股票", "指数"]},
                        {"field": "amount", "function": "gt", "params": [20000]},
                    ],
                },
            )
        ]
    },
    "event_filters_or": {
        "rules": [
            _e(
                "AutoInvestPaymentFailed",
                "gte",
                1,
                filters={
                    "relation": "or",
                    "conditions": [
                        {"field": "reason", "function": "equal", "params": ["card_expired"]},
                        {"field": "amount", "function": "isSet"},
                    ],
                },
            )
        ]
    },
    "event_filter_missing_property": {
        "rules": [
            _e(
                "BuyFund",
                "gte",
                1,
                filters={"conditions": [{"field": "nope", "function": "equal", "params": ["a"]}]},
            )
        ]
    },
    "window_trading_days": {"rules": [_e("Login", "gte", 2, window={"relative_trading_days": 5})]},
    "window_this_month": {"rules": [_e("Login", "did", window={"relative": "this_month"})]},
    "window_last_month": {"rules": [_e("Login", "gte", 2, window={"relative": "last_month"})]},
    "window_last_week": {"rules": [_e("Login", "did", window={"relative": "last_week"})]},
    "window_absolute": {
        "rules": [_e("BuyFund", "did", window={"from": "2026-09-01", "to": "2026-09-30"})]
    },
    "sequence_then": {
        "rules": [
            {
                "type": "sequence_rule",
                "window": {"relative_days": 30},
                "steps": [
                    {"event": "ViewFundDetail"},
                    {"event": "BuyFund", "within": {"days": 3}},
                ],
            }
        ]
    },
    "sequence_then_not": {
        "rules": [
            {
                "type": "sequence_rule",
                "window": {"relative_days": 30},
                "steps": [
                    {"event": "ViewFundDetail"},
                    {"event": "BuyFund", "within": {"days": 3}, "negate": True},
                ],
            }
        ]
    },
    "sequence_three_steps": {
        "rules": [
            {
                "type": "sequence_rule",
                "window": {"relative_days": 60},
                "steps": [
                    {"event": "Login"},
                    {
                        "event": "ViewFundDetail",
                        "within": {"days": 7},
                        "filters": {
                            "conditions": [
                                {
                                    "field": "fund_category",
                                    "function": "notEqual",
                                    "params": ["货币"],
                                }
                            ]
                        },
                    },
                    {"event": "BuyFund", "within": {"hours": 48}, "negate": True},
                    {"event": "Login"},
                ],
            }
        ]
    },
    "tag_latest": {
        "rules": [
            {"type": "tag_rule", "tag": "fund_preference", "function": "equal", "params": ["股票"]}
        ]
    },
    "tag_on_day": {
        "rules": [
            {
                "type": "tag_rule",
                "tag": "fund_preference",
                "function": "equal",
                "params": ["股票"],
                "day": "2026-10-31",
            }
        ]
    },
    "tag_numeric": {
        "rules": [{"type": "tag_rule", "tag": "aum_score", "function": "gte", "params": [4]}]
    },
    "tag_not_set": {"rules": [{"type": "tag_rule", "tag": "aum_score", "function": "notSet"}]},
    "segment_static": {"rules": [{"type": "segment_rule", "segment_id": 99}]},
    "segment_not_in": {"rules": [{"type": "segment_rule", "segment_id": 99, "function": "notIn"}]},
    "nested_or": {
        "relation": "or",
        "rules": [
            {"relation": "and", "rules": [_p("city", "equal", "北京"), _e("Login", "gte", 3)]},
            {"rules": [_p("total_assets", "gte", 1000000), _e("RedeemFund", "notDid")]},
        ],
    },
}
# Features whose result may legitimately be everyone or no one.
MAY_BE_TRIVIAL = {
    "profile_missing_property",
    "profile_missing_not_set",
    "event_filter_missing_property",
}


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_duckdb_and_clickhouse_select_the_same_customers(
    name: str, brokerage: Warehouse, clickhouse: ClickHouseMirror, context: RuleContext
) -> None:
    compiled = compile_rule(parse(FEATURES[name]), context)
    on_duckdb = duck_user_ids(brokerage, compiled)
    on_clickhouse = clickhouse.user_ids(compiled)
    assert on_duckdb == on_clickhouse
    if name not in MAY_BE_TRIVIAL:
        assert 0 < len(on_duckdb) < N_USERS, f"{name} selects {len(on_duckdb)} customers"


def test_count_output_matches_on_both(
    brokerage: Warehouse, clickhouse: ClickHouseMirror, context: RuleContext
) -> None:
    compiled = compile_rule(parse(CANONICAL), context, output="count")
    sql, params = compiled.bound("duckdb")
    on_duckdb = brokerage.cursor().execute(sql, params).fetchone()
    assert on_duckdb is not None
    assert on_duckdb[0] == clickhouse.scalar(compiled)


def _events() -> list[dict[str, Any]]:
    return events_table().to_pylist()  # type: ignore[no-any-return]


def _since(days: int) -> Any:
    today = NOW.astimezone(__import__("flywheel.core.clock", fromlist=["SHANGHAI"]).SHANGHAI).date()
    return sh_midnight(today - timedelta(days=days - 1))


def test_canonical_rule_matches_a_python_oracle(brokerage: Warehouse, context: RuleContext) -> None:
    events = _events()
    now = naive(NOW)
    buys = Counter(
        e["user_id"] for e in events if e["event"] == "BuyFund" and _since(7) <= e["time"] <= now
    )
    redeemers = {
        e["user_id"]
        for e in events
        if e["event"] == "RedeemFund" and _since(30) <= e["time"] <= now
    }
    expected = {
        u["user_id"]
        for u in users_table().to_pylist()
        if u["risk_tolerance"] in {"C3", "C4", "C5"}
        and buys[u["user_id"]] >= 2
        and u["user_id"] not in redeemers
    }
    assert expected
    assert duck_user_ids(brokerage, compile_rule(parse(CANONICAL), context)) == expected


def test_did_not_do_includes_customers_with_no_events_at_all(
    brokerage: Warehouse, context: RuleContext
) -> None:
    selected = duck_user_ids(brokerage, compile_rule(parse(FEATURES["event_not_did"]), context))
    silent = {uid for uid in range(1, N_USERS + 1) if uid % 10 == 0}
    assert silent <= selected
    zero = duck_user_ids(
        brokerage,
        compile_rule(
            parse({"rules": [_e("Login", "equal", 0, window={"relative_days": 3})]}), context
        ),
    )
    assert zero == selected


def test_negated_sequence_matches_a_python_oracle(
    brokerage: Warehouse, context: RuleContext
) -> None:
    events = sorted(_events(), key=lambda e: e["time"])
    now = naive(NOW)
    within = timedelta(days=3)
    expected = set()
    for e in events:
        if e["event"] != "ViewFundDetail" or not (_since(30) <= e["time"] <= now):
            continue
        if e["time"] + within > now:
            continue
        bought = any(
            b["user_id"] == e["user_id"]
            and b["event"] == "BuyFund"
            and e["time"] < b["time"] <= e["time"] + within
            for b in events
        )
        if not bought:
            expected.add(e["user_id"])
    assert expected
    got = duck_user_ids(brokerage, compile_rule(parse(FEATURES["sequence_then_not"]), context))
    assert got == expected


def test_missing_property_is_unset_with_a_warning(context: RuleContext) -> None:
    compiled = compile_rule(parse(FEATURES["profile_missing_property"]), context)
    assert compiled.warnings == [
        "rules[0]: profile property 'nobody_has_this' does not exist yet; treated as unset"
    ]


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"rules": [_p("total_assets", "gte", "lots")]}, "rules[0].params[0]"),
        ({"rules": [_p("total_assets", "contain", "1")]}, "rules[0].function"),
        ({"rules": [_p("city", "isTrue")]}, "rules[0].function"),
        ({"rules": [_p("city", "relativeWithin", 3)]}, "rules[0].function"),
        (
            {
                "rules": [
                    {"rules": [_p("city", "equal", "x"), _p("account_open_date", "after", "soon")]}
                ]
            },
            "rules[0].rules[1].params[0]",
        ),
    ],
)
def test_rules_that_do_not_fit_the_schema_name_the_bad_part(
    rule: dict[str, Any], path: str, context: RuleContext
) -> None:
    with pytest.raises(InvalidRule) as caught:
        compile_rule(parse(rule), context)
    assert caught.value.detail["path"] == path
    assert caught.value.message.startswith(path + ":")


def test_scope_limits_to_the_branch(
    brokerage: Warehouse, clickhouse: ClickHouseMirror, context: RuleContext
) -> None:
    rule: RuleGroup = parse({"rules": [_p("risk_tolerance", "isSet")]})
    compiled = compile_rule(rule, context, scope=('u."branch" IN (?, ?)', ["BR001", "BR003"]))
    scoped = duck_user_ids(brokerage, compiled)
    branches = {u["user_id"]: u["branch"] for u in users_table().to_pylist()}
    assert scoped and {branches[uid] for uid in scoped} == {"BR001", "BR003"}
    assert clickhouse.user_ids(compiled) == scoped


def test_segment_reference_cycle_is_refused(context: RuleContext) -> None:
    loop = parse({"rules": [{"type": "segment_rule", "segment_id": 5}]})
    context.resolve_segment = lambda _segment_id: loop
    with pytest.raises(InvalidRule, match="refers to itself"):
        compile_rule(loop, context)
