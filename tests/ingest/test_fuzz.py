"""Fuzzing the decoders and validators: any input gives records or a clear FlywheelError."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.core.errors import FlywheelError
from flywheel.ingest import segment
from flywheel.ingest.records import IngestRecord
from flywheel.ingest.sensors import decode_fields, decode_post
from flywheel.ingest.validation import RecordRejected, validate_record

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
MAX = 1 << 20

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
names = st.sampled_from(["BuyFund", "$AppStart", "time", "a b", "", "x" * 101, "user_tag1", "ok_1"])
near_records = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            [
                "track",
                "track_signup",
                "track_id_bind",
                "track_id_unbind",
                "profile_set",
                "profile_increment",
                "profile_append",
                "profile_unset",
                "profile_delete",
                "item_set",
                "item_delete",
                "bogus",
            ]
        )
        | json_values,
        "event": names | json_values,
        "distinct_id": st.text(max_size=300) | json_values,
        "original_id": st.text(max_size=10) | json_values,
        "time": st.integers(min_value=0, max_value=10**14) | json_values,
        "project": st.sampled_from(["default", "Bad-Name", ""]) | json_values,
        "token": json_values,
        "_track_id": json_values,
        "identities": st.dictionaries(names, st.text(max_size=5) | json_values, max_size=3)
        | json_values,
        "properties": st.dictionaries(names | st.text(max_size=8), json_values, max_size=5)
        | json_values,
        "item_type": names | json_values,
        "item_id": json_values,
        "lib": json_values,
        "login_id": json_values,
        "anonymous_id": json_values,
    },
)


def check_record(record: IngestRecord) -> None:
    assert record.time.tzinfo is not None
    again = IngestRecord.from_json(record.to_json())
    assert again.event_id == record.event_id and again.type == record.type


@given(raw=near_records | json_values)
@settings(max_examples=400, deadline=None)
def test_validate_record_accepts_or_rejects_with_reason(raw: Any) -> None:
    try:
        checked = validate_record(raw, project="default", now=NOW)
    except RecordRejected as exc:
        assert exc.message
        return
    check_record(checked.record)


@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["", "application/json", "application/x-www-form-urlencoded", "text/plain"]
    ),
)
@settings(max_examples=300, deadline=None)
def test_decode_post_on_arbitrary_bytes(body: bytes, content_type: str) -> None:
    try:
        decode_post(body, content_type, {}, max_bytes=MAX)
    except FlywheelError as exc:
        assert exc.message and 400 <= exc.status < 500


@given(
    payload=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
    compress=st.booleans(),
    gzip_flag=st.sampled_from(["0", "1", "9", "", "yes"]),
    field=st.sampled_from(["data", "data_list"]),
    mangle=st.sampled_from(["none", "urlsafe", "strip", "spaces", "junk"]),
)
@settings(max_examples=300, deadline=None)
def test_decode_fields_on_arbitrary_payloads(
    payload: bytes, compress: bool, gzip_flag: str, field: str, mangle: str
) -> None:
    encoded = base64.b64encode(gzip.compress(payload) if compress else payload).decode()
    encoded = {
        "none": encoded,
        "urlsafe": encoded.replace("+", "-").replace("/", "_"),
        "strip": encoded.rstrip("="),
        "spaces": encoded.replace("+", " "),
        "junk": encoded[: len(encoded) // 2] + "*",
    }[mangle]
    try:
        decoded = decode_fields({field: encoded, "gzip": gzip_flag}, max_bytes=MAX)
    except FlywheelError as exc:
        assert exc.message and 400 <= exc.status < 500
        return
    for raw in decoded.records:
        with contextlib.suppress(RecordRejected):
            check_record(validate_record(raw, project="default", now=NOW).record)


segment_messages = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "identify", "alias", "page", "screen", "group", "x"])
        | json_values,
        "userId": st.text(max_size=10) | json_values,
        "anonymousId": st.text(max_size=10) | json_values,
        "previousId": json_values,
        "groupId": json_values,
        "event": st.text(max_size=20) | json_values,
        "name": json_values,
        "category": json_values,
        "properties": st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values,
        "traits": st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values,
        "context": json_values,
        "timestamp": st.sampled_from(["2026-11-01T00:00:00Z", "bad", "9999-12-31T23:59:59-23:00"])
        | json_values,
        "originalTimestamp": st.sampled_from(["0001-01-01T00:00:00+14:00", "2026-01-01"])
        | json_values,
        "sentAt": st.sampled_from(["9999-12-31T23:59:59Z", "2026-01-01T00:00:00Z"]) | json_values,
        "messageId": json_values,
    },
)


@given(message=segment_messages | json_values, kind=st.sampled_from([None, "track", "identify"]))
@settings(max_examples=400, deadline=None)
def test_segment_mapping_accepts_or_rejects_with_reason(message: Any, kind: str | None) -> None:
    try:
        records = segment.map_message(message, kind=kind, project="default", now=NOW)
    except RecordRejected as exc:
        assert exc.message
        return
    for record in records:
        check_record(record)


@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
@settings(max_examples=200, deadline=None)
def test_segment_body_decoding(body: bytes) -> None:
    try:
        segment.decode_body(body, kind="batch")
    except FlywheelError as exc:
        assert exc.message and exc.status == 400


@given(
    body=st.binary(max_size=200)
    | st.lists(near_records, max_size=3).map(
        lambda rs: b"data_list=" + base64.b64encode(gzip.compress(json.dumps(rs).encode()))
    ),
    path=st.sampled_from(["/sa", "/debug", "/sa?project=default", "/sa?project=%00"]),
)
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_http_never_answers_5xx(client: TestClient, body: bytes, path: str) -> None:
    answer = client.post(path, content=body)
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert {"error", "message"} <= set(answer.json())


@given(
    query=st.dictionaries(
        st.sampled_from(["data", "gzip", "project", "token", "x"]), st.text(max_size=40), max_size=4
    )
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_pixel_never_answers_5xx(client: TestClient, query: dict[str, str]) -> None:
    answer = client.get("/sa.gif", params=query)
    assert answer.status_code < 500, answer.text
    if answer.status_code == 200:
        assert answer.headers["content-type"] == "image/gif"
    else:
        assert {"error", "message"} <= set(answer.json())
