"""The issue's canonical journey is accepted as written, published, and prepares exactly one
message per customer when its event arrives."""

from __future__ import annotations

import copy
from collections.abc import Callable

from fastapi.testclient import TestClient

from flywheel.runtime import Runtime
from tests.identity.factory import all_events, apply, rec
from tests.journeys.helpers import CANONICAL, messages, settle, states


def test_canonical_journey_is_accepted_published_and_sends_once(
    client: TestClient, runtime: Runtime, make_headers: Callable[..., dict[str, str]]
) -> None:
    headers = make_headers("marketer")
    created = client.post("/api/v1/journeys", json=CANONICAL, headers=headers)
    assert created.status_code == 201, created.text
    journey = created.json()
    assert journey["status"] == "draft"
    published = client.post(f"/api/v1/journeys/{journey['id']}/publish", headers=headers)
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    assert published.json()["live_version"]["number"] == 1

    apply(runtime, rec(event="BuyFund", distinct_id="c1", properties={"amount": 1000}))
    apply(runtime, rec(event="Login", distinct_id="c2"))
    settle(runtime)
    # the same customer buys again: re-entry "never" keeps one message
    apply(runtime, rec(event="BuyFund", distinct_id="c1"))
    settle(runtime)

    sent = messages(runtime)
    assert len(sent) == 1
    message = sent[0]
    assert message.channel == "webhook"
    assert message.purpose == "service"
    assert message.idempotency_key.startswith(f"j{journey['id']}:v1:send:u")
    assert message.context["event"]["amount"] == 1000
    assert [s.status for s in states(runtime)] == ["done"]

    names = [e["event"] for e in all_events(runtime) if e["event"].startswith("$")]
    assert names.count("$JourneyEnter") == 1
    assert names.count("$MessagePrepared") == 1
    assert names.count("$JourneyExit") == 1

    stats = client.get(f"/api/v1/journeys/{journey['id']}/stats", headers=headers).json()
    by_node = {n["node_id"]: n for n in stats["nodes"]}
    assert by_node["send"]["counters"]["prepared"] == 1
    assert by_node["in"]["entered"] == 1
    assert stats["completed"] == 1


def test_publish_refuses_an_invalid_graph_with_problems_on_nodes(
    client: TestClient, make_headers: Callable[..., dict[str, str]]
) -> None:
    headers = make_headers("marketer")
    broken = copy.deepcopy(CANONICAL)
    broken["edges"] = [{"from": "in", "to": "send"}]  # send's exit is not connected
    broken["nodes"][1]["content"]["text"] = "保本保收益，稳赚不赔"
    journey = client.post("/api/v1/journeys", json=broken, headers=headers).json()
    answer = client.post(f"/api/v1/journeys/{journey['id']}/publish", headers=headers)
    assert answer.status_code == 422
    problems = (
        answer.json()["detail"]["problems"]
        if "problems" in answer.json().get("detail", {})
        else answer.json()["problems"]
    )
    codes = {(p["code"], p.get("node")) for p in problems}
    assert ("missing_port", "send") in codes
    assert ("prohibited_claims", "send") in codes
    assert ("unreachable", "out") in codes
