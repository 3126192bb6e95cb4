"""Scope leaks: an advisor of branch A never sees branch B's customers, through any endpoint.

Customers of both branches arrive through the real ingest path (POST /sa, then the ingest
processor); then every GET route under /api/v1 the advisor may call is walked with branch B's
identifiers filled into its path and query parameters, and no answer may carry anything of
branch B's customer. New routes other engineers add are walked too.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from flywheel.auth.deps import AUTHENTICATED, required_permissions
from flywheel.auth.permissions import ROLES
from flywheel.runtime import Runtime
from tests.security.helpers import token_for

T0 = 1_730_000_000_000
#: What only branch B's customer carries (its identifiers are sent as input, so answers may
#: echo them in a "not found" message; these values never are).
B_MARKERS = ("ADV_B_SECRET", "B-city-secret", "13900009999", "139****9999")


def _profile(login: str, branch: str, advisor: str, city: str, mobile: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "profile_set",
            "distinct_id": login,
            "identities": {"$identity_login_id": login, "$identity_mobile": mobile},
            "time": T0,
            "properties": {
                "name": "客户" + login[-2:],
                "mobile": mobile,
                "branch": branch,
                "advisor_id": advisor,
                "city": city,
            },
        },
        {
            "type": "track",
            "event": "Search",
            "distinct_id": login,
            "identities": {"$identity_login_id": login},
            "time": T0 + 1000,
            "properties": {"keyword": f"kw-{city}"},
        },
    ]


def _seed(client: TestClient, runtime: Runtime) -> None:
    from flywheel.ingest.tasks import IngestProcessor

    records = (
        _profile("cust-a1", "BRA", "ADV_A", "A-city", "13800001111")
        + _profile("cust-a2", "BRA", "ADV_A2", "A-city-2", "13800002222")
        + _profile("zz-secret-b", "BRB", "ADV_B_SECRET", "B-city-secret", "13900009999")
    )
    answer = client.post("/sa?project=default", json=records)
    assert answer.status_code == 200 and answer.json()["accepted"] == len(records), answer.text
    processor = IngestProcessor(runtime)
    while processor.run_once():
        pass


def _user_id(client: TestClient, headers: dict[str, str], login: str) -> int:
    found = client.get(
        "/api/v1/users/lookup",
        params={"key": "$identity_login_id", "value": login},
        headers=headers,
    )
    assert found.status_code == 200, found.text
    return int(found.json()["user_id"])


def test_advisor_of_branch_a_never_sees_branch_b(client: TestClient, runtime: Runtime) -> None:
    _seed(client, runtime)
    admin = token_for(runtime, "scope_admin", "admin")
    advisor = token_for(runtime, "adv_a", "advisor", branch_scope=["BRA"], advisor_id="ADV_A")
    manager = token_for(runtime, "mgr_a", "analyst", branch_scope=["BRA"])
    uid = {login: _user_id(client, admin, login) for login in ("cust-a1", "cust-a2", "zz-secret-b")}

    def lookup(headers: dict[str, str], login: str) -> int:
        return client.get(
            "/api/v1/users/lookup",
            params={"key": "$identity_login_id", "value": login},
            headers=headers,
        ).status_code

    assert lookup(advisor, "cust-a1") == 200
    assert lookup(advisor, "cust-a2") == 404  # same branch, another advisor's customer
    assert lookup(advisor, "zz-secret-b") == 404
    assert lookup(manager, "cust-a2") == 200
    assert lookup(manager, "zz-secret-b") == 404
    for path in (
        f"/api/v1/users/{uid['zz-secret-b']}",
        f"/api/v1/users/{uid['zz-secret-b']}/events",
    ):
        assert client.get(path, headers=advisor).status_code == 404
        assert client.get(path, headers=manager).status_code == 404
    # Branch B by other identity keys (its mobile) is not found either.
    by_mobile = client.get(
        "/api/v1/users/lookup",
        params={"key": "$identity_mobile", "value": "13900009999"},
        headers=advisor,
    )
    assert by_mobile.status_code == 404

    # Segment counts, members and exports (when the segments API is present).
    segment_id = _segment_of_everyone(client, admin, sorted(uid.values()))
    if segment_id is not None:
        _check_segment_scope(client, runtime, segment_id, uid)

    walked = _walk_get_routes(client, advisor, "advisor", uid["zz-secret-b"], segment_id)
    walked += _walk_get_routes(client, manager, "analyst", uid["zz-secret-b"], segment_id)
    assert walked >= 4


def _segment_of_everyone(
    client: TestClient, admin: dict[str, str], user_ids: list[int]
) -> int | None:
    made = client.post(
        "/api/v1/segments",
        json={"name": "everyone", "source": "analysis", "mode": "static", "user_ids": user_ids},
        headers=admin,
    )
    if made.status_code == 404:
        return None
    assert made.status_code == 201, made.text
    segment_id = int(made.json()["id"])
    total = client.get(f"/api/v1/segments/{segment_id}/count", headers=admin)
    assert total.status_code == 200 and total.json()["count"] == 3, total.text
    return segment_id


def _check_segment_scope(
    client: TestClient, runtime: Runtime, segment_id: int, uid: dict[str, int]
) -> None:
    with runtime.db.unit_of_work() as session:
        from flywheel.auth import service as auth_service
        from flywheel.auth.permissions import ALL
        from flywheel.auth.schemas import Principal, RoleIn

        auth_service.create_role(
            session=session,
            principal=Principal(user_id=0, username="setup", role="admin", permissions=ALL),
            role_in=RoleIn(
                name="branch_exporter",
                permissions=["segments:read", "users:export", "customers:read"],
            ),
            now=runtime.clock(),
        )
    manager = token_for(runtime, "mgr_seg", "analyst", branch_scope=["BRA"])
    exporter = token_for(runtime, "exp_a", "branch_exporter", branch_scope=["BRA"])
    count = client.get(f"/api/v1/segments/{segment_id}/count", headers=manager)
    assert count.json()["count"] == 2, count.text
    members = client.get(f"/api/v1/segments/{segment_id}/members", headers=manager).json()
    assert sorted(members["user_ids"]) == sorted([uid["cust-a1"], uid["cust-a2"]])
    export = client.get(
        f"/api/v1/segments/{segment_id}/export",
        params={"columns": ["branch", "advisor_id", "city", "mobile"]},
        headers=exporter,
    )
    assert export.status_code == 200, export.text
    rows = [line.split(",")[0] for line in export.text.strip().splitlines()[1:]]
    assert sorted(rows) == sorted(str(uid[k]) for k in ("cust-a1", "cust-a2"))
    for marker in B_MARKERS:
        assert marker not in export.text


def _walk_get_routes(
    client: TestClient,
    headers: dict[str, str],
    role: str,
    b_user_id: int,
    segment_id: int | None,
) -> int:
    """Call every GET route the role may use, aimed at branch B; no answer may show B."""
    permissions = ROLES[role] | {AUTHENTICATED}
    walked = 0
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if not isinstance(route.original_route, APIRoute) or not route.path.startswith("/api/v1"):
            continue
        if "GET" not in (route.methods or ()):
            continue
        needed = required_permissions(route.dependant)
        if not needed or not needed <= permissions:
            continue
        path = re.sub(r"\{user_id\}", str(b_user_id), route.path)
        path = re.sub(r"\{segment_id\}", str(segment_id or 1), path)
        path = re.sub(r"\{[^}]+\}", "zz-secret-b", path)
        params = {
            "key": "$identity_login_id",
            "value": "zz-secret-b",
            "distinct_id": "zz-secret-b",
            "user_id": str(b_user_id),
            "q": "zz-secret-b",
        }
        answer = client.get(path, params=params, headers=headers)
        walked += 1
        for marker in B_MARKERS:
            assert marker not in answer.text, f"{route.path} leaked {marker!r} to {role}"
    return walked
