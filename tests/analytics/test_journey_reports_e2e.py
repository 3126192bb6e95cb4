"""End to end: a journey published on demo data, moved by the real engine, its messages
delivered by the real dispatcher to a local signed-webhook sink, purchases ingested — then the
journey report and the live counts read through the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from flywheel.channels.dispatch import Dispatcher
from flywheel.core.clock import FrozenClock
from flywheel.demo.service import load_demo
from flywheel.runtime import Runtime
from tests.channels.dispatch_helpers import SECRET, Sink
from tests.identity.factory import apply, rec
from tests.journeys.helpers import messages, settle

Headers = dict[str, str]


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.close()


def test_report_of_a_journey_run_by_the_engine_and_dispatcher(
    client: TestClient,
    runtime: Runtime,
    clock: FrozenClock,
    admin_headers: Headers,
    sink: Sink,
) -> None:
    runtime.clock = clock  # type: ignore[misc]
    load_demo(runtime, project_id=1, customers=150, days=20)
    people = runtime.warehouse.fetch(
        # each demo customer's login id (cust-…)
        "SELECT e.user_id, min(e.distinct_id) FROM p1_events e "
        "WHERE e.distinct_id LIKE 'cust-%' GROUP BY e.user_id ORDER BY e.user_id LIMIT 80"
    )
    definition = {
        "name": "demo report journey",
        "purpose": "service",
        "campaign": "e2e",
        "goals": [{"event": "BuyFund", "window_seconds": 7 * 86400}],
        "nodes": [
            {"id": "in", "type": "entry_api"},
            {
                "id": "ab",
                "type": "split",
                "branches": [{"port": "a", "weight": 50}, {"port": "control", "weight": 50}],
            },
            {
                "id": "send",
                "type": "send",
                "channel": "webhook",
                "webhook": {"url": sink.url, "secret": SECRET},
                "content": {"text": "您好，基金开放申购"},
            },
            {"id": "out", "type": "exit"},
        ],
        "edges": [
            {"from": "in", "to": "ab"},
            {"from": "ab", "to": "send", "port": "a"},
            {"from": "send", "to": "out"},
        ],
    }
    created = client.post("/api/v1/journeys", json=definition, headers=admin_headers)
    assert created.status_code == 201, created.text
    journey_id = created.json()["id"]
    published = client.post(f"/api/v1/journeys/{journey_id}/publish", headers=admin_headers)
    assert published.status_code == 200, published.text
    triggered = client.post(
        f"/api/v1/journeys/{journey_id}/trigger",
        json={"user_ids": [int(u) for u, _ in people]},
        headers=admin_headers,
    )
    assert triggered.status_code == 200, triggered.text
    settle(runtime)
    with Dispatcher(
        db=runtime.db, warehouse=runtime.warehouse, settings=runtime.settings, clock=clock
    ) as dispatcher:
        for _ in range(5):
            if not dispatcher.run_once():
                break
    outbox = messages(runtime)
    delivered = [m for m in outbox if m.status in ("sent", "delivered")]
    blocked: dict[str, int] = {}
    for m in outbox:
        if m.status == "blocked":
            blocked[m.reason or "unknown"] = blocked.get(m.reason or "unknown", 0) + 1
    assert delivered and len(sink.received) == len(delivered)
    assert all(r.signature_ok for r in sink.received)
    # Purchases an hour later by some of the treated and some of the control customers.
    clock.advance(timedelta(hours=1))
    treated = {m.user_id for m in outbox}
    reached = {m.user_id for m in delivered}
    distinct = {int(u): str(d) for u, d in people}
    control = sorted(set(distinct) - treated)
    treated_buyers, control_buyers = sorted(reached)[:7], control[:3]
    buyers = treated_buyers + control_buyers
    assert len(treated_buyers) >= 3 and len(control_buyers) == 3
    apply(
        runtime,
        *(
            rec(
                event="BuyFund",
                distinct_id=distinct[u],
                login_id=distinct[u],
                time=clock.now,
                properties={"amount": 1e4},
            )
            for u in buyers
        ),
    )
    settle(runtime)

    answer = client.get(f"/api/v1/analytics/journeys/{journey_id}/report", headers=admin_headers)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["entrants"] == len(people)
    nodes = {n["node_id"]: n for n in report["nodes"]}
    assert [n["node_id"] for n in report["nodes"]] == ["in", "ab", "send", "out"]
    assert nodes["in"]["entered"] == len(people)
    assert nodes["ab"]["entered"] == len(people)
    assert nodes["send"]["entered"] == len(treated)
    assert nodes["send"]["prepared"] == len(outbox)
    assert nodes["send"]["sent"] == len(delivered)
    assert nodes["send"]["blocked_by_reason"] == blocked
    assert nodes["out"]["entered"] == len(treated)
    assert report["conversions"] == len(buyers)
    assert nodes["send"]["converted"] == len(treated_buyers)
    assert nodes["send"]["attributed_conversions"] == len(treated_buyers)
    arms = {v["variant"]: v for v in report["experiment"]["variants"]}
    assert arms["a"]["users"] == len(treated) and arms["a"]["conversions"] == len(treated_buyers)
    assert arms["control"]["users"] == len(control) and arms["control"]["conversions"] == 3
    assert arms["a"]["p_value"] is not None and report["experiment"]["srm_p_value"] is not None

    live = client.get(f"/api/v1/analytics/journeys/{journey_id}/live", headers=admin_headers)
    assert live.status_code == 200, live.text
    send = next(n for n in live.json()["nodes"] if n["node_id"] == "send")
    assert send["counters"]["entered"] == len(treated)
    assert sum(send["messages"].values()) == len(outbox)

    campaign = client.get("/api/v1/analytics/campaigns/e2e/report", headers=admin_headers).json()
    assert campaign["total"]["entrants"] == len(people)
    assert campaign["total"]["sent"] == len(delivered)
