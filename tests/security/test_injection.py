"""SQL-injection and mass-assignment attempts are rejected, never executed."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from flywheel.auth.schemas import Principal
from flywheel.auth.scope import scope_predicate
from flywheel.core.errors import InvalidInput
from flywheel.runtime import Runtime
from flywheel.warehouse.engine import quote_ident
from tests.security.helpers import token_for

PAYLOADS = [
    "' OR '1'='1",
    "admin'--",
    "x'; DROP TABLE console_users; --",
    '" OR 1=1 --',
    "1; DELETE FROM audit_log",
    "') UNION SELECT password_hash FROM console_users --",
]


def _tables_intact(runtime: Runtime) -> None:
    with runtime.db.engine.connect() as conn:
        for table in ("console_users", "access_tokens", "audit_log", "projects"):
            conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_login_with_injected_username(client: TestClient, runtime: Runtime, payload: str) -> None:
    token_for(runtime, "admin", "admin")
    answer = client.post("/api/v1/auth/login", json={"username": payload, "password": payload})
    assert answer.status_code == 401
    _tables_intact(runtime)


def test_injection_in_query_parameters(client: TestClient, runtime: Runtime) -> None:
    admin = token_for(runtime, "root", "admin")
    for payload in PAYLOADS:
        audit = client.get(
            "/api/v1/audit", params={"actor": payload, "target": payload}, headers=admin
        )
        assert audit.status_code == 200 and audit.json()["entries"] == []
        bad_number = client.get("/api/v1/audit", params={"project_id": payload}, headers=admin)
        assert bad_number.status_code == 422
        lookup = client.get(
            "/api/v1/users/lookup",
            params={"key": "$identity_login_id", "value": payload},
            headers=admin,
        )
        assert lookup.status_code in (400, 404, 422), lookup.text
        weird_key = client.get(
            "/api/v1/users/lookup", params={"key": payload, "value": "x"}, headers=admin
        )
        assert weird_key.status_code in (400, 404, 422), weird_key.text
        path = client.get(f"/api/v1/admin/users/{payload}", headers=admin)
        assert path.status_code in (404, 422)
    _tables_intact(runtime)
    assert len(client.get("/api/v1/admin/users", headers=admin).json()) == 1


def test_injection_in_names_is_refused(client: TestClient, runtime: Runtime) -> None:
    admin = token_for(runtime, "root", "admin")
    for payload in PAYLOADS:
        user = client.post(
            "/api/v1/admin/users",
            json={"username": payload, "password": "correct-horse-42", "role": "analyst"},
            headers=admin,
        )
        assert user.status_code == 422
        role = client.post(
            "/api/v1/admin/roles", json={"name": payload, "permissions": []}, headers=admin
        )
        assert role.status_code == 422
        as_role = client.post(
            "/api/v1/admin/users",
            json={"username": "someone", "password": "correct-horse-42", "role": payload},
            headers=admin,
        )
        assert as_role.status_code == 422
    _tables_intact(runtime)


@pytest.mark.parametrize("name", ['branch" OR 1=1 --', "a; DROP TABLE p1_users", "x)", "", "名字"])
def test_property_names_are_validated_before_quoting(name: str) -> None:
    with pytest.raises(InvalidInput):
        quote_ident(name)


def test_injected_property_name_in_ingest_is_rejected(client: TestClient, runtime: Runtime) -> None:
    record = {
        "type": "profile_set",
        "distinct_id": "u1",
        "time": 1_730_000_000_000,
        "properties": {'x" VARCHAR); DROP TABLE p1_users; --': "v"},
    }
    answer = client.post("/sa?project=default", json=[record])
    assert answer.status_code in (200, 400), answer.text
    assert answer.json().get("accepted", 0) == 0
    runtime.warehouse.ensure_project(1)
    assert runtime.warehouse.fetch('SELECT COUNT(*) FROM "p1_users"') == [(0,)]


def test_scope_values_are_bound_not_spliced(runtime: Runtime) -> None:
    warehouse = runtime.warehouse
    warehouse.ensure_project(1)
    cur = warehouse.cursor()
    cur.execute('ALTER TABLE "p1_users" ADD COLUMN IF NOT EXISTS "branch" VARCHAR')
    cur.execute('ALTER TABLE "p1_users" ADD COLUMN IF NOT EXISTS "advisor_id" VARCHAR')
    cur.execute(
        'INSERT INTO "p1_users" (user_id, "$update_time", branch, advisor_id) VALUES '
        "(1, now(), 'BRA', 'ADV1'), (2, now(), 'BRB', 'ADV2')"
    )
    for payload in PAYLOADS:
        principal = Principal(
            user_id=1,
            username="x",
            role="advisor",
            permissions=frozenset(),
            branch_scope=(payload,),
            advisor_id=payload,
        )
        predicate, params = scope_predicate(principal)
        assert payload not in predicate
        rows = warehouse.fetch(f'SELECT user_id FROM "p1_users" u WHERE {predicate}', params)
        assert rows == []
    scoped = Principal(
        user_id=1, username="x", role="analyst", permissions=frozenset(), branch_scope=("BRA",)
    )
    predicate, params = scope_predicate(scoped)
    assert warehouse.fetch(f'SELECT user_id FROM "p1_users" u WHERE {predicate}', params) == [(1,)]


def test_mass_assignment_on_login_and_self_service(client: TestClient, runtime: Runtime) -> None:
    token_for(runtime, "mia", "marketer")
    answer = client.post(
        "/api/v1/auth/login",
        json={"username": "mia", "password": "correct-horse-42", "role": "admin"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "extra_forbidden"
