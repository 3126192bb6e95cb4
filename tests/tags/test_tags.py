"""Tags: every kind computed on the warehouse, dated versions, scheduling, lineage, SQL sandbox,
imports, real-time updates and the API."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from flywheel.core.clock import FrozenClock
from flywheel.core.errors import Conflict
from flywheel.rules.compiler import sh_midnight
from flywheel.rules.schema import InvalidRule
from flywheel.runtime import Runtime
from flywheel.tags import service
from flywheel.tags.schemas import TagIn
from flywheel.tags.tasks import RealtimeTagUpdater, TagScheduler
from flywheel.warehouse import TableKind
from tests.rules.brokerage import N_USERS, NOW, events_table, naive, users_table

P = 1


def _create(runtime: Runtime, name: str, kind: str, spec: dict[str, Any], **extra: Any) -> int:
    with runtime.db.unit_of_work() as session:
        tag = service.create_tag(
            session=session,
            project_id=P,
            tag_in=TagIn(name=name, kind=kind, spec=spec, **extra),  # type: ignore[arg-type]
            actor="test",
            now=runtime.clock(),
        )
    return tag.id


def _run(runtime: Runtime, tag_id: int) -> Any:
    with runtime.db.unit_of_work() as session:
        return service.run_tag(
            session=session,
            warehouse=runtime.warehouse,
            project_id=P,
            tag_id=tag_id,
            now=runtime.clock(),
        )


def _values(runtime: Runtime, tag: str) -> dict[int, str]:
    rows = runtime.warehouse.fetch(
        "SELECT user_id, value FROM p1_tag_values WHERE tag = ? AND day = "
        "(SELECT MAX(day) FROM p1_tag_values WHERE tag = ?)",
        [tag, tag],
    )
    return {int(r[0]): r[1] for r in rows}


def _since(days: int) -> datetime:
    return sh_midnight(date(2026, 11, 2) - timedelta(days=days - 1))


def _count(event: str, days: int) -> Counter[int]:
    now = naive(NOW)
    return Counter(
        e["user_id"]
        for e in events_table().to_pylist()
        if e["event"] == event and _since(days) <= e["time"] <= now
    )


RULE_SPEC = {
    "values": [
        {
            "value": "active_buyer",
            "rule": {
                "rules": [
                    {
                        "type": "event_rule",
                        "measure": {"event": "BuyFund"},
                        "window": {"relative_days": 30},
                        "function": "gte",
                        "params": [3],
                    }
                ]
            },
        },
        {
            "value": "viewer",
            "rule": {
                "rules": [
                    {
                        "type": "event_rule",
                        "measure": {"event": "ViewFundDetail"},
                        "window": {"relative_days": 30},
                        "function": "did",
                    }
                ]
            },
        },
        {
            "value": "dormant",
            "rule": {
                "rules": [
                    {
                        "type": "event_rule",
                        "measure": {"event": None},
                        "window": {"relative_days": 30},
                        "function": "notDid",
                    }
                ]
            },
        },
    ]
}


def test_rule_tag_gives_the_first_matching_value(loaded: Runtime) -> None:
    run = _run(loaded, _create(loaded, "activity", "rule", RULE_SPEC))
    assert run.status == "ok", run.error
    values = _values(loaded, "activity")
    buys, views, anything = _count("BuyFund", 30), _count("ViewFundDetail", 30), Counter()
    for e in events_table().to_pylist():
        if _since(30) <= e["time"] <= naive(NOW):
            anything[e["user_id"]] += 1
    expected: dict[int, str] = {}
    for uid in range(1, N_USERS + 1):
        if buys[uid] >= 3:
            expected[uid] = "active_buyer"
        elif views[uid] >= 1:
            expected[uid] = "viewer"
        elif anything[uid] == 0:
            expected[uid] = "dormant"
    assert values == expected
    assert set(values.values()) == {"active_buyer", "viewer", "dormant"}
    assert run.users == len(expected)


def test_metric_tag_buckets_include_customers_without_events(loaded: Runtime) -> None:
    spec = {
        "measure": {"event": "BuyFund", "aggregator": "count"},
        "window": {"relative_days": 30},
        "buckets": [
            {"value": "none", "max": 1},
            {"value": "low", "min": 1, "max": 3},
            {"value": "high", "min": 3},
        ],
    }
    _run(loaded, _create(loaded, "buy_level", "metric", spec))
    buys = _count("BuyFund", 30)
    expected = {
        uid: "none" if buys[uid] < 1 else "low" if buys[uid] < 3 else "high"
        for uid in range(1, N_USERS + 1)
    }
    assert _values(loaded, "buy_level") == expected


def test_metric_tag_quantiles_order_the_measure(loaded: Runtime) -> None:
    spec = {
        "measure": {"event": "BuyFund", "aggregator": "sum", "property": "amount"},
        "window": {"relative_days": 90},
        "quantiles": 4,
    }
    _run(loaded, _create(loaded, "buy_quartile", "metric", spec))
    values = _values(loaded, "buy_quartile")
    assert len(values) == N_USERS
    totals: dict[int, float] = defaultdict(float)
    for e in events_table().to_pylist():
        if e["event"] == "BuyFund" and e["time"] >= _since(90):
            totals[e["user_id"]] += e["amount"]
    by_quartile: dict[str, list[float]] = defaultdict(list)
    for uid, value in values.items():
        by_quartile[value].append(totals[uid])
    assert sorted(by_quartile) == ["Q1", "Q2", "Q3", "Q4"]
    assert max(by_quartile["Q1"]) <= min(by_quartile["Q4"])
    assert max(by_quartile["Q3"]) <= min(by_quartile["Q4"])


def test_first_last_and_preference_tags(loaded: Runtime) -> None:
    _run(
        loaded,
        _create(
            loaded, "days_since_login", "first_last", {"event": "Login", "output": "days_since"}
        ),
    )
    _run(
        loaded,
        _create(
            loaded,
            "last_fund_viewed",
            "first_last",
            {"event": "ViewFundDetail", "output": "property", "property": "item_id"},
        ),
    )
    _run(
        loaded,
        _create(
            loaded,
            "favourite_category",
            "preference",
            {"event": "BuyFund", "property": "fund_category", "window": {"relative_days": 90}},
        ),
    )
    events = sorted(events_table().to_pylist(), key=lambda e: e["time"])
    last_login: dict[int, datetime] = {}
    last_view: dict[int, str] = {}
    categories: dict[int, Counter[str]] = defaultdict(Counter)
    for e in events:
        if e["event"] == "Login":
            last_login[e["user_id"]] = e["time"]
        if e["event"] == "ViewFundDetail":
            last_view[e["user_id"]] = e["item_id"]
        if e["event"] == "BuyFund" and e["time"] >= _since(90):
            categories[e["user_id"]][e["fund_category"]] += 1
    today = date(2026, 11, 2)
    expected_days = {
        uid: str((today - (t + timedelta(hours=8)).date()).days) for uid, t in last_login.items()
    }
    assert _values(loaded, "days_since_login") == expected_days
    assert _values(loaded, "last_fund_viewed") == last_view
    favourite = _values(loaded, "favourite_category")
    assert set(favourite) == set(categories)
    for uid, counts in categories.items():
        top = max(counts.values())
        assert favourite[uid] == min(c for c, n in counts.items() if n == top)


def test_rfm_scores(loaded: Runtime) -> None:
    _run(loaded, _create(loaded, "rfm", "rfm", {"window": {"relative_days": 90}}))
    values = _values(loaded, "rfm")
    buyers = {e["user_id"] for e in events_table().to_pylist() if e["event"] == "BuyFund"}
    assert set(values) == buyers
    assert all(len(v) == 6 and v[0] == "R" and v[2] == "F" and v[4] == "M" for v in values.values())
    assert {v[1] for v in values.values()} == {"1", "2", "3", "4", "5"}


def test_sql_tag_reads_only_the_project_views(loaded: Runtime) -> None:
    tag_id = _create(
        loaded,
        "rich",
        "sql",
        {
            "query": "SELECT user_id, CASE WHEN total_assets >= 500000 THEN 'yes' END AS value "
            "FROM users"
        },
    )
    assert _run(loaded, tag_id).status == "ok"
    rich = {u["user_id"] for u in users_table().to_pylist() if (u["total_assets"] or 0) >= 500000}
    assert {uid for uid, v in _values(loaded, "rich").items() if v == "yes"} == rich


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("SELECT 1 AS user_id, 'x' AS value FROM read_csv('/etc/passwd')", "only the views"),
        ("SELECT user_id, 'x' AS value FROM _flywheel_ddl", "unknown view"),
        ("SELECT user_id, 'x' AS value FROM main.p1_users", "only the views"),
        ("DELETE FROM users", "exactly one SELECT"),
        ("SELECT user_id, 'a' AS value FROM users; DROP TABLE users", "exactly one SELECT"),
        ("SELECT user_id, getenv('HOME') AS value FROM users", "not allowed"),
        ("SELECT user_id FROM users", "user_id and value"),
    ],
)
def test_sql_tag_sandbox_refuses(loaded: Runtime, query: str, fragment: str) -> None:
    tag_id = _create(loaded, "bad_sql", "sql", {"query": query})
    run = _run(loaded, tag_id)
    assert run.status == "failed"
    assert fragment in run.error


def test_versions_answer_value_on_day_and_history(loaded: Runtime) -> None:
    spec = {
        "measure": {"event": "Login", "aggregator": "count"},
        "window": {"relative_days": 7},
        "buckets": [{"value": "quiet", "max": 2}, {"value": "busy", "min": 2}],
    }
    tag_id = _create(loaded, "login_level", "metric", spec)
    _run(loaded, tag_id)
    first_day = service.distribution(warehouse=loaded.warehouse, project_id=P, tag="login_level")
    assert first_day.day == date(2026, 11, 2)
    # Two weeks later without new logins everyone is quiet.
    assert isinstance(loaded.clock, FrozenClock)
    loaded.clock.advance(timedelta(days=14))
    _run(loaded, tag_id)
    later = service.distribution(warehouse=loaded.warehouse, project_id=P, tag="login_level")
    assert later.day == date(2026, 11, 16)
    assert [(v.value, v.users) for v in later.values] == [("quiet", N_USERS)]
    on_first = service.distribution(
        warehouse=loaded.warehouse, project_id=P, tag="login_level", day=date(2026, 11, 10)
    )
    assert on_first == first_day
    busy = next(
        uid
        for uid, v in _values_on(loaded, "login_level", date(2026, 11, 2)).items()
        if v == "busy"
    )
    points = service.history(
        warehouse=loaded.warehouse, project_id=P, tag="login_level", user_id=busy
    )
    assert [(p.day, p.value) for p in points] == [
        (date(2026, 11, 2), "busy"),
        (date(2026, 11, 16), "quiet"),
    ]
    now_tags = service.user_tags(warehouse=loaded.warehouse, project_id=P, user_id=busy)
    assert now_tags["login_level"] == "quiet"
    then = service.user_tags(
        warehouse=loaded.warehouse, project_id=P, user_id=busy, day=date(2026, 11, 3)
    )
    assert then["login_level"] == "busy"


def _values_on(runtime: Runtime, tag: str, day: date) -> dict[int, str]:
    rows = runtime.warehouse.fetch(
        "SELECT user_id, value FROM p1_tag_values WHERE tag = ? AND day = ?", [tag, day]
    )
    return {int(r[0]): r[1] for r in rows}


def test_scheduler_runs_due_tags_once_per_day_dependencies_first(loaded: Runtime) -> None:
    base = _create(
        loaded,
        "base_level",
        "metric",
        {
            "measure": {"event": "Login"},
            "window": {"relative_days": 7},
            "buckets": [{"value": "low", "max": 2}, {"value": "high", "min": 2}],
        },
    )
    derived = _create(
        loaded,
        "derived",
        "rule",
        {
            "values": [
                {
                    "value": "yes",
                    "rule": {
                        "rules": [
                            {
                                "type": "tag_rule",
                                "tag": "base_level",
                                "function": "equal",
                                "params": ["high"],
                            }
                        ]
                    },
                }
            ]
        },
    )
    _create(loaded, "by_hand", "rule", RULE_SPEC, schedule="manual")
    scheduler = TagScheduler(loaded)
    assert scheduler.run_once() == 2
    assert scheduler.run_once() == 0
    with loaded.db.unit_of_work() as session:
        assert [
            r.tag_id for r in service.list_runs(session=session, project_id=P, tag_id=base)
        ] == [base]
        lineage = service.lineage(
            session=session, project_id=P, kind="tag", key="base_level", source_id=base
        )
        assert lineage.used_by == [{"kind": "tag", "ref": str(derived)}]
    high = {uid for uid, v in _values(loaded, "base_level").items() if v == "high"}
    assert set(_values(loaded, "derived")) == high
    assert isinstance(loaded.clock, FrozenClock)
    loaded.clock.advance(timedelta(hours=14))  # next day in Shanghai
    assert scheduler.run_once() == 2
    with loaded.db.unit_of_work() as session, pytest.raises(Conflict):
        service.delete_tag(session=session, warehouse=loaded.warehouse, project_id=P, tag_id=base)


def test_invalid_spec_names_the_bad_part(loaded: Runtime) -> None:
    bad = {
        "values": [
            {
                "value": "x",
                "rule": {
                    "rules": [
                        {
                            "type": "event_rule",
                            "measure": {"event": "A", "aggregator": "mean"},
                            "window": {"relative_days": 7},
                            "function": "did",
                        }
                    ]
                },
            }
        ]
    }
    with pytest.raises(InvalidRule) as caught:
        _create(loaded, "broken", "rule", bad)
    assert caught.value.detail["path"] == "spec.values[0].rule.rules[0].measure.aggregator"


def test_realtime_tags_follow_the_event_stream(loaded: Runtime) -> None:
    _create(
        loaded,
        "logins_1h",
        "realtime",
        {"mode": "window_count", "event": "Login", "window_minutes": 60},
    )
    _create(
        loaded,
        "last_item",
        "realtime",
        {"mode": "last_value", "event": "BuyFund", "property": "item_id"},
    )
    updater = RealtimeTagUpdater(loaded)
    assert updater.run_once() == 0  # first pass: full recompute, watermark set
    assert updater.run_once() == 0  # nothing new
    now = naive(loaded.clock())
    before = _values(loaded, "logins_1h").get(7)
    batch = pa.table(
        {
            "id": ["rt1", "rt2", "rt3"],
            "user_id": pa.array([7, 7, 8], pa.int64()),
            "distinct_id": ["d7", "d7", "d8"],
            "event": ["Login", "Login", "BuyFund"],
            "time": pa.array([now, now, now], pa.timestamp("us")),
            "$receive_time": pa.array([now + timedelta(seconds=1)] * 3, pa.timestamp("us")),
            "item_id": [None, None, "F999"],
        }
    )
    loaded.warehouse.append(P, TableKind.EVENTS, batch)
    assert updater.run_once() == 2
    assert _values(loaded, "logins_1h")[7] == str(int(before or 0) + 2)
    assert _values(loaded, "last_item")[8] == "F999"
    assert updater.run_once() == 0


def test_tags_api(
    client: TestClient, loaded: Runtime, make_headers: Callable[..., dict[str, str]]
) -> None:
    marketer = make_headers("marketer")
    analyst = make_headers("analyst")
    answer = client.post(
        "/api/v1/tags",
        json={"name": "activity", "kind": "rule", "spec": RULE_SPEC},
        headers=marketer,
    )
    assert answer.status_code == 201, answer.text
    tag_id = answer.json()["id"]
    assert (
        client.post(
            "/api/v1/tags", json={"name": "x", "kind": "rule", "spec": RULE_SPEC}, headers=analyst
        ).status_code
        == 403
    )
    bad = client.post(
        "/api/v1/tags",
        json={
            "name": "bad",
            "kind": "metric",
            "spec": {"measure": {"event": "A"}, "window": {"relative_days": 0}, "quantiles": 4},
        },
        headers=marketer,
    )
    assert bad.status_code == 422
    assert bad.json()["message"].startswith("spec.window.relative_days:")
    preview = client.post(
        "/api/v1/tags/preview", json={"kind": "rule", "spec": RULE_SPEC}, headers=analyst
    )
    assert preview.status_code == 200, preview.text
    run = client.post(f"/api/v1/tags/{tag_id}/run", headers=marketer)
    assert run.status_code == 200 and run.json()["status"] == "ok"
    dist = client.get(f"/api/v1/tags/{tag_id}/distribution", headers=analyst).json()
    assert dist["total"] == run.json()["users"]
    assert {v["value"]: v["users"] for v in dist["values"]} == {
        v["value"]: v["users"] for v in preview.json()["values"]
    }
    uid = next(iter(_values(loaded, "activity")))
    mine = client.get(f"/api/v1/tags/users/{uid}", headers=analyst).json()
    assert mine["activity"] == _values(loaded, "activity")[uid]
    assert (
        client.get(
            f"/api/v1/tags/{tag_id}/history", params={"user_id": uid}, headers=analyst
        ).status_code
        == 200
    )
    assert [t["name"] for t in client.get("/api/v1/tags", headers=analyst).json()] == ["activity"]
    assert (
        client.patch(
            f"/api/v1/tags/{tag_id}", json={"schedule": "hourly"}, headers=marketer
        ).json()["schedule"]
        == "hourly"
    )
    assert client.get(f"/api/v1/tags/{tag_id}/lineage", headers=analyst).json() == {
        "depends_on": [],
        "used_by": [],
    }
    assert client.delete(f"/api/v1/tags/{tag_id}", headers=marketer).status_code == 204
    assert client.get(f"/api/v1/tags/{tag_id}", headers=analyst).status_code == 404


def test_imported_tag_upload(
    client: TestClient, loaded: Runtime, admin_headers: dict[str, str]
) -> None:
    tag_id = client.post(
        "/api/v1/tags", json={"name": "vip", "kind": "imported"}, headers=admin_headers
    ).json()["id"]
    good = client.post(
        f"/api/v1/tags/{tag_id}/upload",
        files={"file": ("vip.csv", "user_id,value\n1,gold\n2,silver\n", "text/csv")},
        headers=admin_headers,
    )
    assert good.status_code == 200, good.text
    assert good.json() == {"imported": 2, "day": "2026-11-02"}
    assert _values(loaded, "vip") == {1: "gold", 2: "silver"}
    bad = client.post(
        f"/api/v1/tags/{tag_id}/upload",
        files={"file": ("vip.csv", "user_id,value\n1,gold\nabc,silver\n", "text/csv")},
        headers=admin_headers,
    )
    assert bad.status_code == 400
    assert bad.json()["message"] == "line 3: user_id 'abc' is not a number"
    assert _values(loaded, "vip") == {1: "gold", 2: "silver"}
    assert client.post(f"/api/v1/tags/{tag_id}/run", headers=admin_headers).json()["users"] == 2


def test_twenty_mixed_tags_recompute(loaded: Runtime) -> None:
    ids = []
    for i in range(4):
        ids.append(_create(loaded, f"rule_{i}", "rule", RULE_SPEC))
        ids.append(
            _create(
                loaded,
                f"metric_{i}",
                "metric",
                {
                    "measure": {"event": "BuyFund", "aggregator": "sum", "property": "amount"},
                    "window": {"relative_days": 30 + i},
                    "quantiles": 5,
                },
            )
        )
        ids.append(
            _create(
                loaded,
                f"last_{i}",
                "first_last",
                {"event": "Login", "which": "first" if i % 2 else "last"},
            )
        )
        ids.append(
            _create(
                loaded,
                f"pref_{i}",
                "preference",
                {
                    "event": "ViewFundDetail",
                    "property": "fund_category",
                    "window": {"relative_days": 60},
                    "top_n": 1 + i % 3,
                },
            )
        )
        ids.append(_create(loaded, f"rfm_{i}", "rfm", {"window": {"relative_days": 90 - i}}))
    with loaded.db.unit_of_work() as session:
        runs = service.run_due_tags(
            session=session, warehouse=loaded.warehouse, now=datetime(2026, 11, 2, 3, tzinfo=UTC)
        )
    assert len(runs) == 20
    assert all(r.status == "ok" and r.users > 0 for r in runs), [r.error for r in runs]
