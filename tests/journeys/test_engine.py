"""The engine node by node: waits, delays, branches, splits, goals, re-entry, lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flywheel.core.clock import FrozenClock
from flywheel.journeys.engine import Engine
from flywheel.journeys.timing import after_trading_days, next_time_of_day
from flywheel.runtime import Runtime
from tests.identity.factory import all_events, apply, rec
from tests.journeys.helpers import messages, settle, states

HOOK = {"url": "http://127.0.0.1:9/hook", "secret": "k"}


def send(node_id: str, text: str = "您好") -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "send",
        "channel": "webhook",
        "webhook": HOOK,
        "content": {"text": text},
    }


def journey(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str, str | None]], **extra: Any
) -> dict[str, Any]:
    return {
        "name": extra.pop("name", "j"),
        "purpose": extra.pop("purpose", "service"),
        "nodes": nodes,
        "edges": [{"from": a, "to": b, **({"port": p} if p else {})} for a, b, p in edges],
        **extra,
    }


@pytest.fixture
def frozen(runtime: Runtime, clock: FrozenClock) -> FrozenClock:
    runtime.clock = clock  # type: ignore[misc]
    return clock


@pytest.fixture
def publish(
    client: TestClient, make_headers: Callable[..., dict[str, str]]
) -> Callable[[dict[str, Any]], int]:
    headers = make_headers("admin")

    def go(definition: dict[str, Any]) -> int:
        created = client.post("/api/v1/journeys", json=definition, headers=headers)
        assert created.status_code == 201, created.text
        jid = int(created.json()["id"])
        answer = client.post(f"/api/v1/journeys/{jid}/publish", headers=headers)
        assert answer.status_code == 200, answer.text
        return jid

    return go


def event(runtime: Runtime, clock: FrozenClock, name: str, who: str, **props: Any) -> None:
    apply(runtime, rec(event=name, distinct_id=who, time=clock.now, properties=props))


def test_wait_for_event_takes_the_event_exit_or_times_out(
    runtime: Runtime, frozen: FrozenClock, publish: Callable[[dict[str, Any]], int]
) -> None:
    publish(
        journey(
            [
                {"id": "in", "type": "entry_event", "event": "OpenAccount"},
                {
                    "id": "wait",
                    "type": "wait_event",
                    "event": "Deposit",
                    "timeout_seconds": 3600,
                    "filters": [{"property": "amount", "op": "gte", "value": 100}],
                },
                send("thanks"),
                send("nudge"),
                {"id": "out", "type": "exit"},
            ],
            [
                ("in", "wait", None),
                ("wait", "thanks", "event"),
                ("wait", "nudge", "timeout"),
                ("thanks", "out", None),
                ("nudge", "out", None),
            ],
        )
    )
    event(runtime, frozen, "OpenAccount", "a")
    event(runtime, frozen, "OpenAccount", "b")
    settle(runtime)
    assert {s.status for s in states(runtime)} == {"waiting"}
    frozen.advance(timedelta(minutes=5))
    event(runtime, frozen, "Deposit", "a", amount=50)  # filtered out
    event(runtime, frozen, "Deposit", "a", amount=500)
    settle(runtime)
    assert [m.node_id for m in messages(runtime)] == ["thanks"]
    frozen.advance(timedelta(hours=1))
    settle(runtime)
    assert sorted(m.node_id for m in messages(runtime)) == ["nudge", "thanks"]
    assert {s.status for s in states(runtime)} == {"done"}


def test_delays_hold_until_due(
    runtime: Runtime, frozen: FrozenClock, publish: Callable[[dict[str, Any]], int]
) -> None:
    publish(
        journey(
            [
                {"id": "in", "type": "entry_event", "event": "OpenAccount"},
                {"id": "d", "type": "delay", "mode": "duration", "seconds": 600},
                send("s"),
                {"id": "out", "type": "exit"},
            ],
            [("in", "d", None), ("d", "s", None), ("s", "out", None)],
        )
    )
    event(runtime, frozen, "OpenAccount", "a")
    settle(runtime)
    assert messages(runtime) == []
    frozen.advance(timedelta(seconds=599))
    settle(runtime)
    assert messages(runtime) == []
    frozen.advance(timedelta(seconds=1))
    settle(runtime)
    assert len(messages(runtime)) == 1


def test_time_of_day_and_trading_day_delays_use_shanghai_and_the_exchange_calendar(
    clock: FrozenClock,
) -> None:
    # 2026-11-02 02:00 UTC = 10:00 Shanghai, a Monday
    assert next_time_of_day(clock.now, "09:30").isoformat() == "2026-11-03T01:30:00"
    assert next_time_of_day(clock.now, "21:00").isoformat() == "2026-11-02T13:00:00"
    # Friday 2026-09-25 (Mid-Autumn, closed) + 1 trading day skips the weekend
    friday = clock.now.replace(year=2026, month=9, day=25)
    assert after_trading_days(friday, 1, None).isoformat() == "2026-09-28T01:30:00"
    # Wednesday 2026-09-30 + 1 trading day skips the National Day week
    before_holiday = clock.now.replace(year=2026, month=9, day=30)
    assert after_trading_days(before_holiday, 1, "14:00").isoformat() == "2026-10-08T06:00:00"


def test_condition_split_control_and_tag_branch(
    runtime: Runtime,
    frozen: FrozenClock,
    publish: Callable[[dict[str, Any]], int],
) -> None:
    for i in range(40):
        apply(
            runtime,
            rec(
                "profile_set",
                distinct_id=f"u{i}",
                properties={"risk_tolerance": "C4" if i % 2 else "C1"},
            ),
        )
    publish(
        journey(
            [
                {"id": "in", "type": "entry_event", "event": "Login"},
                {
                    "id": "cond",
                    "type": "condition",
                    "rule": {
                        "relation": "and",
                        "rules": [
                            {
                                "type": "profile_rule",
                                "field": "risk_tolerance",
                                "function": "in",
                                "params": ["C4", "C5"],
                            }
                        ],
                    },
                },
                {
                    "id": "ab",
                    "type": "split",
                    "branches": [{"port": "a", "weight": 50}, {"port": "control", "weight": 50}],
                },
                send("offer"),
                send("edu"),
                {"id": "out", "type": "exit"},
            ],
            [
                ("in", "cond", None),
                ("cond", "ab", "yes"),
                ("cond", "edu", "no"),
                ("ab", "offer", "a"),
                ("offer", "out", None),
                ("edu", "out", None),
            ],
        )
    )
    for i in range(40):
        event(runtime, frozen, "Login", f"u{i}")
    settle(runtime)
    sent = messages(runtime)
    edu = [m for m in sent if m.node_id == "edu"]
    offers = [m for m in sent if m.node_id == "offer"]
    assert len(edu) == 20
    assert 0 < len(offers) < 20  # the control half is held out
    assert {m.variant for m in offers} == {"a"}
    done = states(runtime)
    assert len(done) == 40 and {s.status for s in done} == {"done"}
    control = [s for s in done if s.variant == "control"]
    assert len(control) + len(offers) == 20
    names = [e["event"] for e in all_events(runtime)]
    assert names.count("$JourneyExit") == 40


def test_reentry_after_exit_and_api_trigger(
    client: TestClient,
    runtime: Runtime,
    frozen: FrozenClock,
    publish: Callable[[dict[str, Any]], int],
    admin_headers: dict[str, str],
) -> None:
    apply(runtime, rec("profile_set", distinct_id="x", properties={"name": "张三"}))
    jid = publish(
        journey(
            [{"id": "in", "type": "entry_api"}, send("s"), {"id": "out", "type": "exit"}],
            [("in", "s", None), ("s", "out", None)],
            reentry="after_exit",
        )
    )
    url = f"/api/v1/journeys/{jid}/trigger"
    body = {"identities": [["$identity_anonymous_id", "x"]], "properties": {"campaign": "c1"}}
    first = client.post(url, json=body, headers=admin_headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"entered": 1, "skipped": 0}
    client.post(url, json=body, headers=admin_headers)
    sent = messages(runtime)
    assert [m.idempotency_key.rsplit(":", 1)[1] for m in sent] == ["o1", "o2"]
    assert sent[0].context["event"] == {"campaign": "c1"}


def test_pause_holds_and_stop_withdraws_unsent_messages(
    client: TestClient,
    runtime: Runtime,
    frozen: FrozenClock,
    publish: Callable[[dict[str, Any]], int],
    admin_headers: dict[str, str],
) -> None:
    jid = publish(
        journey(
            [
                {"id": "in", "type": "entry_event", "event": "Login"},
                {"id": "d", "type": "delay", "mode": "duration", "seconds": 60},
                send("s"),
                {"id": "out", "type": "exit"},
            ],
            [("in", "d", None), ("d", "s", None), ("s", "out", None)],
        )
    )
    event(runtime, frozen, "Login", "p")
    settle(runtime)
    assert client.post(f"/api/v1/journeys/{jid}/pause", headers=admin_headers).status_code == 200
    frozen.advance(timedelta(minutes=5))
    event(runtime, frozen, "Login", "q")
    settle(runtime)
    assert messages(runtime) == [] and len(states(runtime)) == 1
    client.post(f"/api/v1/journeys/{jid}/resume", headers=admin_headers)
    settle(runtime)
    assert len(messages(runtime)) == 1
    stopped = client.post(f"/api/v1/journeys/{jid}/stop", headers=admin_headers)
    assert stopped.json()["status"] == "stopped"
    assert [(m.status, m.reason) for m in messages(runtime)] == [
        ("blocked", "journey_stopped")
    ] or [m.status for m in messages(runtime)] != ["prepared"]


def test_segment_entry_once_in_chunks_and_goal_metric(
    client: TestClient,
    runtime: Runtime,
    frozen: FrozenClock,
    publish: Callable[[dict[str, Any]], int],
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flywheel.journeys import engine as engine_module

    monkeypatch.setattr(engine_module, "ENTRY_CHUNK", 7)
    for i in range(30):
        apply(runtime, rec("profile_set", distinct_id=f"s{i}", properties={"vip": i < 25}))
    segment = client.post(
        "/api/v1/segments",
        json={
            "name": "vips",
            "rule": {
                "relation": "and",
                "rules": [
                    {"type": "profile_rule", "field": "vip", "function": "isTrue", "params": []}
                ],
            },
        },
        headers=admin_headers,
    )
    assert segment.status_code == 201, segment.text
    jid = publish(
        journey(
            [
                {"id": "in", "type": "entry_segment", "segment_id": segment.json()["id"]},
                send("s"),
                {"id": "g", "type": "goal", "event": "BuyFund", "window_seconds": 86400},
                {"id": "out", "type": "exit"},
            ],
            [("in", "s", None), ("s", "g", None), ("g", "out", "reached"), ("g", "out", "timeout")],
            goals=[{"event": "BuyFund", "window_seconds": 86400}],
        )
    )
    settle(runtime)
    assert len(messages(runtime)) == 25
    settle(runtime)  # a "once" entry never runs again
    assert len(messages(runtime)) == 25
    event(runtime, frozen, "BuyFund", "s3")
    event(runtime, frozen, "BuyFund", "s3")
    settle(runtime)
    stats = client.get(f"/api/v1/journeys/{jid}/stats", headers=admin_headers).json()
    assert stats["goals"] == {"BuyFund": 2}  # the journey goal once and the goal node once
    node = {n["node_id"]: n for n in stats["nodes"]}["g"]
    assert node["counters"]["port:reached"] == 1
    assert node["active"] == 24
    goal_events = [e for e in all_events(runtime) if e["event"] == "$JourneyGoal"]
    assert len(goal_events) == 2


def test_did_a_but_not_b_within_t(
    runtime: Runtime, frozen: FrozenClock, publish: Callable[[dict[str, Any]], int]
) -> None:
    publish(
        journey(
            [
                {
                    "id": "in",
                    "type": "entry_not_done",
                    "event": "AddToCart",
                    "not_event": "BuyFund",
                    "within_seconds": 1800,
                },
                send("remind"),
                {"id": "out", "type": "exit"},
            ],
            [("in", "remind", None), ("remind", "out", None)],
        )
    )
    event(runtime, frozen, "AddToCart", "buyer")
    event(runtime, frozen, "AddToCart", "browser")
    settle(runtime)
    frozen.advance(timedelta(minutes=10))
    event(runtime, frozen, "BuyFund", "buyer")
    settle(runtime)
    frozen.advance(timedelta(minutes=21))
    settle(runtime)
    sent = messages(runtime)
    assert len(sent) == 1
    by_status = sorted(s.status for s in states(runtime))
    assert by_status == ["done", "exited"]


def test_new_version_migrates_customers_in_flight(
    client: TestClient,
    runtime: Runtime,
    frozen: FrozenClock,
    publish: Callable[[dict[str, Any]], int],
    admin_headers: dict[str, str],
) -> None:
    definition = journey(
        [
            {"id": "in", "type": "entry_event", "event": "Login"},
            {"id": "d", "type": "delay", "mode": "duration", "seconds": 60},
            send("s", "v1"),
            {"id": "out", "type": "exit"},
        ],
        [("in", "d", None), ("d", "s", None), ("s", "out", None)],
    )
    jid = publish(definition)
    event(runtime, frozen, "Login", "m")
    settle(runtime)
    definition["nodes"][2]["content"]["text"] = "v2"
    client.put(f"/api/v1/journeys/{jid}", json=definition, headers=admin_headers)
    answer = client.post(
        f"/api/v1/journeys/{jid}/publish", json={"in_flight": "migrate"}, headers=admin_headers
    )
    assert answer.json()["live_version"]["number"] == 2
    frozen.advance(timedelta(minutes=2))
    settle(runtime)
    (message,) = messages(runtime)
    assert ":v2:" in message.idempotency_key
    versions = client.get(f"/api/v1/journeys/{jid}/versions", headers=admin_headers).json()
    assert [v["state"] for v in versions] == ["draining", "live"]


def test_set_tag_and_property(
    runtime: Runtime,
    frozen: FrozenClock,
    publish: Callable[[dict[str, Any]], int],
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    created = client.post(
        "/api/v1/tags",
        json={"name": "journey_flag", "kind": "imported", "spec": {}},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    publish(
        journey(
            [
                {"id": "in", "type": "entry_event", "event": "Login"},
                {"id": "tag", "type": "set_tag", "tag": "journey_flag", "value": "touched"},
                {"id": "prop", "type": "set_property", "property": "last_journey", "value": "j"},
                {"id": "out", "type": "exit"},
            ],
            [("in", "tag", None), ("tag", "prop", None), ("prop", "out", None)],
        )
    )
    event(runtime, frozen, "Login", "t1")
    settle(runtime)
    from flywheel.profiles import service as profiles

    user = states(runtime)[0].user_id
    with runtime.db.unit_of_work() as session:
        profile = profiles.get_profile(session=session, project_id=1, user_id=user)
    assert profile is not None and profile["last_journey"] == "j"
    tags = runtime.warehouse.latest_tag_values(1, user)
    assert tags["journey_flag"] == "touched"


def test_engine_is_idle_when_nothing_is_published(runtime: Runtime) -> None:
    assert Engine(runtime).run_once() == 0
