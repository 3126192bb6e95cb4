"""The rule DSL: round trip of generated rules, error paths, the canonical rule as written."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.rules.schema import InvalidRule, dump, parse, referenced_segments, referenced_tags
from tests.rules.test_engines import CANONICAL

names = st.from_regex(r"^[a-z_][a-z0-9_]{0,12}$", fullmatch=True)
events = st.from_regex(r"^[A-Z][A-Za-z]{0,12}$", fullmatch=True)
scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=20),
)
value_functions = {
    "equal": st.lists(scalars, min_size=1, max_size=4),
    "in": st.lists(scalars, min_size=1, max_size=4),
    "notIn": st.lists(scalars, min_size=1, max_size=4),
    "contain": st.lists(st.text(max_size=10), min_size=1, max_size=1),
    "isSet": st.just([]),
    "notSet": st.just([]),
    "isTrue": st.just([]),
    "gt": st.lists(st.integers(0, 10**6), min_size=1, max_size=1),
    "between": st.lists(st.integers(0, 10**6), min_size=2, max_size=2),
    "relativeWithin": st.lists(st.integers(1, 3650), min_size=1, max_size=1),
}


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    function = draw(st.sampled_from(sorted(value_functions)))
    return {"field": draw(names), "function": function, "params": draw(value_functions[function])}


windows = st.one_of(
    st.builds(lambda n: {"relative_days": n}, st.integers(1, 3650)),
    st.builds(lambda n: {"relative_trading_days": n}, st.integers(1, 250)),
    st.builds(
        lambda r: {"relative": r},
        st.sampled_from(["today", "yesterday", "this_week", "this_month", "last_month"]),
    ),
    st.builds(
        lambda a, b: {"from": min(a, b).isoformat(), "to": max(a, b).isoformat()},
        st.dates(),
        st.dates(),
    ),
)
filters = st.one_of(
    st.none(),
    st.builds(
        lambda r, c: {"relation": r, "conditions": c},
        st.sampled_from(["and", "or"]),
        st.lists(conditions(), min_size=1, max_size=3),
    ),
)


@st.composite
def profile_rules(draw: st.DrawFn) -> dict[str, Any]:
    return {"type": "profile_rule", **draw(conditions())}


@st.composite
def event_rules(draw: st.DrawFn) -> dict[str, Any]:
    aggregator = draw(st.sampled_from(["count", "distinct_count", "sum", "avg", "max", "min"]))
    measure: dict[str, Any] = {
        "event": draw(st.one_of(st.none(), events)),
        "aggregator": aggregator,
    }
    if aggregator != "count":
        measure["property"] = draw(names)
    function = draw(st.sampled_from(["equal", "gte", "lt", "between", "did", "notDid"]))
    params = {"between": [1, 5], "did": [], "notDid": []}.get(function, [draw(st.integers(0, 99))])
    rule = {
        "type": "event_rule",
        "measure": measure,
        "window": draw(windows),
        "function": function,
        "params": params,
    }
    chosen = draw(filters)
    if chosen is not None:
        rule["filters"] = chosen
    return rule


@st.composite
def sequence_rules(draw: st.DrawFn) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"event": draw(events)}]
    for _ in range(draw(st.integers(1, 3))):
        negate = draw(st.booleans())
        step: dict[str, Any] = {"event": draw(events), "negate": negate}
        if negate or draw(st.booleans()):
            step["within"] = {"days": draw(st.integers(1, 30)), "hours": draw(st.integers(0, 23))}
        steps.append(step)
    return {"type": "sequence_rule", "window": draw(windows), "steps": steps}


leaf_rules = st.one_of(
    profile_rules(),
    event_rules(),
    sequence_rules(),
    st.builds(
        lambda t, v: {"type": "tag_rule", "tag": t, "function": "in", "params": v},
        names,
        st.lists(st.text(max_size=8), min_size=1, max_size=3),
    ),
    st.builds(
        lambda i, f: {"type": "segment_rule", "segment_id": i, "function": f},
        st.integers(1, 10**6),
        st.sampled_from(["in", "notIn"]),
    ),
)
rule_trees = st.recursive(
    leaf_rules,
    lambda children: st.builds(
        lambda r, c: {"relation": r, "rules": c},
        st.sampled_from(["and", "or"]),
        st.lists(children, min_size=1, max_size=4),
    ),
    max_leaves=12,
).map(lambda tree: tree if "relation" in tree else {"relation": "and", "rules": [tree]})


@settings(max_examples=150, deadline=None)
@given(rule_trees)
def test_parse_dump_round_trip(tree: dict[str, Any]) -> None:
    rule = parse(tree)
    assert parse(dump(rule)) == rule
    assert dump(parse(dump(rule))) == dump(rule)


AGGREGATORS = "'count', 'distinct_count', 'sum', 'avg', 'max' or 'min'"


@settings(max_examples=60, deadline=None)
@given(rule_trees, st.text(min_size=1, max_size=10).filter(lambda s: s not in AGGREGATORS))
def test_a_bad_aggregator_is_named_by_its_path(tree: dict[str, Any], bad: str) -> None:
    broken = {"relation": "and", "rules": [*tree["rules"], _bad_event(bad)]}
    index = len(broken["rules"]) - 1
    with pytest.raises(InvalidRule) as caught:
        parse(broken)
    assert caught.value.detail["path"] == f"rules[{index}].measure.aggregator"
    assert caught.value.message.startswith(f"rules[{index}].measure.aggregator: ")


def _bad_event(aggregator: str) -> dict[str, Any]:
    return {
        "type": "event_rule",
        "measure": {"event": "BuyFund", "aggregator": aggregator},
        "window": {"relative_days": 7},
        "function": "gte",
        "params": [2],
    }


def test_the_canonical_rule_is_accepted_as_written() -> None:
    rule = parse(CANONICAL)
    assert dump(rule)["rules"] == [
        {**r, "measure": {**r["measure"]}} if "measure" in r else r for r in CANONICAL["rules"]
    ]


@pytest.mark.parametrize(
    ("tree", "path", "fragment"),
    [
        ({"rules": []}, "rules", "at least 1"),
        (
            {"relation": "xor", "rules": [{"type": "segment_rule", "segment_id": 1}]},
            "relation",
            "'and'",
        ),
        ({"rules": [{"type": "weird"}]}, "rules[0]", "unknown rule type"),
        (
            {
                "rules": [
                    {"type": "profile_rule", "field": "a b", "function": "equal", "params": [1]}
                ]
            },
            "rules[0].field",
            "pattern",
        ),
        (
            {
                "rules": [
                    {"type": "profile_rule", "field": "a", "function": "between", "params": [1]}
                ]
            },
            "rules[0]",
            "takes 2 params",
        ),
        (
            {
                "rules": [
                    {
                        "rules": [
                            {"type": "segment_rule", "segment_id": 1},
                            {
                                "type": "event_rule",
                                "measure": {"event": "BuyFund", "aggregator": "sum"},
                                "window": {"relative_days": 7},
                                "function": "gte",
                                "params": [1],
                            },
                        ]
                    }
                ]
            },
            "rules[0].rules[1].measure",
            "needs a property",
        ),
        (
            {
                "rules": [
                    {
                        "type": "sequence_rule",
                        "window": {"relative_days": 7},
                        "steps": [{"event": "A"}, {"event": "B", "negate": True}],
                    }
                ]
            },
            "rules[0].steps[1]",
            "needs 'within'",
        ),
        (
            {
                "rules": [
                    {
                        "type": "event_rule",
                        "measure": {"event": "BuyFund"},
                        "window": {"relative_days": 7},
                        "function": "gte",
                        "params": ["two"],
                    }
                ]
            },
            "rules[0]",
            "compares numbers",
        ),
        (
            {
                "rules": [
                    {
                        "type": "event_rule",
                        "measure": {"event": "BuyFund"},
                        "window": {"from": "2026-01-02"},
                        "function": "did",
                    }
                ]
            },
            "rules[0].window",
            "both 'from' and 'to'",
        ),
        (
            {"rules": [{"type": "segment_rule", "segment_id": 1, "extra": 1}]},
            "rules[0].extra",
            "not permitted",
        ),
    ],
)
def test_invalid_rules_point_at_the_bad_part(
    tree: dict[str, Any], path: str, fragment: str
) -> None:
    with pytest.raises(InvalidRule) as caught:
        parse(tree)
    assert caught.value.detail["path"] == path
    assert fragment in caught.value.message


def test_references_are_listed_for_lineage() -> None:
    rule = parse(
        {
            "relation": "or",
            "rules": [
                {"type": "tag_rule", "tag": "rfm", "function": "in", "params": ["R5"]},
                {"rules": [{"type": "segment_rule", "segment_id": 4, "function": "notIn"}]},
            ],
        }
    )
    assert referenced_tags(rule) == {"rfm"}
    assert referenced_segments(rule) == {4}
