"""Users, custom roles, login, audit and its triggers on PostgreSQL (and SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import DatabaseError, InternalError

from flywheel.app import create_app
from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.runtime import Runtime
from tests.conftest import PASSWORD


@pytest.fixture
def any_runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(
        Settings(env="test", data_dir=tmp_path / "data", database_url=database_url)
    )
    yield runtime
    runtime.close()


def test_admin_flow_and_audit_on_each_store(any_runtime: Runtime) -> None:
    from flywheel.auth import service
    from flywheel.cli.users import CLI_ACTOR

    with any_runtime.db.unit_of_work() as session:
        service.create_user(
            session=session, username="root", password=PASSWORD, role="admin", actor=CLI_ACTOR
        )
    with TestClient(create_app(runtime=any_runtime, workers=False)) as client:
        token = client.post(
            "/api/v1/auth/login", json={"username": "root", "password": PASSWORD}
        ).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        assert (
            client.post(
                "/api/v1/admin/roles",
                json={"name": "reader", "permissions": ["projects:read"]},
                headers=admin,
            ).status_code
            == 201
        )
        made = client.post(
            "/api/v1/admin/users",
            json={"username": "rd", "password": PASSWORD, "role": "reader", "branch_scope": ["B1"]},
            headers=admin,
        )
        assert made.status_code == 201, made.text
        reader_token = client.post(
            "/api/v1/auth/login", json={"username": "rd", "password": PASSWORD}
        ).json()["access_token"]
        reader = {"Authorization": f"Bearer {reader_token}"}
        assert client.get("/api/v1/projects", headers=reader).status_code == 200
        assert client.get("/api/v1/audit", headers=reader).status_code == 403
        entries = client.get("/api/v1/audit", headers=admin).json()["entries"]
        assert [e["action"] for e in reversed(entries)] == [
            "user.create",
            "auth.login",
            "role.create",
            "user.create",
            "auth.login",
        ]
        assert client.get("/api/v1/audit/verify", headers=admin).json()["ok"] is True
    with pytest.raises((DatabaseError, InternalError)), any_runtime.db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_log")
