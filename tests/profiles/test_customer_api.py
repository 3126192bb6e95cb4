"""Customer lookup and events API: permissions, data scope, PII masking, tags."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import pyarrow as pa
from fastapi.testclient import TestClient

from flywheel.runtime import Runtime
from tests.identity.factory import apply, rec

Headers = Callable[..., dict[str, str]]
LOOKUP = "/api/v1/users/lookup"


def seed(runtime: Runtime) -> None:
    apply(
        runtime,
        rec(event="$AppStart", anonymous_id="dev-a"),
        rec("track_signup", event="$SignUp", distinct_id="alice", original_id="dev-a"),
        rec(
            "profile_set",
            login_id="alice",
            identities={"$identity_mobile": "13812345678", "fund_account": "F001"},
            properties={
                "name": "王小明",
                "mobile": "13812345678",
                "branch": "BR001",
                "advisor_id": "ADV1",
                "risk_tolerance": "C3",
            },
        ),
        rec(event="BuyFund", login_id="alice", properties={"amount": 500.0, "item_id": "F1"}),
        rec("profile_set", login_id="bob", properties={"branch": "BR002", "name": "李四"}),
    )


def test_lookup_masks_pii_and_shows_identities(
    runtime: Runtime, client: TestClient, make_headers: Headers
) -> None:
    seed(runtime)
    headers = make_headers("marketer")
    answer = client.get(
        LOOKUP, params={"key": "$identity_login_id", "value": "alice"}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["properties"]["name"] == "王**"
    assert body["properties"]["mobile"] == "138****5678"
    assert body["properties"]["risk_tolerance"] == "C3"
    assert body["identities"]["$identity_mobile"] == ["138****5678"]
    assert body["identities"]["$identity_anonymous_id"] == ["dev-a"]
    assert body["identities"]["fund_account"] == ["F001"]
    assert body["tags"] == {}
    # any identity finds the same customer
    by_fund = client.get(LOOKUP, params={"key": "fund_account", "value": "F001"}, headers=headers)
    assert by_fund.json()["user_id"] == body["user_id"]
    # reveal needs pii:view
    refused = client.get(
        LOOKUP,
        params={"key": "$identity_login_id", "value": "alice", "reveal": "true"},
        headers=headers,
    )
    assert refused.status_code == 403
    admin = make_headers("admin")
    clear = client.get(
        LOOKUP,
        params={"key": "$identity_login_id", "value": "alice", "reveal": "true"},
        headers=admin,
    ).json()
    assert clear["properties"]["name"] == "王小明"
    assert clear["identities"]["$identity_mobile"] == ["13812345678"]
    masked_for_admin = client.get(
        LOOKUP, params={"key": "$identity_login_id", "value": "alice"}, headers=admin
    ).json()
    assert masked_for_admin["properties"]["name"] == "王**"


def test_lookup_unknown_and_permissions(
    runtime: Runtime, client: TestClient, make_headers: Headers
) -> None:
    seed(runtime)
    params = {"key": "$identity_login_id", "value": "nobody"}
    missing = client.get(LOOKUP, params=params, headers=make_headers("analyst"))
    assert missing.status_code == 404
    assert "no customer" in missing.json()["message"]
    assert client.get(LOOKUP, params=params).status_code == 401
    assert client.get(LOOKUP, params=params, headers=make_headers("auditor")).status_code == 403


def test_data_scope_hides_other_branches(
    runtime: Runtime, client: TestClient, make_headers: Headers
) -> None:
    seed(runtime)
    branch_a = make_headers("advisor", branch_scope=["BR001"], advisor_id="ADV1")
    branch_b = make_headers("advisor", branch_scope=["BR002"], advisor_id="ADV1")
    other_advisor = make_headers("advisor", branch_scope=["BR001"], advisor_id="ADV2")
    marketer_b = make_headers("marketer", branch_scope=["BR002"])
    params = {"key": "$identity_login_id", "value": "alice"}
    seen = client.get(LOOKUP, params=params, headers=branch_a)
    assert seen.status_code == 200
    user_id = seen.json()["user_id"]
    for headers in (branch_b, other_advisor, marketer_b):
        assert client.get(LOOKUP, params=params, headers=headers).status_code == 404
        events = client.get(f"/api/v1/users/{user_id}/events", headers=headers)
        assert events.status_code == 404
    assert client.get(f"/api/v1/users/{user_id}/events", headers=branch_a).status_code == 200


def test_events_newest_first_with_limit(
    runtime: Runtime, client: TestClient, make_headers: Headers
) -> None:
    seed(runtime)
    headers = make_headers("analyst")
    user_id = client.get(
        LOOKUP, params={"key": "$identity_login_id", "value": "alice"}, headers=headers
    ).json()["user_id"]
    answer = client.get(
        f"/api/v1/users/{user_id}/events",
        params={"limit": 50, "project": "default"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    events = answer.json()["events"]
    # events sent before login are the same customer's
    assert [e["event"] for e in events] == ["BuyFund", "$SignUp", "$AppStart"]
    assert events[0]["properties"] == {"amount": 500.0, "item_id": "F1"}
    assert events[0]["time"].endswith("Z") or events[0]["time"].endswith("+00:00")
    two = client.get(f"/api/v1/users/{user_id}/events", params={"limit": 2}, headers=headers)
    assert len(two.json()["events"]) == 2
    assert client.get("/api/v1/users/999999/events", headers=headers).status_code == 404


def test_tags_are_the_latest_value_per_tag(
    runtime: Runtime, client: TestClient, make_headers: Headers
) -> None:
    seed(runtime)
    headers = make_headers("analyst")
    user_id = client.get(
        LOOKUP, params={"key": "$identity_login_id", "value": "alice"}, headers=headers
    ).json()["user_id"]
    cur = runtime.warehouse.cursor()
    cur.execute(
        'CREATE TABLE IF NOT EXISTS "p1_tag_values" (tag VARCHAR, user_id BIGINT, value VARCHAR,'
        " day DATE, computed_at TIMESTAMP)"
    )
    rows = pa.table(
        {
            "tag": ["rfm", "rfm", "activity"],
            "user_id": [user_id, user_id, user_id],
            "value": ["low", "high", "active"],
            "day": [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 2)],
            "computed_at": [datetime(2026, 11, 1), datetime(2026, 11, 2), datetime(2026, 11, 2)],
        }
    )
    cur.register("_tags", rows)
    cur.execute(
        'INSERT INTO "p1_tag_values" (tag, user_id, value, day, computed_at) '
        "SELECT tag, user_id, value, day, computed_at FROM _tags"
    )
    cur.unregister("_tags")
    body = client.get(
        LOOKUP, params={"key": "$identity_login_id", "value": "alice"}, headers=headers
    ).json()
    assert body["tags"] == {"activity": "active", "rfm": "high"}


def test_identity_api_keys_bind_unbind_conflicts(
    runtime: Runtime, client: TestClient, admin_headers: dict[str, str], make_headers: Headers
) -> None:
    keys = client.get("/api/v1/identity/keys", headers=make_headers("analyst")).json()["keys"]
    assert keys[0]["key"] == "$identity_login_id"
    custom = [
        {"key": "$identity_login_id", "priority": 1},
        {"key": "cust_no", "priority": 2},
        {"key": "$identity_mobile", "priority": 3, "multi": True, "value_limit": 2},
        {
            "key": "$identity_anonymous_id",
            "priority": 9,
            "multi": True,
            "value_limit": 50,
            "overflow": "replace_oldest",
        },
    ]
    assert (
        client.put(
            "/api/v1/identity/keys", json={"keys": custom}, headers=make_headers("analyst")
        ).status_code
        == 403
    )
    put = client.put("/api/v1/identity/keys", json={"keys": custom}, headers=admin_headers)
    assert put.status_code == 200, put.text
    assert [k["key"] for k in put.json()["keys"]][:2] == ["$identity_login_id", "cust_no"]
    writer = admin_headers
    bound = client.post(
        "/api/v1/identity/bind",
        json={"identities": {"$identity_login_id": "zed", "cust_no": "C77"}},
        headers=writer,
    ).json()
    assert bound["conflicts"] == []
    refused = client.post(
        "/api/v1/identity/bind",
        json={"identities": {"$identity_login_id": "zed", "cust_no": "C78"}},
        headers=writer,
    ).json()
    assert refused["user_id"] == bound["user_id"]
    assert "one value per user" in refused["conflicts"][0]
    conflicts = client.get("/api/v1/identity/conflicts", headers=writer).json()
    assert conflicts["total"] == 1 and conflicts["conflicts"][0]["key"] == "cust_no"
    unbind = client.post(
        "/api/v1/identity/unbind", json={"key": "cust_no", "value": "C77"}, headers=writer
    )
    assert unbind.json() == {"key": "cust_no", "user_id": bound["user_id"], "unbound": True}
    gone = client.get(LOOKUP, params={"key": "cust_no", "value": "C77"}, headers=writer)
    assert gone.status_code == 404
    again = client.post(
        "/api/v1/identity/unbind", json={"key": "cust_no", "value": "C77"}, headers=writer
    )
    assert again.status_code == 404
    assert (
        client.post(
            "/api/v1/identity/bind",
            json={"identities": {"cust_no": "C1"}},
            headers=make_headers("analyst"),
        ).status_code
        == 403
    )


def test_identity_keys_validation_and_masked_conflicts(
    runtime: Runtime, client: TestClient, admin_headers: dict[str, str]
) -> None:
    no_login = client.put(
        "/api/v1/identity/keys",
        json={"keys": [{"key": "cust_no", "priority": 1}]},
        headers=admin_headers,
    )
    assert no_login.status_code == 400
    assert "$identity_login_id" in no_login.json()["message"]
    bad_overflow = client.put(
        "/api/v1/identity/keys",
        json={"keys": [{"key": "$identity_login_id", "priority": 1, "overflow": "drop"}]},
        headers=admin_headers,
    )
    assert bad_overflow.status_code == 422
    # two customers claim one mobile (many-value key, but one owner per value)
    apply(
        runtime,
        rec(identities={"$identity_login_id": "m1", "$identity_mobile": "13711112222"}),
        rec(identities={"$identity_login_id": "m2", "$identity_mobile": "13711112222"}),
    )
    (conflict,) = client.get("/api/v1/identity/conflicts", headers=admin_headers).json()[
        "conflicts"
    ]
    assert conflict["key"] == "$identity_mobile"
    assert conflict["value"] == "137****2222"
    assert conflict["occurrences"] == 1


def test_item_api(runtime: Runtime, client: TestClient, make_headers: Headers) -> None:
    apply(runtime, rec("item_set", item_type="fund", item_id="F9", properties={"risk_level": "R5"}))
    headers = make_headers("marketer")
    item = client.get("/api/v1/items/fund/F9", headers=headers)
    assert item.json() == {"item_type": "fund", "item_id": "F9", "properties": {"risk_level": "R5"}}
    assert client.get("/api/v1/items/fund/F0", headers=headers).status_code == 404
