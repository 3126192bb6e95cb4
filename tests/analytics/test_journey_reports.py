"""Journey and campaign reports over staged system events, checked against pandas.

The scenario is staged through the real contracts: journey rows with the journeys models,
system events with ``channels.system_events.emit`` drained into the warehouse by
``profiles.mirror.drain``; goal events and profiles are written to the warehouse as the
ingest processor does. The expected numbers are computed independently from the generated
records with pandas (and the statistics with statsmodels / scipy).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from scipy import stats as sps
from sqlalchemy import select
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from flywheel.analytics import journey_reports as reports
from flywheel.audit.models import AuditEntry
from flywheel.channels import system_events as se
from flywheel.core.clock import FrozenClock
from flywheel.journeys.models import Journey, JourneyVersion
from flywheel.journeys.schemas import JourneyDefinition
from flywheel.profiles import mirror
from flywheel.projects import service as projects
from flywheel.runtime import Runtime
from flywheel.warehouse.engine import ARROW_TYPES, BASE_ARROW, PropertyType, TableKind

Headers = dict[str, str]
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
#: Shanghai 2026-10-01 00:00 in naive UTC.
OCT_START = datetime(2026, 9, 30, 16, 0)
SMS_TEXT = (
    "尊敬的{{ user.name }}客户，"
    + "您关注的稳健理财产品本周开放申购，七日年化收益参考历史表现。" * 5
)
BLOCK_REASONS = ["quiet_hours", "frequency_cap", "no_consent"]
GOAL_WINDOW = 7 * 86400
NODE_GOAL_WINDOW = 3 * 86400

DEFINITION: dict[str, Any] = {
    "name": "double eleven funds",
    "campaign": "双十一",
    "control_percent": 0,
    "goals": [
        {
            "event": "BuyFund",
            "window_seconds": GOAL_WINDOW,
            "filters": [{"property": "amount", "op": "gte", "value": 1000}],
        }
    ],
    "nodes": [
        {"id": "in", "type": "entry_api"},
        {
            "id": "ab",
            "type": "split",
            "branches": [
                {"port": "a", "weight": 45},
                {"port": "b", "weight": 45},
                {"port": "control", "weight": 10},
            ],
        },
        {"id": "send_a", "type": "send", "channel": "sms", "content": {"text": SMS_TEXT}},
        {
            "id": "send_b",
            "type": "send",
            "channel": "webhook",
            "webhook": {"url": "http://127.0.0.1:9/hook", "secret": "s"},
            "content": {"text": "hello"},
        },
        {"id": "g_b", "type": "goal", "event": "BuyFund", "window_seconds": NODE_GOAL_WINDOW},
        {"id": "out", "type": "exit"},
    ],
    "edges": [
        {"from": "in", "to": "ab"},
        {"from": "ab", "to": "send_a", "port": "a"},
        {"from": "ab", "to": "send_b", "port": "b"},
        {"from": "ab", "to": "out", "port": "control"},
        {"from": "send_a", "to": "out"},
        {"from": "send_b", "to": "g_b"},
        {"from": "g_b", "to": "out", "port": "reached"},
        {"from": "g_b", "to": "out", "port": "timeout"},
    ],
}


@dataclass
class Scenario:
    project_id: int
    journey_id: int
    events: pd.DataFrame  # system events (user_id, event, time, node_id, variant, channel, ...)
    buys: pd.DataFrame  # user_id, time, amount
    users: pd.DataFrame  # user_id, branch
    segment_members: set[int]


def _stage(runtime: Runtime, seed: int = 7, customers: int = 600) -> Scenario:
    rng = random.Random(seed)
    with runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name="default").id
        JourneyDefinition.model_validate(DEFINITION)
        journey = Journey(
            project_id=project_id, name=DEFINITION["name"], status="published", draft=DEFINITION
        )
        session.add(journey)
        session.flush()
        version = JourneyVersion(
            project_id=project_id, journey_id=journey.id, number=1, definition=DEFINITION
        )
        session.add(version)
        session.flush()
        journey.live_version_id = version.id
        journey_id = journey.id
    system: list[se.SystemEvent] = []
    buys: list[dict[str, Any]] = []
    users: list[dict[str, Any]] = []
    message_id = 0

    def add(uid: int, name: str, at: datetime, **props: Any) -> None:
        system.append(
            se.SystemEvent(
                id=f"t{len(system)}",
                user_id=uid,
                event=name,
                time=at,
                properties={"journey_id": journey_id, "journey_version": 1, **props},
            )
        )

    for uid in range(1, customers + 1):
        users.append({"user_id": uid, "branch": rng.choice(["BR1", "BR2"])})
        # A few enter in November, outside the October range of some tests.
        t0 = OCT_START + timedelta(seconds=rng.randrange((31 if uid % 10 else 45) * 86400))
        variant = rng.choices(["a", "b", "control"], weights=[45, 45, 10])[0]
        # Shaped as the engine writes them: entry, exit and sending nodes have no
        # $JourneyNodeEnter ($JourneyEnter / $JourneyExit / $MessagePrepared carry the node).
        add(uid, se.JOURNEY_ENTER, t0, node_id="in")
        if uid % 97 == 0:  # a handful of customers never get further (still in flight)
            continue
        add(uid, se.NODE_ENTER, t0 + timedelta(seconds=1), node_id="ab", node_type="split")
        t = t0 + timedelta(seconds=2)
        if variant in ("a", "b"):
            node, channel = ("send_a", "sms") if variant == "a" else ("send_b", "webhook")
            message_id += 1
            base = {
                "node_id": node,
                "variant": variant,
                "channel": channel,
                "message_id": message_id,
            }
            add(uid, se.MESSAGE_PREPARED, t, **base)
            roll = rng.random()
            if roll < 0.12:
                add(uid, se.MESSAGE_BLOCKED, t, reason=rng.choice(BLOCK_REASONS), **base)
            elif roll < 0.17:
                add(uid, se.MESSAGE_FAILED, t + timedelta(seconds=5), reason="timeout", **base)
            else:
                add(uid, se.MESSAGE_SENT, t + timedelta(seconds=5), **base)
                if rng.random() < 0.9:
                    add(uid, se.MESSAGE_DELIVERED, t + timedelta(seconds=9), **base)
                    if rng.random() < 0.5:
                        add(uid, se.MESSAGE_OPENED, t + timedelta(minutes=30), **base)
                        if rng.random() < 0.4:
                            add(uid, se.MESSAGE_CLICKED, t + timedelta(minutes=31), **base)
            if variant == "b":
                add(uid, se.NODE_ENTER, t + timedelta(seconds=10), node_id="g_b", variant="b")
            else:
                add(uid, se.JOURNEY_EXIT, t, node_id="out", variant="a", reason="exit")
        else:
            add(uid, se.JOURNEY_EXIT, t, node_id="ab", variant="control", reason="control")
        # Purchases: treatment b converts more; some too small, too late or before entry.
        chance = {"a": 0.25, "b": 0.35, "control": 0.2}[variant]
        if rng.random() < chance:
            at = t0 + timedelta(seconds=rng.randrange(10 * 86400))
            amount = rng.choice([500.0, 2000.0, 5000.0])
            buys.append({"user_id": uid, "time": at, "amount": amount})
            if (
                variant == "b"
                and at > t0 + timedelta(seconds=12)
                and at <= t0 + timedelta(seconds=12 + NODE_GOAL_WINDOW)
            ):
                add(uid, se.GOAL, at, node_id="g_b", goal="g_b", variant="b")
        if rng.random() < 0.05:
            buys.append({"user_id": uid, "time": t0 - timedelta(days=1), "amount": 9000.0})
    with runtime.db.unit_of_work() as session:
        se.emit(session=session, project_id=project_id, events=system, now=NOW)
    while mirror.drain(db=runtime.db, warehouse=runtime.warehouse):
        pass
    wh = runtime.warehouse
    wh.ensure_columns(project_id, TableKind.EVENTS, {"amount": PropertyType.NUMBER})
    wh.ensure_columns(project_id, TableKind.USERS, {"branch": PropertyType.STRING})
    buy_table = pa.table(
        {
            "id": pa.array([f"b{i}" for i in range(len(buys))], BASE_ARROW["id"]),
            "user_id": pa.array([b["user_id"] for b in buys], BASE_ARROW["user_id"]),
            "distinct_id": pa.array([str(b["user_id"]) for b in buys], BASE_ARROW["distinct_id"]),
            "event": pa.array(["BuyFund"] * len(buys), BASE_ARROW["event"]),
            "time": pa.array([b["time"] for b in buys], BASE_ARROW["time"]),
            "$receive_time": pa.array([b["time"] for b in buys], BASE_ARROW["$receive_time"]),
            "amount": pa.array([b["amount"] for b in buys], ARROW_TYPES[PropertyType.NUMBER]),
        }
    )
    wh.append(project_id, TableKind.EVENTS, buy_table)
    wh.append(
        project_id,
        TableKind.USERS,
        pa.table(
            {
                "user_id": pa.array([u["user_id"] for u in users], BASE_ARROW["user_id"]),
                "$update_time": pa.array([OCT_START] * len(users), BASE_ARROW["$update_time"]),
                "branch": pa.array([u["branch"] for u in users], pa.string()),
            }
        ),
    )
    members = {u["user_id"] for u in users if u["user_id"] % 3 == 0}
    wh.cursor().execute(
        f'INSERT INTO "p{project_id}_segment_members" SELECT 7, unnest(?::BIGINT[]), ?',
        [sorted(members), OCT_START],
    )
    frame = pd.DataFrame(
        [
            {
                "user_id": e.user_id,
                "event": e.event,
                "time": e.time,
                "node_id": e.properties.get("node_id"),
                "variant": e.properties.get("variant"),
                "channel": e.properties.get("channel"),
                "message_id": e.properties.get("message_id"),
                "reason": e.properties.get("reason"),
            }
            for e in system
        ]
    )
    return Scenario(
        project_id=project_id,
        journey_id=journey_id,
        events=frame,
        buys=pd.DataFrame(buys),
        users=pd.DataFrame(users),
        segment_members=members,
    )


@pytest.fixture
def scenario(runtime: Runtime) -> Scenario:
    runtime.clock = FrozenClock(NOW)
    return _stage(runtime)


# -- the independent computation -------------------------------------------------------------------
@dataclass
class Expected:
    entrants: pd.DataFrame  # user_id, entered_at, variant, converted_at, branch
    events: pd.DataFrame  # the entrants' system events from their entry on


def expected(
    s: Scenario,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    branches: set[str] | None = None,
) -> Expected:
    ev = s.events
    enter = ev[ev.event == se.JOURNEY_ENTER].groupby("user_id")["time"].min().rename("entered_at")
    entrants = enter.reset_index().merge(s.users, on="user_id")
    if start is not None:
        entrants = entrants[entrants.entered_at >= start]
    if end is not None:
        entrants = entrants[entrants.entered_at < end]
    if branches is not None:
        entrants = entrants[entrants.branch.isin(branches)]
    own = ev.merge(entrants[["user_id", "entered_at"]], on="user_id")
    own = own[own.time >= own.entered_at]
    variants = own[own.variant.notna()].sort_values("time").groupby("user_id")["variant"].last()
    entrants = entrants.merge(variants.rename("variant").reset_index(), on="user_id", how="left")
    buys = s.buys.merge(entrants[["user_id", "entered_at"]], on="user_id")
    ok = buys[
        (buys.amount >= 1000)
        & (buys.time > buys.entered_at)
        & (buys.time <= buys.entered_at + timedelta(seconds=GOAL_WINDOW))
    ]
    converted = ok.groupby("user_id")["time"].min().rename("converted_at").reset_index()
    entrants = entrants.merge(converted, on="user_id", how="left")
    return Expected(entrants=entrants, events=own)


def node_counts(x: Expected, node: str) -> dict[str, Any]:
    ev = x.events[x.events.node_id == node]

    def messages(name: str) -> int:
        return int(ev[ev.event == name].message_id.nunique())

    enters = ev[ev.event == se.NODE_ENTER]
    if enters.empty:  # the engine's own event for entry, exit and sending nodes
        instead = {"in": se.JOURNEY_ENTER, "out": se.JOURNEY_EXIT}.get(node, se.MESSAGE_PREPARED)
        enters = ev[ev.event == instead]
    marks = ev[
        ev.event.isin([se.NODE_ENTER, se.JOURNEY_ENTER, se.JOURNEY_EXIT, se.MESSAGE_PREPARED])
    ]
    blocked = ev[ev.event == se.MESSAGE_BLOCKED]
    first = marks.groupby("user_id")["time"].min().rename("t").reset_index()
    joined = first.merge(x.entrants[["user_id", "converted_at"]], on="user_id")
    return {
        "entered": len(enters),
        "users": int(enters.user_id.nunique()),
        "prepared": messages(se.MESSAGE_PREPARED),
        "sent": messages(se.MESSAGE_SENT),
        "delivered": messages(se.MESSAGE_DELIVERED),
        "opened": messages(se.MESSAGE_OPENED),
        "clicked": messages(se.MESSAGE_CLICKED),
        "failed": messages(se.MESSAGE_FAILED),
        "blocked": messages(se.MESSAGE_BLOCKED),
        "blocked_by_reason": {
            str(k): int(v) for k, v in blocked.groupby("reason").message_id.nunique().items()
        },
        "converted": int((joined.converted_at >= joined.t).sum()),
    }


def last_touch(x: Expected) -> dict[tuple[str, str], int]:
    sent = x.events[x.events.event == se.MESSAGE_SENT].merge(
        x.entrants[["user_id", "converted_at"]].dropna(), on="user_id"
    )
    sent = sent[sent.time <= sent.converted_at].sort_values("time")
    last = sent.groupby("user_id").last()
    return {
        (str(k[0]), str(k[1])): int(v)
        for k, v in last.groupby(["node_id", "channel"]).size().items()
    }


METRICS = [
    "entered",
    "users",
    "prepared",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "failed",
    "blocked",
    "blocked_by_reason",
    "converted",
]


def _node_view(node: dict[str, Any]) -> dict[str, Any]:
    return {k: node[k] for k in METRICS}


# -- tests -------------------------------------------------------------------------------------
def test_report_matches_an_independent_computation(
    client: TestClient, admin_headers: Headers, scenario: Scenario
) -> None:
    answer = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report", headers=admin_headers
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    x = expected(scenario)
    assert report["entrants"] == len(x.entrants) == 600
    assert report["conversions"] == int(x.entrants.converted_at.notna().sum()) > 50
    assert report["primary_goal"] == "BuyFund"
    assert [n["node_id"] for n in report["nodes"]] == ["in", "ab", "send_a", "send_b", "out", "g_b"]
    for node in report["nodes"]:
        assert _node_view(node) == node_counts(x, node["node_id"]), node["node_id"]
    send_a = next(n for n in report["nodes"] if n["node_id"] == "send_a")
    assert sum(send_a["blocked_by_reason"].values()) == send_a["blocked"] > 0
    touches = last_touch(x)
    assert {n["node_id"]: n["attributed_conversions"] for n in report["nodes"]} == {
        n["node_id"]: sum(v for (node, _), v in touches.items() if node == n["node_id"])
        for n in report["nodes"]
    }
    # goal node: counted from $JourneyGoal
    goal_node = next(g for g in report["goals"] if g["key"] == "g_b")
    goal_events = x.events[(x.events.event == se.GOAL) & (x.events.node_id == "g_b")]
    assert goal_node["conversions"] == goal_events.user_id.nunique() > 0


def test_variants_against_control_use_the_experiment_statistics(
    client: TestClient, admin_headers: Headers, scenario: Scenario
) -> None:
    report = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report", headers=admin_headers
    ).json()
    x = expected(scenario)
    arms = (
        x.entrants.dropna(subset=["variant"])
        .groupby("variant")
        .agg(users=("user_id", "size"), conversions=("converted_at", "count"))
    )
    experiment = report["experiment"]
    assert experiment["baseline"] == "control"
    rows = {v["variant"]: v for v in experiment["variants"]}
    assert set(rows) == {"a", "b", "control"}
    c_n, c_k = int(arms.loc["control", "users"]), int(arms.loc["control", "conversions"])
    for name in ("a", "b"):
        n, k = int(arms.loc[name, "users"]), int(arms.loc[name, "conversions"])
        row = rows[name]
        assert (row["users"], row["conversions"]) == (n, k)
        assert row["difference"] == pytest.approx(k / n - c_k / c_n)
        assert row["lift"] == pytest.approx((k / n - c_k / c_n) / (c_k / c_n))
        assert row["p_value"] == pytest.approx(proportions_ztest([k, c_k], [n, c_n])[1])
        low, high = confint_proportions_2indep(k, n, c_k, c_n, method="wald", compare="diff")
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
        assert 0 < row["chance_to_win"] < 1
    assert rows["control"]["difference"] is None
    observed = [int(arms.loc[v, "users"]) for v in ("control", "a", "b")]
    expected_counts = [sum(observed) * w for w in (0.1, 0.45, 0.45)]
    assert experiment["srm_p_value"] == pytest.approx(
        sps.chisquare(observed, expected_counts).pvalue
    )
    assert rows["a"]["planned_share"] == pytest.approx(0.45)


def test_date_range_selects_entrants_by_first_entry(
    client: TestClient, admin_headers: Headers, scenario: Scenario
) -> None:
    answer = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report",
        params={"from": "2026-10-01", "to": "2026-10-31"},
        headers=admin_headers,
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    x = expected(scenario, start=OCT_START, end=OCT_START + timedelta(days=31))
    assert 0 < report["entrants"] == len(x.entrants) < 600
    for node in report["nodes"]:
        assert _node_view(node) == node_counts(x, node["node_id"]), node["node_id"]
    bad = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report",
        params={"from": "2026-10-31", "to": "2026-10-01"},
        headers=admin_headers,
    )
    assert bad.status_code == 400


def test_channel_cost_with_prices_set_through_the_api(
    client: TestClient,
    admin_headers: Headers,
    make_headers: Callable[..., Headers],
    scenario: Scenario,
    runtime: Runtime,
) -> None:
    sms = client.put(
        "/api/v1/analytics/channel-prices/sms",
        json={"unit": "sms_segment", "unit_price": 0.045},
        headers=admin_headers,
    )
    assert sms.status_code == 200, sms.text
    assert sms.json()["unit_price"] == 0.045
    hook = client.put(
        "/api/v1/analytics/channel-prices/webhook",
        json={"unit_price": 0.002},
        headers=admin_headers,
    )
    assert hook.status_code == 200
    refused = client.put(
        "/api/v1/analytics/channel-prices/sms",
        json={"unit_price": 1},
        headers=make_headers("compliance"),
    )
    assert refused.status_code == 403
    listed = client.get("/api/v1/analytics/channel-prices", headers=admin_headers).json()
    assert [p["channel"] for p in listed] == ["sms", "webhook"]
    report = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report", headers=admin_headers
    ).json()
    x = expected(scenario)
    sent = x.events[x.events.event == se.MESSAGE_SENT]
    text = SMS_TEXT.replace("{{ user.name }}", "")
    segments = math.ceil(len(text) / 67)
    assert segments == 3
    sms_sent = sent[sent.channel == "sms"].message_id.nunique()
    hook_sent = sent[sent.channel == "webhook"].message_id.nunique()
    touches = last_touch(x)
    channels = {c["channel"]: c for c in report["channels"]}
    assert channels["sms"]["messages_sent"] == sms_sent
    assert channels["sms"]["billed_units"] == sms_sent * segments
    assert channels["sms"]["cost"] == pytest.approx(sms_sent * segments * 0.045)
    assert channels["webhook"]["cost"] == pytest.approx(hook_sent * 0.002)
    sms_conv = touches.get(("send_a", "sms"), 0)
    assert channels["sms"]["conversions"] == sms_conv > 0
    assert channels["sms"]["cost_per_conversion"] == pytest.approx(
        sms_sent * segments * 0.045 / sms_conv, abs=1e-4
    )
    total = sms_sent * segments * 0.045 + hook_sent * 0.002
    assert report["cost_total"] == pytest.approx(total, abs=1e-4)
    assert report["cost_per_conversion"] == pytest.approx(
        total / x.entrants.converted_at.notna().sum(), abs=1e-4
    )
    nodes = {n["node_id"]: n for n in report["nodes"]}
    assert nodes["send_a"]["cost"] == pytest.approx(sms_sent * segments * 0.045, abs=1e-4)
    with runtime.db.unit_of_work() as session:
        actions = set(session.scalars(select(AuditEntry.action)))
    assert "analytics.channel_price" in actions
    gone = client.delete("/api/v1/analytics/channel-prices/webhook", headers=admin_headers)
    assert gone.status_code == 204
    assert (
        client.delete("/api/v1/analytics/channel-prices/webhook", headers=admin_headers).status_code
        == 404
    )


@pytest.mark.parametrize("by", ["branch", "variant", "segment", "channel"])
def test_drill_down(
    client: TestClient, admin_headers: Headers, scenario: Scenario, by: str
) -> None:
    params: dict[str, Any] = {"by": by}
    if by == "segment":
        params["segment_id"] = 7
    answer = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report",
        params=params,
        headers=admin_headers,
    )
    assert answer.status_code == 200, answer.text
    rows = {(r["group"], r["node_id"]): r for r in answer.json()["breakdown"]}
    x = expected(scenario)
    if by == "channel":
        sent = x.events[x.events.event == se.MESSAGE_SENT]
        for (node, channel), frame in sent.groupby(["node_id", "channel"]):
            assert rows[(channel, node)]["sent"] == frame.message_id.nunique()
            assert rows[(channel, node)]["converted"] is None
        return
    if by == "branch":
        groups = {g: set(f.user_id) for g, f in x.entrants.groupby("branch")}
    elif by == "variant":
        groups = {g: set(f.user_id) for g, f in x.entrants.groupby("variant")}
    else:
        ids = set(x.entrants.user_id)
        groups = {
            "member": ids & scenario.segment_members,
            "non_member": ids - scenario.segment_members,
        }
    checked = 0
    for group, members in groups.items():
        sub = Expected(
            entrants=x.entrants[x.entrants.user_id.isin(members)],
            events=x.events[x.events.user_id.isin(members)],
        )
        for node in ("in", "ab", "send_a", "send_b", "out"):
            want = node_counts(sub, node)
            got = rows.get((group, node))
            if want["entered"] == 0 and want["prepared"] == 0:
                assert got is None
                continue
            assert got is not None and _node_view(got) == want, (group, node)
            checked += 1
    assert checked >= 6
    if by == "segment":
        missing = client.get(
            f"/api/v1/analytics/journeys/{scenario.journey_id}/report",
            params={"by": "segment"},
            headers=admin_headers,
        )
        assert missing.status_code == 400


def test_branch_scoped_analyst_sees_only_their_branch(
    client: TestClient, make_headers: Callable[..., Headers], scenario: Scenario
) -> None:
    scoped = make_headers("analyst", branch_scope=["BR1"])
    report = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report", headers=scoped
    ).json()
    x = expected(scenario, branches={"BR1"})
    assert 0 < report["entrants"] == len(x.entrants) < 600
    assert report["conversions"] == int(x.entrants.converted_at.notna().sum())
    for node in report["nodes"]:
        assert _node_view(node) == node_counts(x, node["node_id"]), node["node_id"]
    nobody = make_headers("analyst", branch_scope=["BR9"])
    empty = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report", headers=nobody
    ).json()
    assert empty["entrants"] == 0
    assert all(n["entered"] == 0 for n in empty["nodes"])
    # live counts cover every customer: refused to scoped users
    live = client.get(f"/api/v1/analytics/journeys/{scenario.journey_id}/live", headers=scoped)
    assert live.status_code == 403


def test_version_filter_and_unknowns(
    client: TestClient, admin_headers: Headers, scenario: Scenario
) -> None:
    base = f"/api/v1/analytics/journeys/{scenario.journey_id}/report"
    v1 = client.get(base, params={"version": 1}, headers=admin_headers).json()
    assert v1["version"] == 1 and v1["entrants"] == 600
    assert client.get(base, params={"version": 2}, headers=admin_headers).status_code == 404
    assert (
        client.get("/api/v1/analytics/journeys/9999/report", headers=admin_headers).status_code
        == 404
    )
    assert client.get(base).status_code == 401


def test_csv_export_is_audited(
    client: TestClient, admin_headers: Headers, scenario: Scenario, runtime: Runtime
) -> None:
    answer = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report",
        params={"format": "csv", "by": "variant"},
        headers=admin_headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    lines = answer.text.splitlines()
    header = lines[1].split(",")
    assert header[:4] == ["node_id", "type", "entered", "users"]
    json_report = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report", headers=admin_headers
    ).json()
    first = lines[2].split(",")
    assert first[0] == "in" and int(first[2]) == json_report["nodes"][0]["entered"]
    assert any(line.startswith("# variants") for line in lines)
    assert any(line.startswith("# breakdown by variant") for line in lines)
    with runtime.db.unit_of_work() as session:
        targets = list(
            session.scalars(
                select(AuditEntry.target).where(AuditEntry.action == "analytics.export")
            )
        )
    assert targets == [f"journey_report:{scenario.journey_id}"]


def test_campaign_report_rolls_up_journeys(
    client: TestClient, admin_headers: Headers, scenario: Scenario, runtime: Runtime
) -> None:
    # A second journey of the same campaign (draft only, no events) and one of another.
    with runtime.db.unit_of_work() as session:
        for name, campaign in (("second", "双十一"), ("other", "春节")):
            session.add(
                Journey(
                    project_id=scenario.project_id,
                    name=name,
                    draft={**DEFINITION, "name": name, "campaign": campaign},
                )
            )
    answer = client.get("/api/v1/analytics/campaigns/双十一/report", headers=admin_headers)
    assert answer.status_code == 200, answer.text
    campaign = answer.json()
    assert [j["name"] for j in campaign["journeys"]] == ["double eleven funds", "second"]
    single = client.get(
        f"/api/v1/analytics/journeys/{scenario.journey_id}/report", headers=admin_headers
    ).json()
    total = campaign["total"]
    assert total["entrants"] == single["entrants"]
    assert total["conversions"] == single["conversions"]
    assert total["sent"] == sum(n["sent"] for n in single["nodes"])
    assert total["blocked_by_reason"] == {
        r: sum(n["blocked_by_reason"].get(r, 0) for n in single["nodes"]) for r in BLOCK_REASONS
    }
    assert campaign["journeys"][1]["entrants"] == 0
    csv_answer = client.get(
        "/api/v1/analytics/campaigns/双十一/report",
        params={"format": "csv"},
        headers=admin_headers,
    )
    assert csv_answer.status_code == 200
    assert "total" in csv_answer.text
    assert (
        client.get("/api/v1/analytics/campaigns/nope/report", headers=admin_headers).status_code
        == 404
    )


def test_sms_segments() -> None:
    from flywheel.journeys.schemas import InlineContent

    assert reports.sms_segments(InlineContent(text="短" * 70)) == 1
    assert reports.sms_segments(InlineContent(text="短" * 71)) == 2
    assert reports.sms_segments(InlineContent(text="a" * 160)) == 1
    assert reports.sms_segments(InlineContent(text="a" * 161)) == 2
    assert reports.sms_segments(InlineContent(text="{{ user.name }}" + "短" * 70)) == 1
    assert reports.sms_segments(None) == 1


def test_graph_order_and_planned_weights() -> None:
    definition = JourneyDefinition.model_validate(DEFINITION)
    assert reports.graph_order(definition) == ["in", "ab", "send_a", "send_b", "out", "g_b"]
    weights = reports.planned_weights(definition)
    assert weights == pytest.approx({"a": 45, "b": 45, "control": 10})
    global_control = JourneyDefinition.model_validate(
        {**DEFINITION, "control_percent": 20, "nodes": DEFINITION["nodes"]}
    )
    assert reports.planned_weights(global_control) == pytest.approx(
        {"a": 36, "b": 36, "control": 28}
    )
