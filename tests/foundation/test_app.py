from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import PASSWORD


def test_healthz_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "python_info" in metrics.text
    assert metrics.headers["x-content-type-options"] == "nosniff"


def test_login_and_me(client: TestClient, make_headers: Callable[..., dict[str, str]]) -> None:
    headers = make_headers("analyst")
    me = client.get("/api/v1/auth/me", headers=headers).json()
    assert me["role"] == "analyst"
    assert "analytics:read" in me["permissions"]


def test_protected_route_needs_token_and_permission(
    client: TestClient, make_headers: Callable[..., dict[str, str]]
) -> None:
    assert client.get("/api/v1/projects").status_code == 401
    auditor = make_headers("auditor")
    assert client.get("/api/v1/projects", headers=auditor).status_code == 200
    refused = client.post("/api/v1/projects", json={"name": "x"}, headers=auditor)
    assert refused.status_code == 403
    assert "projects:admin" in refused.json()["message"]


def test_lockout_after_repeated_failures(
    client: TestClient, make_headers: Callable[..., dict[str, str]]
) -> None:
    make_headers("marketer")  # creates marketer0
    for _ in range(5):
        wrong = client.post("/api/v1/auth/login", json={"username": "marketer0", "password": "x"})
        assert wrong.status_code == 401
    right = client.post("/api/v1/auth/login", json={"username": "marketer0", "password": PASSWORD})
    assert right.status_code == 401
    assert "locked" in right.json()["message"]
