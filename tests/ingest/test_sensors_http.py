"""Sensors endpoints over HTTP: encodings, batches, one-by-one rejections, malformed requests."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flywheel.config import Settings
from flywheel.ingest import service
from flywheel.projects import service as projects
from flywheel.projects.schemas import ProjectIn
from flywheel.runtime import Runtime
from tests.ingest.inbox import inbox, rejections

T0 = 1_730_000_000_000


def track(distinct_id: str = "u1", event: str = "BuyFund", **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "distinct_id": distinct_id,
        "time": T0,
        "properties": {"amount": 100},
        **extra,
    }


def b64(records: Any, *, compress: bool) -> str:
    raw = json.dumps(records).encode()
    return base64.b64encode(gzip.compress(raw) if compress else raw).decode()


@pytest.mark.parametrize("compress", [True, False])
def test_data_list_batch_is_accepted_gzip_or_not(
    client: TestClient, runtime: Runtime, compress: bool
) -> None:
    records = [track(f"u{i}") for i in range(50)]
    answer = client.post(
        "/sa?project=default",
        data={"data_list": b64(records, compress=compress), "gzip": "1" if compress else "0"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 50, "rejected": 0, "errors": []}
    rows = inbox(runtime)
    assert [r.distinct_id for _, r in rows] == [f"u{i}" for i in range(50)]
    assert rows[0][1].time == datetime.fromtimestamp(T0 / 1000, UTC)


def test_single_data_field_and_json_body_and_raw_records(
    client: TestClient, runtime: Runtime
) -> None:
    assert (
        client.post("/sa", data={"data": b64(track("a"), compress=True), "gzip": "1"}).json()[
            "accepted"
        ]
        == 1
    )
    as_json = client.post("/sa", json={"data_list": b64([track("b")], compress=True), "gzip": 1})
    assert as_json.json()["accepted"] == 1
    raw = client.post("/sa?project=default", json=[track("c"), track("d")])
    assert raw.json()["accepted"] == 2
    beacon = client.post(
        "/sa",
        content=f"data={b64(track('e'), compress=False)}".encode(),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert beacon.json()["accepted"] == 1
    assert [r.distinct_id for _, r in inbox(runtime)] == ["a", "b", "c", "d", "e"]


def test_pixel_answers_a_gif_and_stores_the_record(client: TestClient, runtime: Runtime) -> None:
    answer = client.get(
        "/sa.gif", params={"data": b64(track("px"), compress=False), "project": "default"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    assert answer.content.startswith(b"GIF89a")
    gz = client.get("/sa.gif", params={"data": b64(track("px2"), compress=True), "gzip": "1"})
    assert gz.status_code == 200
    assert [r.distinct_id for _, r in inbox(runtime)] == ["px", "px2"]


def test_bad_records_are_rejected_alone_with_their_reason(
    client: TestClient, runtime: Runtime
) -> None:
    records = [
        track("good1"),
        track("bad1", event="has space"),
        {"type": "profile_increment", "distinct_id": "u", "time": T0, "properties": {"n": "x"}},
        track("good2"),
        {"type": "track", "event": "E", "time": T0},
        "not an object",
        track("bad3", properties={"big": "x" * 8193}),
        track("bad4", time=12345),
        {"type": "item_set", "item_type": "fund", "time": T0},
        {"type": "profile_append", "distinct_id": "u", "properties": {"tags": "x"}},
        track("bad5", properties={"nested": {"a": 1}}),
        track("bad6", properties={"time": 1}),
        track("bad7", properties={"list": ["a", 1]}),
        {"type": "explode", "distinct_id": "u"},
    ]
    answer = client.post("/sa", data={"data_list": b64(records, compress=True), "gzip": "1"})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, 12)
    assert [r.distinct_id for _, r in inbox(runtime)] == ["good1", "good2"]
    kept = rejections(runtime)
    assert len(kept) == 12 and {k["source"] for k in kept} == {"sensors"}
    reasons = [k["reason"] for k in kept]
    for expected in [
        "event name 'has space' is not a valid name",
        "profile_increment: property 'n' must be a number",
        "distinct_id (or identities) must not be empty",
        "a record must be a JSON object",
        "property 'big': string longer than 8192 characters",
        "time 12345 must be epoch seconds (10 digits) or milliseconds (13 digits)",
        "item_id must not be empty",
        "profile_append: property 'tags' must be a list of strings",
        "property 'nested': value must be",
        "property name 'time' is not a valid name",
        "property 'list': list items must be strings",
        "type 'explode' is not one of",
    ]:
        assert any(reason.startswith(expected) for reason in reasons), expected
    assert json.loads(kept[0]["raw"])["distinct_id"] == "bad1"
    assert body["errors"] == reasons


def test_rejected_raw_is_truncated_to_64_kib(client: TestClient, runtime: Runtime) -> None:
    huge = track("x", properties={f"p{i}": "y" * 8000 for i in range(10)} | {"bad": {"a": 1}})
    client.post("/sa", data={"data": b64(huge, compress=True)})
    [kept] = rejections(runtime)
    assert len(kept["raw"]) == 64 * 1024


def malformed_cases(settings: Settings) -> list[tuple[str, dict[str, Any], int, str]]:
    return [
        ("/sa", {"data": {"data": "%%%not base64%%%"}}, 400, "data is not valid base64"),
        (
            "/sa",
            {"data": {"data_list": base64.b64encode(b"\x1f\x8b\x08broken").decode()}},
            400,
            "data_list is not valid gzip",
        ),
        (
            "/sa",
            {"data": {"data": base64.b64encode(b"{nope").decode(), "gzip": "0"}},
            400,
            "data is not valid JSON",
        ),
        (
            "/sa",
            {"data": {"data": base64.b64encode(b"{nope").decode(), "gzip": "1"}},
            400,
            "data is declared gzip but is neither gzip nor JSON",
        ),
        ("/sa", {"data": {"other": "x"}}, 400, "missing form field 'data' or 'data_list'"),
        (
            "/sa",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "request body is not valid JSON",
        ),
        (
            "/sa",
            {"data": {"data": b64(42, compress=False)}},
            400,
            "data must hold a JSON object or an array of objects",
        ),
        (
            "/sa?project=nope",
            {"data": {"data": b64(track(), compress=True)}},
            404,
            "unknown project 'nope'",
        ),
        (
            "/sa",
            {"content": b"data=" + b"A" * settings.max_body_bytes},
            413,
            f"request body of {settings.max_body_bytes + 5} bytes exceeds",
        ),
        (
            "/sa",
            {
                "data": {
                    "data_list": b64(
                        [track()] * (settings.max_records_per_request + 1), compress=True
                    )
                }
            },
            413,
            f"{settings.max_records_per_request + 1} records in one request; at most",
        ),
        (
            "/sa",
            {
                "data": {
                    "data": base64.b64encode(
                        gzip.compress(b" " * (settings.max_body_bytes + 1))
                    ).decode()
                }
            },
            413,
            f"data decompresses to more than {settings.max_body_bytes} bytes",
        ),
        (
            "/sa?token=fwk_unknown",
            {"data": {"data": b64(track(), compress=True)}},
            401,
            "unknown ingest key",
        ),
        ("/sa.gif", {"method": "GET", "params": {"data": "???"}}, 400, "data is not valid base64"),
    ]


def test_each_malformed_request_gets_the_right_4xx_and_message(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    for path, kwargs, status, message in malformed_cases(settings):
        method = kwargs.pop("method", "POST")
        answer = client.request(method, path, **kwargs)
        assert answer.status_code == status, (path, answer.text)
        body = answer.json()
        assert set(body) >= {"error", "message"}
        assert body["message"].startswith(message), (body, message)
    assert inbox(runtime) == []


def test_body_limit_is_enforced_while_streaming_without_content_length(
    client: TestClient, settings: Settings
) -> None:
    def chunks() -> Any:
        for _ in range(settings.max_body_bytes // 4096 + 2):
            yield b"A" * 4096

    answer = client.post("/sa", content=chunks())
    assert answer.status_code == 413
    assert answer.json()["message"] == f"request body exceeds {settings.max_body_bytes} bytes"


def make_project(runtime: Runtime, name: str, *, require_token: bool = False) -> int:
    with runtime.db.unit_of_work() as session:
        return projects.create(
            session=session, project_in=ProjectIn(name=name, require_token=require_token)
        ).id


def new_key(runtime: Runtime, project_id: int) -> str:
    with runtime.db.unit_of_work() as session:
        return service.create_key(session=session, project_id=project_id).key


def test_project_comes_from_query_then_record(client: TestClient, runtime: Runtime) -> None:
    make_project(runtime, "retail")
    records = [track("q"), track("r", project="default"), track("s", project="ghost")]
    answer = client.post("/sa?project=retail", data={"data_list": b64(records, compress=True)})
    assert answer.json()["accepted"] == 2
    assert [(r.distinct_id, r.project) for _, r in inbox(runtime)] == [
        ("q", "retail"),
        ("r", "default"),
    ]
    assert rejections(runtime)[0]["reason"] == "unknown project 'ghost'"


def test_require_token_refuses_records_without_a_valid_key(
    client: TestClient, runtime: Runtime
) -> None:
    secure = make_project(runtime, "secure", require_token=True)
    other = make_project(runtime, "other")
    good = new_key(runtime, secure)
    foreign = new_key(runtime, other)
    records = [
        track("nokey"),
        track("good", properties={"$token": good}),
        track("top", token=good),
        track("foreign", properties={"$token": foreign}),
        track("unknown", properties={"$token": "fwk_nope"}),
    ]
    answer = client.post("/sa?project=secure", data={"data_list": b64(records, compress=True)})
    assert answer.json()["accepted"] == 2
    assert [r.distinct_id for _, r in inbox(runtime)] == ["good", "top"]
    assert [k["reason"] for k in rejections(runtime)] == [
        "project 'secure' requires a token ($token or token)",
        "token is not a key of project 'secure'",
        "token refused: unknown ingest key",
    ]
    # A request-level token for the project lets keyless records in.
    query = client.post(
        f"/sa?project=secure&token={good}", data={"data": b64(track("q"), compress=True)}
    )
    assert query.json()["accepted"] == 1
    wrong = client.post(
        f"/sa?project=secure&token={foreign}", data={"data": b64(track("q"), compress=True)}
    )
    assert wrong.status_code == 403
    assert wrong.json()["message"] == "ingest key does not belong to project 'secure'"
    with runtime.db.unit_of_work() as session:
        service.revoke_key(session=session, prefix=good[:12], now=datetime.now(UTC))
    revoked = client.post(
        f"/sa?project=secure&token={good}", data={"data": b64(track("q"), compress=True)}
    )
    assert revoked.status_code == 403
    assert revoked.json()["message"] == "ingest key has been revoked"


def test_debug_endpoint_answers_400_with_reason_and_dry_run_stores_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    bad = client.post("/debug", data={"data": b64(track(event="1bad"), compress=True)})
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("event name '1bad' is not a valid name")
    dry = client.post(
        "/debug", data={"data": b64(track("dry"), compress=True)}, headers={"Dry-Run": "true"}
    )
    assert dry.status_code == 200 and dry.json()["accepted"] == 1
    assert inbox(runtime) == []
    assert len(rejections(runtime)) == 1  # the non-dry-run bad record is kept


def test_track_id_gives_a_stable_event_id(client: TestClient, runtime: Runtime) -> None:
    record = track("u1", _track_id=987654321)
    for _ in range(2):
        client.post("/sa", data={"data": b64(record, compress=True)})
    client.post("/sa", data={"data_list": b64([track("u1"), track("u1")], compress=True)})
    ids = [r.event_id for _, r in inbox(runtime)]
    assert ids[0] == ids[1]
    assert len(set(ids)) == 3


def test_idm3_identities_and_options(client: TestClient, runtime: Runtime) -> None:
    records = [
        {
            "type": "track",
            "event": "$AppStart",
            "time": T0 // 1000,
            "identities": {"$identity_anonymous_id": "dev-1", "$identity_mobile": "138"},
            "anonymous_id": "dev-1",
            "properties": {"$os": "iOS"},
            "lib": {"$lib": "iOS", "$lib_version": "4.5"},
        },
        {
            "type": "track_signup",
            "event": "$SignUp",
            "distinct_id": "cust-1",
            "original_id": "dev-1",
            "login_id": "cust-1",
            "anonymous_id": "dev-1",
            "time": T0,
        },
        {
            "type": "profile_set",
            "identities": {"$identity_login_id": "cust-1", "$identity_email": "a@b.cn"},
            "properties": {"city": "Beijing"},
        },
        {
            "type": "track_id_bind",
            "event": "$BindID",
            "time": T0,
            "identities": {"$identity_login_id": "c"},
        },
    ]
    answer = client.post("/sa", data={"data_list": b64(records, compress=True)})
    assert answer.json()["accepted"] == 3
    rows = [r for _, r in inbox(runtime)]
    assert (rows[2].distinct_id, rows[2].login_id) == ("cust-1", "cust-1")
    assert rows[0].distinct_id == "$identity_anonymous_id+dev-1"
    assert rows[0].time == datetime.fromtimestamp(T0 / 1000, UTC)
    assert rows[0].lib == {"$lib": "iOS", "$lib_version": "4.5"}
    assert (rows[1].login_id, rows[1].original_id) == ("cust-1", "dev-1")
    assert rejections(runtime)[0]["reason"] == "track_id_bind needs at least two identities"


def test_browsers_may_post_from_any_origin(client: TestClient) -> None:
    preflight = client.options(
        "/sa", headers={"Origin": "https://broker.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://broker.example"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    plain = client.post("/sa", data={"data": b64(track(), compress=False)})
    assert plain.headers["access-control-allow-origin"] == "*"
