"""Users and roles administration: custom roles, scopes, mass assignment, self-changes, SoD."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from flywheel.auth import service as auth_service
from flywheel.auth.schemas import Principal
from flywheel.runtime import Runtime
from tests.conftest import PASSWORD


def _login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    answer = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_custom_role_grants_exactly_its_permissions(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    role = client.post(
        "/api/v1/admin/roles",
        json={"name": "exporter", "permissions": ["projects:read", "users:export"]},
        headers=admin_headers,
    )
    assert role.status_code == 201, role.text
    user = client.post(
        "/api/v1/admin/users",
        json={"username": "ed", "password": PASSWORD, "role": "exporter"},
        headers=admin_headers,
    )
    assert user.status_code == 201, user.text
    ed = _login(client, "ed")
    assert sorted(client.get("/api/v1/auth/me", headers=ed).json()["permissions"]) == [
        "projects:read",
        "users:export",
    ]
    assert client.get("/api/v1/projects", headers=ed).status_code == 200
    # Narrowing the role applies on the next request.
    narrowed = client.patch(
        "/api/v1/admin/roles/exporter",
        json={"permissions": ["users:export"]},
        headers=admin_headers,
    )
    assert narrowed.status_code == 200
    assert client.get("/api/v1/projects", headers=ed).status_code == 403
    # A role in use cannot be deleted; built-in roles cannot be changed.
    assert client.delete("/api/v1/admin/roles/exporter", headers=admin_headers).status_code == 409
    assert (
        client.patch(
            "/api/v1/admin/roles/admin", json={"permissions": []}, headers=admin_headers
        ).status_code
        == 403
    )


def test_unknown_permissions_and_roles_are_refused(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    bad = client.post(
        "/api/v1/admin/roles",
        json={"name": "bad", "permissions": ["segments:write", "everything:*"]},
        headers=admin_headers,
    )
    assert bad.status_code == 400 and "everything:*" in bad.json()["message"]
    clash = client.post(
        "/api/v1/admin/roles", json={"name": "admin", "permissions": []}, headers=admin_headers
    )
    assert clash.status_code == 409
    nobody = client.post(
        "/api/v1/admin/users",
        json={"username": "x1", "password": PASSWORD, "role": "superuser"},
        headers=admin_headers,
    )
    assert nobody.status_code == 400


@pytest.mark.parametrize(
    "extra",
    [
        {"is_active": False},
        {"failed_logins": 0},
        {"password_hash": "$argon2id$forged"},
        {"permissions": ["admin:users"]},
        {"id": 1},
    ],
)
def test_mass_assignment_on_user_creation_is_rejected(
    client: TestClient, admin_headers: dict[str, str], extra: dict[str, object]
) -> None:
    answer = client.post(
        "/api/v1/admin/users",
        json={"username": "mass", "password": PASSWORD, "role": "analyst", **extra},
        headers=admin_headers,
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "extra_forbidden"


def test_nobody_changes_their_own_role_or_scope(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    me = client.get("/api/v1/auth/me", headers=admin_headers).json()
    users = client.get("/api/v1/admin/users", headers=admin_headers).json()
    my_id = next(u["id"] for u in users if u["username"] == me["username"])
    for change in ({"role": "auditor"}, {"branch_scope": ["BR001"]}, {"is_active": False}):
        refused = client.patch(f"/api/v1/admin/users/{my_id}", json=change, headers=admin_headers)
        assert refused.status_code == 403, change
    renamed = client.patch(
        f"/api/v1/admin/users/{my_id}", json={"display_name": "Boss"}, headers=admin_headers
    )
    assert renamed.status_code == 200
    # A marketer cannot reach the admin API at all, so cannot grant themselves a role.
    marketer = _login_new(client, runtime, "mk", "marketer")
    assert (
        client.patch(
            f"/api/v1/admin/users/{my_id + 1}", json={"role": "admin"}, headers=marketer
        ).status_code
        == 403
    )
    # Nor smuggle a role into self-service endpoints.
    sneaky = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "x-horse-123456", "role": "admin"},
        headers=marketer,
    )
    assert sneaky.status_code == 422


def _login_new(client: TestClient, runtime: Runtime, username: str, role: str) -> dict[str, str]:
    with runtime.db.unit_of_work() as session:
        auth_service.create_user(session=session, username=username, password=PASSWORD, role=role)
    return _login(client, username)


def test_admin_updates_scope_deactivates_and_resets(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    advisor = client.post(
        "/api/v1/admin/users",
        json={
            "username": "adv",
            "password": PASSWORD,
            "role": "advisor",
            "branch_scope": ["BR001"],
            "advisor_id": "ADV0001",
        },
        headers=admin_headers,
    ).json()
    adv = _login(client, "adv")
    me = client.get("/api/v1/auth/me", headers=adv).json()
    assert me["branch_scope"] == ["BR001"] and me["advisor_id"] == "ADV0001"
    moved = client.patch(
        f"/api/v1/admin/users/{advisor['id']}",
        json={"branch_scope": ["BR002", "BR003"]},
        headers=admin_headers,
    )
    assert moved.json()["branch_scope"] == ["BR002", "BR003"]
    assert client.get("/api/v1/auth/me", headers=adv).json()["branch_scope"] == ["BR002", "BR003"]
    injected = client.patch(
        f"/api/v1/admin/users/{advisor['id']}",
        json={"branch_scope": ["BR001' OR '1'='1"]},
        headers=admin_headers,
    )
    assert injected.status_code == 400
    off = client.patch(
        f"/api/v1/admin/users/{advisor['id']}", json={"is_active": False}, headers=admin_headers
    )
    assert off.status_code == 200
    assert client.get("/api/v1/auth/me", headers=adv).status_code == 401
    client.patch(
        f"/api/v1/admin/users/{advisor['id']}", json={"is_active": True}, headers=admin_headers
    )
    reset = client.post(
        f"/api/v1/admin/users/{advisor['id']}/password",
        json={"new_password": "fresh-start-2026"},
        headers=admin_headers,
    )
    assert reset.status_code == 204
    assert (
        client.post(
            "/api/v1/auth/login", json={"username": "adv", "password": PASSWORD}
        ).status_code
        == 401
    )
    _login(client, "adv", "fresh-start-2026")
    audit = client.get(
        "/api/v1/audit", params={"target": f"console_user:{advisor['id']}"}, headers=admin_headers
    ).json()["entries"]
    actions = [e["action"] for e in reversed(audit)]
    assert actions[:1] == ["user.create"]
    assert actions.count("user.update") == 3 and "user.password_reset" in actions
    scope_change = next(e for e in audit if e["detail"].get("after", {}).get("branch_scope"))
    assert scope_change["detail"]["before"] == {"branch_scope": ["BR001"]}


def test_advisor_without_advisor_id_sees_no_customer(
    client: TestClient, make_headers: Callable[..., dict[str, str]]
) -> None:
    me = client.get("/api/v1/auth/me", headers=make_headers("advisor")).json()
    assert me["branch_scope"] == []


def test_password_policy() -> None:
    from flywheel.core.errors import InvalidInput

    for weak in ("short1", "onlyletters", "1234567890123", "mia-is-great-2026"):
        with pytest.raises(InvalidInput):
            auth_service.check_password_policy(weak, username="mia")
    auth_service.check_password_policy("correct-horse-42", username="mia")


def test_separation_of_duties() -> None:
    author = Principal(user_id=7, username="a", role="marketer", permissions=frozenset())
    reviewer = Principal(user_id=8, username="r", role="compliance", permissions=frozenset())
    with pytest.raises(auth_service.SeparationOfDuties) as refused:
        auth_service.ensure_not_author(author, 7)
    assert refused.value.status == 403
    auth_service.ensure_not_author(reviewer, 7)
    auth_service.ensure_not_author(reviewer, None)


def test_production_password_hashing_is_argon2id_with_strong_parameters() -> None:
    from argon2 import PasswordHasher

    hasher = PasswordHasher()  # what flywheel.auth.service uses outside these suites
    encoded = hasher.hash(PASSWORD)
    assert encoded.startswith("$argon2id$")
    assert "m=65536,t=3,p=4" in encoded
    assert type(auth_service._hasher) is PasswordHasher
