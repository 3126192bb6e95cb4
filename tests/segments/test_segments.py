"""Segments: preview, create from rule/tags/upload/analysis, refresh with membership events,
scope, export with masking and audit, and the securities examples."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from flywheel.audit.models import AuditEntry
from flywheel.core.clock import FrozenClock
from flywheel.profiles import mirror
from flywheel.rules.compiler import RuleContext, Tables, compile_rule
from flywheel.rules.schema import parse
from flywheel.runtime import Runtime
from flywheel.segments import service
from flywheel.segments.models import SegmentMember
from flywheel.segments.schemas import SegmentIn
from flywheel.segments.tasks import SegmentScheduler
from flywheel.warehouse import PropertyType, TableKind
from tests.rules.brokerage import NOW, load, naive, users_table
from tests.rules.test_engines import CANONICAL

P = 1


@pytest.fixture
def loaded(runtime: Runtime) -> Runtime:
    runtime.clock = FrozenClock(NOW)
    load(runtime.warehouse, project_id=P)
    return runtime


def _expected(runtime: Runtime, rule: dict[str, Any]) -> set[int]:
    ctx = RuleContext(
        tables=Tables.for_project(P),
        users_columns=runtime.warehouse.columns(P, TableKind.USERS),
        events_columns=runtime.warehouse.columns(P, TableKind.EVENTS),
        now=NOW,
    )
    sql, params = compile_rule(parse(rule), ctx).bound("duckdb")
    return {int(r[0]) for r in runtime.warehouse.cursor().execute(sql, params).fetchall()}


def test_preview_returns_count_and_sample(
    client: TestClient, loaded: Runtime, make_headers: Callable[..., dict[str, str]]
) -> None:
    analyst = make_headers("analyst")
    answer = client.post("/api/v1/segments/preview", json={"rule": CANONICAL}, headers=analyst)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = _expected(loaded, CANONICAL)
    assert body["count"] == len(expected) > 0
    assert body["sample_user_ids"] == sorted(expected)[:10]
    assert body["warnings"] == []


def test_preview_of_an_invalid_rule_points_at_the_bad_part(
    client: TestClient, loaded: Runtime, admin_headers: dict[str, str]
) -> None:
    rule = {
        "relation": "and",
        "rules": [
            CANONICAL["rules"][0],
            {**CANONICAL["rules"][1], "measure": {"event": "BuyFund", "aggregator": "median"}},
        ],
    }
    answer = client.post("/api/v1/segments/preview", json={"rule": rule}, headers=admin_headers)
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_rule"
    assert answer.json()["message"].startswith("rules[1].measure.aggregator: ")
    assert answer.json()["detail"]["path"] == "rules[1].measure.aggregator"


def test_scoped_principals_count_only_their_customers(
    client: TestClient, loaded: Runtime, make_headers: Callable[..., dict[str, str]]
) -> None:
    rule = {"rules": [{"type": "profile_rule", "field": "risk_tolerance", "function": "isSet"}]}
    everyone = client.post(
        "/api/v1/segments/preview", json={"rule": rule}, headers=make_headers("analyst")
    ).json()
    branch = client.post(
        "/api/v1/segments/preview",
        json={"rule": rule},
        headers=make_headers("analyst", branch_scope=["BR002"]),
    ).json()
    users = users_table().to_pylist()
    assert branch["count"] == sum(
        1 for u in users if u["risk_tolerance"] and u["branch"] == "BR002"
    )
    assert 0 < branch["count"] < everyone["count"]
    assert all(
        next(u for u in users if u["user_id"] == uid)["branch"] == "BR002"
        for uid in branch["sample_user_ids"]
    )


def _create(runtime: Runtime, **fields: Any) -> int:
    with runtime.db.unit_of_work() as session:
        out = service.create_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=P,
            segment_in=SegmentIn(**fields),
            actor="test",
            now=runtime.clock(),
        )
    return out.id


def _refresh(runtime: Runtime, segment_id: int) -> Any:
    with runtime.db.unit_of_work() as session:
        return service.refresh_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=P,
            segment_id=segment_id,
            now=runtime.clock(),
        )


def _membership_events(runtime: Runtime, segment_id: int) -> dict[str, set[int]]:
    mirror.drain(db=runtime.db, warehouse=runtime.warehouse)  # refreshes stage them
    rows = runtime.warehouse.fetch(
        "SELECT event, user_id FROM p1_events "
        "WHERE event IN ('$SegmentEnter', '$SegmentLeave') AND segment_id = ?",
        [float(segment_id)],
    )
    out: dict[str, set[int]] = {"$SegmentEnter": set(), "$SegmentLeave": set()}
    for event, uid in rows:
        out[event].add(int(uid))
    return out


def test_refresh_emits_enter_and_leave_events(loaded: Runtime) -> None:
    rule = {
        "rules": [
            {
                "type": "event_rule",
                "measure": {"event": "Login"},
                "window": {"relative_days": 3},
                "function": "did",
            }
        ]
    }
    segment_id = _create(loaded, name="recent logins", rule=rule)
    first = _refresh(loaded, segment_id)
    members = _expected(loaded, rule)
    assert (first.size, first.entered, first.left) == (len(members), len(members), 0)
    assert _membership_events(loaded, segment_id)["$SegmentEnter"] == members
    again = _refresh(loaded, segment_id)
    assert (again.entered, again.left) == (0, 0)
    # Two days later: the oldest logins fall out of the window, one customer logs in.
    assert isinstance(loaded.clock, FrozenClock)
    loaded.clock.advance(timedelta(days=2))
    newcomer = next(uid for uid in range(1, 401) if uid not in members)
    now = naive(loaded.clock())
    loaded.warehouse.append(
        P,
        TableKind.EVENTS,
        pa.table(
            {
                "id": ["new-login"],
                "user_id": pa.array([newcomer], pa.int64()),
                "distinct_id": ["x"],
                "event": ["Login"],
                "time": pa.array([now], pa.timestamp("us")),
                "$receive_time": pa.array([now], pa.timestamp("us")),
            }
        ),
    )
    later = _refresh(loaded, segment_id)
    ctx_members = _expected_at(loaded, rule)
    assert later.size == len(ctx_members)
    assert later.entered >= 1 and later.left >= 1
    events = _membership_events(loaded, segment_id)
    assert newcomer in events["$SegmentEnter"]
    assert events["$SegmentLeave"] == members - ctx_members
    with loaded.db.unit_of_work() as session:
        mirrored = set(
            session.scalars(
                select(SegmentMember.user_id).where(SegmentMember.segment_id == segment_id)
            )
        )
        assert mirrored == ctx_members
        runs = service.runs(session=session, project_id=P, segment_id=segment_id)
        assert (runs[0].entered, runs[0].left) == (later.entered, later.left)


def _expected_at(runtime: Runtime, rule: dict[str, Any]) -> set[int]:
    ctx = RuleContext(
        tables=Tables.for_project(P),
        users_columns=runtime.warehouse.columns(P, TableKind.USERS),
        events_columns=runtime.warehouse.columns(P, TableKind.EVENTS),
        now=runtime.clock(),
    )
    sql, params = compile_rule(parse(rule), ctx).bound("duckdb")
    return {int(r[0]) for r in runtime.warehouse.cursor().execute(sql, params).fetchall()}


def test_static_segments_from_snapshot_analysis_and_upload(
    client: TestClient, loaded: Runtime, admin_headers: dict[str, str]
) -> None:
    rule = {
        "rules": [
            {"type": "profile_rule", "field": "city", "function": "equal", "params": ["上海"]}
        ]
    }
    snap = client.post(
        "/api/v1/segments",
        json={"name": "shanghai now", "rule": rule, "mode": "static"},
        headers=admin_headers,
    )
    assert snap.status_code == 201, snap.text
    assert snap.json()["size"] == len(_expected(loaded, rule))
    assert (
        client.post(
            f"/api/v1/segments/{snap.json()['id']}/refresh", headers=admin_headers
        ).status_code
        == 409
    )
    analysis = client.post(
        "/api/v1/segments",
        json={"name": "funnel drop", "source": "analysis", "user_ids": [5, 3, 5, 9]},
        headers=admin_headers,
    )
    assert analysis.json()["size"] == 3 and analysis.json()["mode"] == "static"
    upload = client.post(
        "/api/v1/segments/upload",
        data={"name": "from crm"},
        files={"file": ("ids.csv", "user_id,note\n11,a\n12,b\n", "text/csv")},
        headers=admin_headers,
    )
    assert upload.status_code == 201, upload.text
    upload_id = upload.json()["id"]
    members = client.get(f"/api/v1/segments/{upload_id}/members", headers=admin_headers).json()
    assert members == {"total": 2, "offset": 0, "user_ids": [11, 12]}
    bad = client.post(
        "/api/v1/segments/upload",
        data={"name": "bad"},
        files={"file": ("ids.csv", "user_id\n1\nx\n", "text/csv")},
        headers=admin_headers,
    )
    assert bad.status_code == 400 and bad.json()["message"] == "line 3: user_id 'x' is not a number"
    # A segment built on the uploaded one and on a dynamic one.
    dynamic = client.post(
        "/api/v1/segments",
        json={
            "name": "c5",
            "rule": {
                "rules": [
                    {
                        "type": "profile_rule",
                        "field": "risk_tolerance",
                        "function": "equal",
                        "params": ["C5"],
                    }
                ]
            },
        },
        headers=admin_headers,
    ).json()
    combo_rule = {
        "relation": "or",
        "rules": [
            {"type": "segment_rule", "segment_id": upload_id},
            {"type": "segment_rule", "segment_id": dynamic["id"]},
        ],
    }
    preview = client.post(
        "/api/v1/segments/preview", json={"rule": combo_rule, "sample": 0}, headers=admin_headers
    ).json()
    c5 = {u["user_id"] for u in users_table().to_pylist() if u["risk_tolerance"] == "C5"}
    assert preview["count"] == len(c5 | {11, 12})
    combo = client.post(
        "/api/v1/segments", json={"name": "combo", "rule": combo_rule}, headers=admin_headers
    ).json()
    lineage = client.get(f"/api/v1/segments/{dynamic['id']}/lineage", headers=admin_headers).json()
    assert lineage["used_by"] == [{"kind": "segment", "ref": str(combo["id"])}]
    assert (
        client.delete(f"/api/v1/segments/{dynamic['id']}", headers=admin_headers).status_code == 409
    )
    cycle = client.patch(
        f"/api/v1/segments/{dynamic['id']}",
        json={"rule": {"rules": [{"type": "segment_rule", "segment_id": combo["id"]}]}},
        headers=admin_headers,
    )
    assert cycle.status_code == 422 and "cycle" in cycle.json()["message"]


def test_export_masks_pii_and_is_audited(
    client: TestClient,
    loaded: Runtime,
    make_headers: Callable[..., dict[str, str]],
    admin_headers: dict[str, str],
) -> None:
    created = client.post(
        "/api/v1/segments",
        json={"name": "small", "source": "analysis", "user_ids": [1, 2, 3]},
        headers=admin_headers,
    ).json()
    url = f"/api/v1/segments/{created['id']}/export"
    assert client.get(url, headers=make_headers("marketer")).status_code == 403
    masked = client.get(
        url, params={"columns": ["name", "mobile", "branch"]}, headers=admin_headers
    )
    assert masked.status_code == 200, masked.text
    rows = list(csv.reader(io.StringIO(masked.text)))
    assert rows[0] == ["user_id", "name", "mobile", "branch"]
    assert rows[1][:3] == ["1", "客**", "138****0001"]
    clear = client.get(url, params={"columns": ["mobile"], "reveal": "true"}, headers=admin_headers)
    assert list(csv.reader(io.StringIO(clear.text)))[1] == ["1", "13800000001"]
    with loaded.db.unit_of_work() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "segment.export")
        ).all()
    assert len(entries) == 2
    assert all(e.target == f"segment:{created['id']}" for e in entries)
    scoped = make_headers("admin", branch_scope=["BR001"])
    branch_rows = list(
        csv.reader(
            io.StringIO(client.get(url, params={"columns": ["branch"]}, headers=scoped).text)
        )
    )
    assert all(r[1] == "BR001" for r in branch_rows[1:])
    in_br001 = [
        u["user_id"]
        for u in users_table().to_pylist()
        if u["user_id"] in {1, 2, 3} and u["branch"] == "BR001"
    ]
    assert [int(r[0]) for r in branch_rows[1:]] == in_br001


def test_scheduler_refreshes_due_dynamic_segments(loaded: Runtime) -> None:
    rule = {
        "rules": [{"type": "profile_rule", "field": "has_margin_account", "function": "isTrue"}]
    }
    daily = _create(loaded, name="margin", rule=rule)
    _create(loaded, name="manual", rule=rule, schedule="manual")
    scheduler = SegmentScheduler(loaded)
    assert scheduler.run_once() == 1
    assert scheduler.run_once() == 0
    assert isinstance(loaded.clock, FrozenClock)
    loaded.clock.advance(timedelta(days=1))
    assert scheduler.run_once() == 1
    with loaded.db.unit_of_work() as session:
        assert len(service.runs(session=session, project_id=P, segment_id=daily)) == 2


# -- securities examples ---------------------------------------------------------------------


def _customers(
    runtime: Runtime,
    profiles: list[dict[str, Any]],
    events: list[tuple[int, str, datetime, dict[str, Any]]],
) -> None:
    wh = runtime.warehouse
    wh.ensure_columns(
        P,
        TableKind.USERS,
        {
            "account_open_date": PropertyType.DATE,
            "total_assets": PropertyType.NUMBER,
            "has_margin_account": PropertyType.BOOL,
            "risk_tolerance": PropertyType.STRING,
        },
    )
    wh.ensure_columns(
        P, TableKind.EVENTS, {"total_assets": PropertyType.NUMBER, "reason": PropertyType.STRING}
    )
    wh.append(
        P,
        TableKind.USERS,
        pa.table(
            {
                "user_id": pa.array([p["user_id"] for p in profiles], pa.int64()),
                "$update_time": pa.array([naive(NOW)] * len(profiles), pa.timestamp("us")),
                "account_open_date": pa.array(
                    [p.get("account_open_date") for p in profiles], pa.date32()
                ),
                "total_assets": pa.array([p.get("total_assets") for p in profiles], pa.float64()),
                "has_margin_account": pa.array(
                    [p.get("has_margin_account", False) for p in profiles], pa.bool_()
                ),
                "risk_tolerance": pa.array(
                    [p.get("risk_tolerance") for p in profiles], pa.string()
                ),
            }
        ),
    )
    wh.append(
        P,
        TableKind.EVENTS,
        pa.table(
            {
                "id": [f"e{i}" for i in range(len(events))],
                "user_id": pa.array([e[0] for e in events], pa.int64()),
                "distinct_id": [str(e[0]) for e in events],
                "event": [e[1] for e in events],
                "time": pa.array([naive(e[2]) for e in events], pa.timestamp("us")),
                "$receive_time": pa.array([naive(e[2]) for e in events], pa.timestamp("us")),
                "total_assets": pa.array([e[3].get("total_assets") for e in events], pa.float64()),
                "reason": pa.array([e[3].get("reason") for e in events], pa.string()),
            }
        ),
    )


def _ids(runtime: Runtime, rule: dict[str, Any]) -> set[int]:
    runtime.clock = FrozenClock(NOW)
    with runtime.db.unit_of_work() as session:
        count = service.count_rule(
            session=session, warehouse=runtime.warehouse, project_id=P, rule=rule, now=NOW
        )
    ids = _expected(runtime, rule)
    assert count == len(ids)
    return ids


def test_new_accounts_without_an_auto_invest_plan(runtime: Runtime) -> None:
    """基金定投激活: no fund auto-invest plan, account opened in the last 90 days."""
    today = date(2026, 11, 2)
    _customers(
        runtime,
        [
            {"user_id": 1, "account_open_date": today - timedelta(days=10)},  # new, no plan → in
            {"user_id": 2, "account_open_date": today - timedelta(days=10)},  # new, has plan → out
            {"user_id": 3, "account_open_date": today - timedelta(days=89)},  # 90th day → in
            {"user_id": 4, "account_open_date": today - timedelta(days=90)},  # 91 days ago → out
            {
                "user_id": 5,
                "account_open_date": today - timedelta(days=30),
            },  # plan created then terminated → out
            {"user_id": 6},  # unknown open date → out
        ],
        [
            (2, "CreateAutoInvestPlan", NOW - timedelta(days=3), {}),
            (5, "CreateAutoInvestPlan", NOW - timedelta(days=20), {}),
            (5, "TerminateAutoInvestPlan", NOW - timedelta(days=2), {}),
            (3, "Login", NOW - timedelta(days=1), {}),
        ],
    )
    rule = {
        "relation": "and",
        "rules": [
            {
                "type": "profile_rule",
                "field": "account_open_date",
                "function": "relativeWithin",
                "params": [90],
            },
            {
                "type": "event_rule",
                "measure": {"event": "CreateAutoInvestPlan"},
                "window": {"relative_days": 3650},
                "function": "notDid",
            },
        ],
    }
    assert _ids(runtime, rule) == {1, 3}


def test_auto_invest_terminated_or_payment_failed_in_30_days(runtime: Runtime) -> None:
    """定投挽回: plan terminated or a payment failed in the last 30 days."""
    _customers(
        runtime,
        [{"user_id": u} for u in range(1, 6)],
        [
            (1, "TerminateAutoInvestPlan", NOW - timedelta(days=5), {}),
            (
                2,
                "AutoInvestPaymentFailed",
                NOW - timedelta(days=29),
                {"reason": "insufficient_balance"},
            ),
            (3, "AutoInvestPaymentFailed", NOW - timedelta(days=31), {"reason": "card_expired"}),
            (4, "TerminateAutoInvestPlan", NOW + timedelta(hours=1), {}),  # in the future of "now"
            (5, "CreateAutoInvestPlan", NOW - timedelta(days=1), {}),
        ],
    )
    rule = {
        "relation": "or",
        "rules": [
            {
                "type": "event_rule",
                "measure": {"event": "TerminateAutoInvestPlan"},
                "window": {"relative_days": 30},
                "function": "did",
            },
            {
                "type": "event_rule",
                "measure": {"event": "AutoInvestPaymentFailed"},
                "window": {"relative_days": 30},
                "function": "gte",
                "params": [1],
            },
        ],
    }
    assert _ids(runtime, rule) == {1, 2}


def test_assets_over_500k_for_20_trading_days_no_margin_c3_plus(runtime: Runtime) -> None:
    """两融开户转化: assets ≥ 500k over the last 20 trading days, no margin account, C3 or above.

    The asset level comes from AssetChange events: every change in the last 20 trading days
    (from 2026-09-29, the National Day closure skipped) kept assets ≥ 500k, and the profile's
    current total is ≥ 500k.
    """
    window_start = datetime(2026, 9, 28, 16, 0)  # 2026-09-29 00:00 Shanghai, in UTC
    _customers(
        runtime,
        [
            {"user_id": 1, "total_assets": 800_000, "risk_tolerance": "C4"},  # in
            {"user_id": 2, "total_assets": 800_000, "risk_tolerance": "C2"},  # risk too low
            {
                "user_id": 3,
                "total_assets": 800_000,
                "risk_tolerance": "C3",
                "has_margin_account": True,
            },
            {"user_id": 4, "total_assets": 700_000, "risk_tolerance": "C5"},  # dipped in window
            {
                "user_id": 5,
                "total_assets": 600_000,
                "risk_tolerance": "C3",
            },  # dip before window → in
            {"user_id": 6, "total_assets": 400_000, "risk_tolerance": "C5"},  # below now
        ],
        [
            (1, "AssetChange", NOW - timedelta(days=3), {"total_assets": 800_000}),
            (2, "AssetChange", NOW - timedelta(days=3), {"total_assets": 800_000}),
            (3, "AssetChange", NOW - timedelta(days=3), {"total_assets": 800_000}),
            (4, "AssetChange", NOW - timedelta(days=20), {"total_assets": 450_000}),
            (4, "AssetChange", NOW - timedelta(days=2), {"total_assets": 700_000}),
            (5, "AssetChange", window_start - timedelta(hours=1), {"total_assets": 300_000}),
            (5, "AssetChange", window_start + timedelta(hours=1), {"total_assets": 600_000}),
            (6, "AssetChange", NOW - timedelta(days=1), {"total_assets": 400_000}),
        ],
    )
    rule = {
        "relation": "and",
        "rules": [
            {
                "type": "profile_rule",
                "field": "total_assets",
                "function": "gte",
                "params": [500000],
            },
            {
                "type": "event_rule",
                "measure": {
                    "event": "AssetChange",
                    "aggregator": "min",
                    "property": "total_assets",
                },
                "window": {"relative_trading_days": 20},
                "function": "gte",
                "params": [500000],
            },
            {"type": "profile_rule", "field": "has_margin_account", "function": "isFalse"},
            {
                "type": "profile_rule",
                "field": "risk_tolerance",
                "function": "in",
                "params": ["C3", "C4", "C5"],
            },
        ],
    }
    assert _ids(runtime, rule) == {1, 5}


def test_rules_on_properties_nobody_has_yet_bind_only_the_values_they_use(
    client: TestClient, loaded: Runtime, admin_headers: dict[str, str]
) -> None:
    """Predicates on a missing property (event filter, profile rule) are treated as unset next
    to real predicates, and the query binds only the values it uses."""
    rule = {
        "relation": "and",
        "rules": [
            {
                "type": "event_rule",
                "measure": {"event": "BuyFund", "aggregator": "count"},
                "window": {"relative_days": 30},
                "filters": {
                    "conditions": [
                        {"field": "no_such_prop", "function": "in", "params": ["a", "b"]}
                    ]
                },
                "function": "gte",
                "params": [1],
            },
            {
                "type": "profile_rule",
                "field": "no_such_prop",
                "function": "notIn",
                "params": ["a", "b", "c"],
            },
            CANONICAL["rules"][0],
        ],
    }
    answer = client.post("/api/v1/segments/preview", json={"rule": rule}, headers=admin_headers)
    assert answer.status_code == 200, answer.text
    assert any("no_such_prop" in w for w in answer.json()["warnings"])
