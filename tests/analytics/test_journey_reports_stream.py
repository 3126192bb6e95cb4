"""Live journey counts pushed as server-sent events, read by a real streaming HTTP client from a
uvicorn server started in the test, authenticated by the console's session cookie."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import update

from flywheel.analytics import journey_routes
from flywheel.app import create_app
from flywheel.auth import service as auth_service
from flywheel.channels import outbox
from flywheel.channels.models import Message
from flywheel.journeys.models import Journey, JourneyNodeCount, JourneyState, JourneyVersion
from flywheel.projects import service as projects
from flywheel.runtime import Runtime

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
PASSWORD = "correct-horse-42"
DEFINITION: dict[str, Any] = {
    "name": "live",
    "nodes": [
        {"id": "in", "type": "entry_api"},
        {"id": "send", "type": "send", "channel": "email", "content": {"text": "hi"}},
        {"id": "out", "type": "exit"},
    ],
    "edges": [{"from": "in", "to": "send"}, {"from": "send", "to": "out"}],
}


@pytest.fixture
def server(runtime: Runtime) -> Iterator[str]:
    app = create_app(runtime=runtime, workers=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def _user(
    runtime: Runtime, username: str, role: str, branch_scope: list[str] | None = None
) -> None:
    with runtime.db.unit_of_work() as session:
        auth_service.create_user(
            session=session,
            username=username,
            password=PASSWORD,
            role=role,
            branch_scope=branch_scope,
        )


def _cookie_client(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    answer = client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": PASSWORD, "session_cookie": True},
    )
    assert answer.status_code == 200, answer.text
    assert "flywheel_session" in client.cookies
    return client


def _journey(runtime: Runtime) -> tuple[int, int, int]:
    """A published journey with three messages in the outbox and engine counters."""
    with runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name="default").id
        journey = Journey(project_id=project_id, name="live", status="published", draft=DEFINITION)
        session.add(journey)
        session.flush()
        version = JourneyVersion(
            project_id=project_id, journey_id=journey.id, number=1, definition=DEFINITION
        )
        session.add(version)
        session.flush()
        journey.live_version_id = version.id
        session.add_all(
            [
                JourneyNodeCount(version_id=version.id, node_id="in", metric="entered", count=3),
                JourneyNodeCount(version_id=version.id, node_id="send", metric="entered", count=3),
            ]
        )
        for uid in (1, 2, 3):
            session.add(
                JourneyState(
                    project_id=project_id,
                    journey_id=journey.id,
                    version_id=version.id,
                    user_id=uid,
                    node_id="send",
                    status="active",
                    entered_at=NOW.replace(tzinfo=None),
                    updated_at=NOW.replace(tzinfo=None),
                )
            )
        spec = outbox.register_spec(
            session=session,
            project_id=project_id,
            owner=f"journey:{journey.id}:v1:send",
            channel="email",
            purpose="marketing",
            content_id=None,
            template={"text": "hi"},
            config={},
        )
        outbox.enqueue(
            session=session,
            project_id=project_id,
            messages=[
                outbox.NewMessage(
                    key=f"j{journey.id}:v1:send:{uid}:1",
                    user_id=uid,
                    spec_id=spec,
                    channel="email",
                    purpose="marketing",
                    journey_id=journey.id,
                    version_id=version.id,
                    node_id="send",
                )
                for uid in (1, 2, 3)
            ],
            now=NOW,
        )
        return project_id, journey.id, version.id


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse an SSE stream into {"event", "data", "id", "comment"} records."""
    record: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if record:
                yield record
            record = {}
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "":
            record["comment"] = value
        elif field == "data":
            record["data"] = json.loads(value)
        else:
            record[field] = value


def _send_node(counts: dict[str, Any]) -> dict[str, Any]:
    return next(n for n in counts["nodes"] if n["node_id"] == "send")


def test_stream_pushes_changes_and_heartbeats_over_a_cookie_session(
    runtime: Runtime, server: str
) -> None:
    _, journey_id, version_id = _journey(runtime)
    _user(runtime, "ana", "analyst")
    client = _cookie_client(server, "ana")
    url = f"/api/v1/analytics/journeys/{journey_id}/stream"
    with client.stream("GET", url, params={"interval": 0.2, "heartbeat": 1}) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert journey_routes.open_streams == 1
        events = _events(answer.iter_lines())
        first = next(e for e in events if e.get("event") == "counts")
        assert first["id"] == "1"
        node = _send_node(first["data"])
        assert node["messages"] == {"prepared": 3}
        assert node["counters"] == {"entered": 3}
        assert node["entered"] == 3
        assert node["active"] == 3
        totals = {k: first["data"][k] for k in ("entered", "in_flight", "completed", "goals")}
        assert totals == {"entered": 3, "in_flight": 3, "completed": 0, "goals": {}}
        # Nothing changes: a heartbeat comes, not a repeated update.
        quiet = next(events)
        assert quiet.get("comment") == "heartbeat", quiet
        # The dispatcher delivers one, the gate blocks one.
        with runtime.db.unit_of_work() as session:
            session.execute(update(Message).where(Message.user_id == 1).values(status="delivered"))
            session.execute(
                update(Message)
                .where(Message.user_id == 2)
                .values(status="blocked", reason="quiet_hours")
            )
            session.execute(
                update(JourneyNodeCount)
                .where(JourneyNodeCount.version_id == version_id, JourneyNodeCount.node_id == "in")
                .values(count=4)
            )
            session.execute(
                update(JourneyState)
                .where(JourneyState.user_id == 3)
                .values(node_id="out", status="done")
            )
        second = next(e for e in events if e.get("event") == "counts")
        assert second["id"] == "2"
        node = _send_node(second["data"])
        assert node["messages"] == {"prepared": 1, "delivered": 1, "blocked": 1}
        assert node["blocked"] == {"quiet_hours": 1}
        assert node["active"] == 2
        entry = next(n for n in second["data"]["nodes"] if n["node_id"] == "in")
        assert entry["counters"] == {"entered": 4}
        assert entry["entered"] == 4
        assert (second["data"]["in_flight"], second["data"]["completed"]) == (2, 1)
    client.close()
    # The server notices the client left and ends the stream.
    deadline = time.monotonic() + 5
    while journey_routes.open_streams:
        assert time.monotonic() < deadline, "the stream did not end after the client left"
        time.sleep(0.05)


def test_stream_refusals(runtime: Runtime, server: str) -> None:
    _, journey_id, _ = _journey(runtime)
    _user(runtime, "ana", "analyst")
    _user(runtime, "branchy", "analyst", branch_scope=["BR1"])
    _user(runtime, "adv", "advisor")
    url = f"/api/v1/analytics/journeys/{journey_id}/stream"
    with httpx.Client(base_url=server, timeout=10) as anonymous:
        assert anonymous.get(url).status_code == 401
    scoped = _cookie_client(server, "branchy")
    assert scoped.get(url).status_code == 403
    scoped.close()
    advisor = _cookie_client(server, "adv")
    assert advisor.get(url).status_code == 403
    advisor.close()
    analyst = _cookie_client(server, "ana")
    assert analyst.get("/api/v1/analytics/journeys/9999/stream").status_code == 404
    live = analyst.get(f"/api/v1/analytics/journeys/{journey_id}/live")
    assert live.status_code == 200
    assert _send_node(live.json())["messages"] == {"prepared": 3}
    analyst.close()
    assert journey_routes.open_streams == 0


def test_live_counts_carry_what_the_canvas_reads_from_journey_stats(
    runtime: Runtime, client: TestClient, make_headers: Callable[..., dict[str, str]]
) -> None:
    """The console's canvas takes ``counts`` events and ``GET /journeys/{id}/stats`` answers
    alike: for the live version both carry the same totals and the same per-node numbers."""
    _, journey_id, version_id = _journey(runtime)
    with runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name="default").id
        session.add_all(
            [
                JourneyNodeCount(version_id=version_id, node_id="out", metric="entered", count=1),
                JourneyNodeCount(
                    version_id=version_id, node_id="send", metric="port:clicked", count=1
                ),
                JourneyNodeCount(
                    version_id=version_id, node_id="__journey__", metric="goal:BuyFund", count=2
                ),
                JourneyState(
                    project_id=project_id,
                    journey_id=journey_id,
                    version_id=version_id,
                    user_id=4,
                    node_id="out",
                    status="done",
                    entered_at=NOW.replace(tzinfo=None),
                    updated_at=NOW.replace(tzinfo=None),
                ),
            ]
        )
    headers = make_headers("admin")
    live = client.get(
        f"/api/v1/analytics/journeys/{journey_id}/live", params={"version": 1}, headers=headers
    )
    stats = client.get(f"/api/v1/journeys/{journey_id}/stats", headers=headers)
    assert live.status_code == 200 and stats.status_code == 200, (live.text, stats.text)
    live_body, stats_body = live.json(), stats.json()
    live_nodes = {n["node_id"]: n for n in live_body.pop("nodes")}
    stats_nodes = {n["node_id"]: n for n in stats_body.pop("nodes")}
    assert live_body == stats_body
    assert live_body["entered"] == 4 and live_body["completed"] == 1
    assert live_body["goals"] == {"BuyFund": 2}
    assert live_nodes == stats_nodes
    assert live_nodes["send"]["entered"] == 3


def test_live_totals_are_the_whole_journeys_after_a_republish(
    runtime: Runtime, client: TestClient, make_headers: Callable[..., dict[str, str]]
) -> None:
    """The canvas streams its live version; the journey totals still count customers finishing
    on an older version, as ``/stats`` does, so falling back to polling changes nothing."""
    _, journey_id, _ = _journey(runtime)
    with runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name="default").id
        new = JourneyVersion(
            project_id=project_id, journey_id=journey_id, number=2, definition=DEFINITION
        )
        session.add(new)
        session.flush()
        session.get(Journey, journey_id).live_version_id = new.id  # type: ignore[union-attr]
        session.add(
            JourneyState(
                project_id=project_id,
                journey_id=journey_id,
                version_id=new.id,
                user_id=9,
                node_id="send",
                status="active",
                entered_at=NOW.replace(tzinfo=None),
                updated_at=NOW.replace(tzinfo=None),
            )
        )
    headers = make_headers("admin")
    live = client.get(
        f"/api/v1/analytics/journeys/{journey_id}/live", params={"version": 2}, headers=headers
    ).json()
    stats = client.get(f"/api/v1/journeys/{journey_id}/stats", headers=headers).json()
    totals = ("entered", "in_flight", "completed")
    assert [live[k] for k in totals] == [stats[k] for k in totals] == [4, 4, 0]
    assert {n["node_id"]: n["active"] for n in live["nodes"]}["send"] == 1  # version 2's own
    assert live["version"] == 2
