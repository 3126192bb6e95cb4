"""The Segment spec: the official analytics-python client against a live server, and mapping."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from segment.analytics import Client
from segment.analytics.request import APIError

from flywheel.ingest import service
from flywheel.runtime import Runtime
from tests.ingest.inbox import inbox, rejections
from tests.ingest.live_server import live_server


@pytest.fixture
def server(runtime: Runtime) -> Iterator[str]:
    with live_server(runtime) as url:
        yield url


@pytest.fixture
def write_key(runtime: Runtime) -> str:
    with runtime.db.unit_of_work() as session:
        return service.create_key(session=session, project_id=1, label="segment").key


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_official_client_every_call_maps_to_sensors_records(
    server: str, runtime: Runtime, write_key: str
) -> None:
    analytics = Client(write_key, host=server, sync_mode=True, max_retries=0)
    when = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    analytics.track(
        "cust-1",
        "Order Completed",
        {"amount": 99.5, "fund": {"code": "F001", "risk": "R3"}, "tags": [1, "a"]},
        timestamp=when,
        message_id="m-track",
    )
    analytics.identify(
        "cust-1", {"risk_tolerance": "C4", "city": "上海"}, anonymous_id="dev-9", message_id="m-id"
    )
    analytics.alias("dev-9", "cust-1", message_id="m-alias")
    analytics.page("cust-1", "Funds", "Fund list", {"url": "https://x.example/f"})
    analytics.screen("cust-1", "Trade", "BuyFund", {"fund": "F001"})
    analytics.group("cust-1", "branch-BR001", {"name": "Pudong", "size": 12})

    rows = inbox(runtime)
    assert {source for source, _ in rows} == {"segment"}
    records = [r for _, r in rows]
    assert [(r.type, r.event) for r in records] == [
        ("track", "Order_Completed"),
        ("profile_set", None),
        ("track_id_bind", "$BindID"),
        ("track_signup", "$SignUp"),
        ("track", "$pageview"),
        ("track", "$AppViewScreen"),
        ("profile_set", None),
    ]
    order, profile, bind, signup, page, screen, group = records
    assert order.event_id == "m-track" and order.time == when
    assert order.properties == {
        "amount": 99.5,
        "fund_code": "F001",
        "fund_risk": "R3",
        "tags": ["1", "a"],
    }
    assert order.lib["$lib"] == "analytics-python" and order.lib["$lib_version"]
    assert order.identities == {"$identity_login_id": "cust-1"}
    assert profile.properties == {"risk_tolerance": "C4", "city": "上海"}
    assert profile.event_id == "m-id" and bind.event_id == "m-id:bind"
    assert bind.identities == {
        "$identity_login_id": "cust-1",
        "$identity_anonymous_id": "dev-9",
    }
    assert (signup.distinct_id, signup.original_id, signup.event_id) == (
        "cust-1",
        "dev-9",
        "m-alias",
    )
    assert page.properties["$url"] == "https://x.example/f"
    assert page.properties["name"] == "Fund list" and page.properties["category"] == "Funds"
    assert screen.properties["$screen_name"] == "BuyFund"
    assert group.properties == {
        "group_id": "branch-BR001",
        "group_name": "Pudong",
        "group_size": 12,
    }


def test_batched_gzip_client_uploads_through_v1_batch(
    server: str, runtime: Runtime, write_key: str
) -> None:
    analytics = Client(write_key, host=server, gzip=True, upload_size=25, max_retries=0)
    for i in range(60):
        analytics.track(f"u{i}", "Login", {"login_method": "sms"})
    analytics.flush()
    analytics.shutdown()
    assert len(inbox(runtime)) == 60


def test_unknown_or_revoked_key_is_refused(server: str, runtime: Runtime, write_key: str) -> None:
    unknown = Client("fwk_unknown", host=server, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as refused:
        unknown.track("u1", "Login")
    assert refused.value.status == 401
    with runtime.db.unit_of_work() as session:
        service.revoke_key(session=session, prefix=write_key, now=datetime.now(UTC))
    revoked = Client(write_key, host=server, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as forbidden:
        revoked.track("u1", "Login")
    assert forbidden.value.status == 403
    assert inbox(runtime) == []


def test_missing_key_and_malformed_bodies(client: TestClient, write_key: str) -> None:
    missing = client.post("/v1/track", json={"userId": "u", "event": "E"})
    assert missing.status_code == 401
    assert missing.json()["message"].startswith("missing write key")
    bad_json = client.post("/v1/batch", content=b"{oops", headers=basic(write_key))
    assert bad_json.status_code == 400
    assert bad_json.json()["message"].startswith("request body is not valid JSON")
    no_batch = client.post("/v1/batch", json={"messages": []}, headers=basic(write_key))
    assert no_batch.json()["message"] == "/v1/batch needs a 'batch' array of messages"
    unknown_kind = client.post("/v1/explode", json={}, headers=basic(write_key))
    assert unknown_kind.status_code == 422


def test_bad_messages_are_rejected_alone(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    batch = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "Deposit", "properties": {"amount": 5}},
            {"type": "track", "event": "NoUser"},
            {"type": "fly", "userId": "u1"},
            {"type": "identify", "userId": "u1"},
            {"type": "track", "userId": "u1", "event": "E", "timestamp": "yesterday"},
            {"type": "alias", "userId": "u1"},
        ],
        "context": {"library": {"name": "analytics-node", "version": "1.0"}, "ip": "10.0.0.1"},
    }
    answer = client.post("/v1/batch", json=batch, headers=basic(write_key))
    assert answer.status_code == 200
    assert (answer.json()["accepted"], answer.json()["rejected"]) == (1, 5)
    [(_, record)] = inbox(runtime)
    assert record.lib["$lib"] == "analytics-node" and record.properties["$ip"] == "10.0.0.1"
    assert [k["reason"] for k in rejections(runtime)] == [
        "userId or anonymousId is required",
        "message type 'fly' is not one of alias, group, identify, page, screen, track",
        "identify needs traits, or both userId and anonymousId",
        "timestamp 'yesterday' is not an ISO 8601 timestamp",
        "previousId must not be empty",
    ]


def test_original_timestamp_is_corrected_by_sent_at(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    message = {
        "userId": "u1",
        "event": "Login",
        "originalTimestamp": "2026-11-01T10:00:00Z",
        "sentAt": "2026-11-01T10:05:00Z",
    }
    assert client.post("/v1/track", json=message, headers=basic(write_key)).status_code == 200
    [(_, record)] = inbox(runtime)
    received = runtime.clock()
    skew = received - datetime(2026, 11, 1, 10, 5, tzinfo=UTC)
    assert abs((record.time - (datetime(2026, 11, 1, 10, tzinfo=UTC) + skew)).total_seconds()) < 5


def test_single_message_endpoints_take_their_type_from_the_path(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    headers = basic(write_key)
    calls = [
        ("/v1/track", {"userId": "u1", "event": "Deposit", "properties": {"amount": 1}}),
        ("/v1/identify", {"anonymousId": "d1", "traits": {"city": "Shenzhen"}}),
        ("/v1/page", {"userId": "u1", "name": "Home", "properties": {"path": "/"}}),
        ("/v1/screen", {"userId": "u1", "name": "Trade"}),
        ("/v1/group", {"userId": "u1", "groupId": "g1"}),
        ("/v1/alias", {"userId": "u1", "previousId": "d1"}),
    ]
    for path, message in calls:
        answer = client.post(path, json=message, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["success"] is True and answer.json()["accepted"] == 1
    records = [r for _, r in inbox(runtime)]
    assert [(r.type, r.event) for r in records] == [
        ("track", "Deposit"),
        ("profile_set", None),
        ("track", "$pageview"),
        ("track", "$AppViewScreen"),
        ("profile_set", None),
        ("track_signup", "$SignUp"),
    ]
    assert records[1].distinct_id == "d1" and records[1].identities == {
        "$identity_anonymous_id": "d1"
    }
    assert records[2].properties["$url_path"] == "/" and records[2].properties["$title"] == "Home"
