"""Analyses on a real DuckDB warehouse, checked against plain-Python reference implementations."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from flywheel.analytics import service
from flywheel.analytics.schemas import (
    AttributionIn,
    DistributionIn,
    EventAnalysisIn,
    FunnelIn,
    RetentionIn,
)
from flywheel.auth.schemas import Principal
from flywheel.core.errors import InvalidInput
from flywheel.runtime import Runtime
from tests.analytics import reference
from tests.analytics.conftest import NOW
from tests.analytics.dataset import Dataset

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}
START, END = reference.day_start(date(2026, 10, 1)), reference.day_start(date(2026, 11, 1))


def _in_october(row: dict[str, Any]) -> bool:
    return START <= row["time"] < END


def _events(runtime: Runtime, project_id: int, body: dict[str, Any], **kw: Any) -> Any:
    return service.event_analysis(
        warehouse=runtime.warehouse,
        project_id=project_id,
        request=EventAnalysisIn.model_validate(body),
        now=NOW,
        **kw,
    )


def test_daily_counts_match_reference(runtime: Runtime, project_id: int, loaded: Dataset) -> None:
    result = _events(
        runtime,
        project_id,
        {"series": [{"event": "$AppStart"}], "date_range": OCTOBER, "bucket": "day"},
    )
    expected = Counter(
        reference.local_day(r["time"]).isoformat()
        for r in loaded.events
        if r["event"] == "$AppStart" and _in_october(r)
    )
    assert result.columns == ["series", "event", "measure", "bucket", "value"]
    assert {row[3]: row[4] for row in result.rows} == expected


def test_uniques_and_sums_by_profile_dimension_with_filters(
    runtime: Runtime, project_id: int, loaded: Dataset
) -> None:
    branch = {u["user_id"]: u["branch"] for u in loaded.users}
    result = _events(
        runtime,
        project_id,
        {
            "series": [
                {"event": "BuyFund", "measure": "sum", "property": "amount"},
                {
                    "event": "BuyFund",
                    "measure": "uniques",
                    "filters": [{"property": "fund_category", "op": "eq", "value": "股票"}],
                },
            ],
            "date_range": OCTOBER,
            "bucket": "total",
            "group_by": ["user.branch"],
            "filters": [{"property": "user.branch", "op": "in", "value": ["BR001", "BR002"]}],
        },
    )
    buys = [
        r
        for r in loaded.events
        if r["event"] == "BuyFund" and _in_october(r) and branch[r["user_id"]] != "BR003"
    ]
    sums: Counter[str] = Counter()
    for r in buys:
        sums[branch[r["user_id"]]] += r["amount"]
    uniques = {
        b: len(
            {
                r["user_id"]
                for r in buys
                if branch[r["user_id"]] == b and r["fund_category"] == "股票"
            }
        )
        for b in ("BR001", "BR002")
    }
    got_sum = {row[3]: row[4] for row in result.rows if row[0] == 0}
    got_uniques = {row[3]: row[4] for row in result.rows if row[0] == 1}
    assert got_sum == pytest.approx(dict(sums))
    assert got_uniques == uniques


def test_list_contains_and_weekly_buckets(
    runtime: Runtime, project_id: int, loaded: Dataset
) -> None:
    result = _events(
        runtime,
        project_id,
        {
            "series": [{"filters": [{"property": "labels", "op": "contains", "value": "vip"}]}],
            "date_range": OCTOBER,
            "bucket": "week",
        },
    )
    expected: Counter[str] = Counter()
    for r in loaded.events:
        if _in_october(r) and "vip" in (r.get("labels") or []):
            day = reference.local_day(r["time"])
            expected[(day - timedelta(days=day.weekday())).isoformat()] += 1
    assert {row[3]: row[4] for row in result.rows} == expected


def test_unknown_or_mistyped_property_is_named(
    runtime: Runtime, project_id: int, loaded: Dataset
) -> None:
    with pytest.raises(InvalidInput, match="unknown event property 'amout'"):
        _events(runtime, project_id, {"series": [{"measure": "sum", "property": "amout"}]})
    with pytest.raises(InvalidInput, match="unknown user property 'brnch'"):
        _events(runtime, project_id, {"series": [{}], "group_by": ["user.brnch"]})
    with pytest.raises(InvalidInput, match="'fund_category'"):
        _events(runtime, project_id, {"series": [{"measure": "sum", "property": "fund_category"}]})
    with pytest.raises(InvalidInput, match="does not fit property 'amount'"):
        _events(
            runtime,
            project_id,
            {"series": [{"filters": [{"property": "amount", "op": "gt", "value": "big"}]}]},
        )


def test_values_are_bound_never_spliced(runtime: Runtime, project_id: int, loaded: Dataset) -> None:
    hostile = "x' OR 1=1; DROP TABLE p1_events; --"
    result = _events(
        runtime,
        project_id,
        {"series": [{"event": hostile}], "bucket": "total", "date_range": OCTOBER},
    )
    assert result.rows == [[0, hostile, "count", 0]]
    assert hostile not in (result.sql or "")


def _any(_row: dict[str, Any]) -> bool:
    return True


FUNNEL_STEPS = [
    ("$AppStart", _any),
    ("$SignUp", _any),
    ("ViewFundDetail", _any),
    ("BuyFund", lambda r: (r.get("amount") or 0) > 5000),
]


@pytest.mark.parametrize("window_days", [1, 7])
def test_funnel_matches_reference(
    runtime: Runtime, project_id: int, loaded: Dataset, window_days: int
) -> None:
    request = FunnelIn.model_validate(
        {
            "steps": [
                {"event": "$AppStart"},
                {"event": "$SignUp"},
                {"event": "ViewFundDetail"},
                {
                    "event": "BuyFund",
                    "filters": [{"property": "amount", "op": "gt", "value": 5000}],
                },
            ],
            "date_range": OCTOBER,
            "window_days": window_days,
            "dropped_step": 3,
            "dropped_limit": 10_000,
        }
    )
    result = service.funnel(
        warehouse=runtime.warehouse, project_id=project_id, request=request, now=NOW
    )
    counts, reached = reference.funnel(
        loaded.events, FUNNEL_STEPS, START, END, timedelta(days=window_days)
    )
    assert [s.users for s in result.steps] == counts
    assert result.steps[1].conversion_from_previous == pytest.approx(counts[1] / counts[0])
    assert result.steps[3].conversion_overall == pytest.approx(counts[3] / counts[0])
    assert result.dropped_user_ids == sorted(reached[2] - reached[3])
    assert result.steps[0].median_seconds_from_previous is None
    assert result.steps[1].median_seconds_from_previous is not None


def test_funnel_same_event_twice_needs_two_events(
    runtime: Runtime, project_id: int, loaded: Dataset
) -> None:
    request = FunnelIn.model_validate(
        {"steps": [{"event": "$AppStart"}, {"event": "$AppStart"}], "date_range": OCTOBER}
    )
    result = service.funnel(
        warehouse=runtime.warehouse, project_id=project_id, request=request, now=NOW
    )
    counts, _ = reference.funnel(
        loaded.events,
        [("$AppStart", _any), ("$AppStart", _any)],
        START,
        END,
        timedelta(days=7),
    )
    assert [s.users for s in result.steps] == counts
    assert counts[1] < counts[0]


def test_funnel_grouped_by_profile_property(
    runtime: Runtime, project_id: int, loaded: Dataset
) -> None:
    channel = {u["user_id"]: u["channel"] for u in loaded.users}
    request = FunnelIn.model_validate(
        {
            "steps": [{"event": "$AppStart"}, {"event": "BuyFund"}],
            "date_range": OCTOBER,
            "group_by": "user.channel",
        }
    )
    result = service.funnel(
        warehouse=runtime.warehouse, project_id=project_id, request=request, now=NOW
    )
    _, reached = reference.funnel(
        loaded.events,
        [("$AppStart", _any), ("BuyFund", _any)],
        START,
        END,
        timedelta(days=7),
    )
    got = {(s.group, s.step): s.users for s in result.steps}
    for group in ("app_store", "referral", "wechat"):
        for step in (1, 2):
            assert got[(group, step)] == sum(channel[u] == group for u in reached[step])


@pytest.mark.parametrize(
    ("first", "periods"),
    [(date(2026, 10, 1), 7), (date(2026, 9, 1), 12)],  # the second needs a two-word bitmap
)
def test_daily_retention_matches_reference(
    runtime: Runtime, project_id: int, loaded: Dataset, first: date, periods: int
) -> None:
    request = RetentionIn.model_validate(
        {
            "start_event": "$SignUp",
            "return_event": "$AppStart",
            "unit": "day",
            "periods": periods,
            "date_range": {"from": first.isoformat(), "to": "2026-11-01"},
        }
    )
    result = service.retention(
        warehouse=runtime.warehouse, project_id=project_id, request=request, now=NOW
    )
    expected = reference.retention_days(
        loaded.events,
        "$SignUp",
        "$AppStart",
        first,
        date(2026, 11, 1),
        periods,
        date(2026, 11, 2),
    )
    got = {c.cohort: [c.size, *c.retained] for c in result.cohorts}
    assert got == expected
    assert sum(sum(r for r in row[2:] if r) for row in expected.values()) > 0
    last = result.cohorts[-1]
    assert last.cohort == date(2026, 11, 1) and last.retained[2] is None  # not yet happened
    assert result.columns[:3] == ["cohort", "size", "day_0"]


def test_weekly_retention_is_consistent(runtime: Runtime, project_id: int, loaded: Dataset) -> None:
    request = RetentionIn.model_validate(
        {"start_event": "$AppStart", "unit": "week", "periods": 3, "date_range": OCTOBER}
    )
    result = service.retention(
        warehouse=runtime.warehouse, project_id=project_id, request=request, now=NOW
    )
    assert all(c.cohort.weekday() == 0 for c in result.cohorts)
    # any event counts as a return, so week 0 is everyone
    assert all(c.retained[0] == c.size for c in result.cohorts)
    assert sum(c.size for c in result.cohorts) == len(
        {r["user_id"] for r in loaded.events if r["event"] == "$AppStart" and _in_october(r)}
    )


def test_distribution_of_event_counts(runtime: Runtime, project_id: int, loaded: Dataset) -> None:
    request = DistributionIn.model_validate({"date_range": OCTOBER, "edges": [1, 2, 4, 8]})
    result = service.distribution(
        warehouse=runtime.warehouse, project_id=project_id, request=request, now=NOW
    )
    per_user = Counter(r["user_id"] for r in loaded.events if _in_october(r))
    expected = Counter(1 if c < 2 else 2 if c < 4 else 3 if c < 8 else 4 for c in per_user.values())
    assert {row[0]: row[3] for row in result.rows} == {k: expected.get(k, 0) for k in (1, 2, 3, 4)}
    assert result.total_users == len(per_user)


@pytest.mark.parametrize("model", ["last_touch", "first_touch"])
def test_attribution_matches_reference(
    runtime: Runtime, project_id: int, loaded: Dataset, model: str
) -> None:
    request = AttributionIn.model_validate(
        {
            "conversion_event": "BuyFund",
            "touch_events": ["$AppStart", "Search", "WeChatFollow"],
            "by": "utm_source",
            "model": model,
            "window_days": 10,
            "value_property": "amount",
            "date_range": OCTOBER,
        }
    )
    result = service.attribution(
        warehouse=runtime.warehouse, project_id=project_id, request=request, now=NOW
    )
    expected = reference.attribution(
        loaded.events,
        "BuyFund",
        {"$AppStart", "Search", "WeChatFollow"},
        "utm_source",
        timedelta(days=10),
        START,
        END,
        last_touch=model == "last_touch",
    )
    assert {row[0]: row[1] for row in result.rows} == expected
    assert result.total_conversions == sum(expected.values())
    assert result.unattributed == expected.get(None, 0)


def test_branch_scope_limits_every_analysis(
    runtime: Runtime, project_id: int, loaded: Dataset
) -> None:
    branch = {u["user_id"]: u["branch"] for u in loaded.users}
    scoped = Principal(
        user_id=9,
        username="br1",
        role="analyst",
        permissions=frozenset({"analytics:read"}),
        branch_scope=("BR001",),
    )
    result = _events(
        runtime,
        project_id,
        {"series": [{"measure": "uniques"}], "bucket": "total", "date_range": OCTOBER},
        principal=scoped,
    )
    expected = len(
        {r["user_id"] for r in loaded.events if _in_october(r) and branch[r["user_id"]] == "BR001"}
    )
    assert result.rows[0][-1] == expected
    funnel = service.funnel(
        warehouse=runtime.warehouse,
        project_id=project_id,
        request=FunnelIn.model_validate(
            {
                "steps": [{"event": "$AppStart"}, {"event": "$SignUp"}],
                "date_range": OCTOBER,
                "dropped_step": 2,
                "dropped_limit": 10_000,
            }
        ),
        now=NOW,
        principal=scoped,
    )
    assert funnel.dropped_user_ids
    assert {branch[u] for u in funnel.dropped_user_ids} == {"BR001"}


def test_empty_project_answers_empty(runtime: Runtime, project_id: int) -> None:
    result = _events(runtime, project_id, {"series": [{"event": "BuyFund"}], "date_range": OCTOBER})
    assert result.rows == []
    funnel = service.funnel(
        warehouse=runtime.warehouse,
        project_id=project_id,
        request=FunnelIn.model_validate({"steps": [{"event": "a"}, {"event": "b"}]}),
        now=NOW,
    )
    assert [s.users for s in funnel.steps] == [0, 0]
    assert funnel.steps[1].conversion_from_previous is None


def test_csv_export_has_header_and_rows(runtime: Runtime, project_id: int, loaded: Dataset) -> None:
    result = _events(
        runtime, project_id, {"series": [{"event": "$AppStart"}], "date_range": OCTOBER}
    )
    lines = service.to_csv(result).splitlines()
    assert lines[0] == "series,event,measure,bucket,value"
    assert len(lines) == len(result.rows) + 1
    assert lines[1].startswith("0,$AppStart,count,2026-10-")


def test_business_days_are_shanghai() -> None:
    from flywheel.analytics.schemas import DateRange

    first, last = service.business_days(
        DateRange(last_days=7), datetime(2026, 11, 1, 17, 0).astimezone()
    )
    assert (last - first).days == 6
    assert service.day_start_utc(date(2026, 10, 1)) == datetime(2026, 9, 30, 16, 0)


def test_segment_filter_limits_to_members(
    runtime: Runtime, project_id: int, loaded: Dataset
) -> None:
    cur = runtime.warehouse.cursor()
    cur.execute(
        f'CREATE TABLE IF NOT EXISTS "p{project_id}_segment_members" '
        "(segment_id BIGINT NOT NULL, user_id BIGINT NOT NULL, since TIMESTAMP NOT NULL)"
    )
    members = list(range(1, 301, 3))
    cur.executemany(
        f"INSERT INTO \"p{project_id}_segment_members\" VALUES (7, ?, TIMESTAMP '2026-10-01')",
        [[u] for u in members],
    )
    october = [r for r in loaded.events if _in_october(r)]
    inside = _events(
        runtime,
        project_id,
        {
            "series": [{"measure": "uniques"}],
            "bucket": "total",
            "date_range": OCTOBER,
            "filters": [{"segment_id": 7}],
        },
    )
    outside = _events(
        runtime,
        project_id,
        {
            "series": [{"measure": "uniques"}],
            "bucket": "total",
            "date_range": OCTOBER,
            "filters": [{"segment_id": 7, "exclude": True}],
        },
    )
    users = {r["user_id"] for r in october}
    assert inside.rows[0][-1] == len(users & set(members))
    assert outside.rows[0][-1] == len(users - set(members))


def test_tag_value_dimension_and_filter_use_the_latest_version(
    runtime: Runtime, project_id: int, loaded: Dataset
) -> None:
    cur = runtime.warehouse.cursor()
    cur.execute(
        f'CREATE TABLE IF NOT EXISTS "p{project_id}_tag_values" (tag VARCHAR NOT NULL, '
        "user_id BIGINT NOT NULL, value VARCHAR, day DATE NOT NULL, computed_at TIMESTAMP NOT NULL)"
    )
    rows = []
    for user in range(1, 301):
        rows.append(["activity", user, "low", date(2026, 10, 1)])
        rows.append(["activity", user, "high" if user % 2 else "low", date(2026, 10, 20)])
        rows.append(["other", user, "zzz", date(2026, 10, 25)])
    cur.executemany(
        f"INSERT INTO \"p{project_id}_tag_values\" VALUES (?, ?, ?, ?, TIMESTAMP '2026-10-25')",
        rows,
    )
    result = _events(
        runtime,
        project_id,
        {
            "series": [{"measure": "uniques"}],
            "bucket": "total",
            "date_range": OCTOBER,
            "group_by": ["tag.activity"],
        },
    )
    users = {r["user_id"] for r in loaded.events if _in_october(r)}
    expected = {
        "high": sum(1 for u in users if u % 2),
        "low": sum(1 for u in users if not u % 2),
    }
    assert {row[3]: row[4] for row in result.rows} == expected
    funnel = service.funnel(
        warehouse=runtime.warehouse,
        project_id=project_id,
        request=FunnelIn.model_validate(
            {
                "steps": [{"event": "$AppStart"}, {"event": "$SignUp"}],
                "date_range": OCTOBER,
                "filters": [{"property": "tag.activity", "value": "high"}],
                "group_by": "tag.other",
            }
        ),
        now=NOW,
    )
    assert {s.group for s in funnel.steps} == {"zzz"}
    assert funnel.steps[0].users == expected["high"]
