"""Shared fixtures: a fresh runtime (SQLite + DuckDB under tmp_path), an API client, users.

Service suites (PostgreSQL, Redis, NATS) run when their URL is set in the environment
(``FLYWHEEL_TEST_POSTGRES_URL`` …) and are skipped with that reason otherwise; ``.ci/run`` sets
them and fails when a service is unreachable.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from flywheel.app import create_app
from flywheel.auth import service as auth_service
from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per test session; each test starts from a copy of it."""
    folder = tmp_path_factory.mktemp("template")
    runtime = open_runtime(Settings(env="test", data_dir=folder))
    runtime.close()
    return folder / "flywheel.db"


@pytest.fixture
def settings(tmp_path: Path, _template_db: Path) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(_template_db, data_dir / "flywheel.db")
    return Settings(env="test", data_dir=data_dir, processor_interval_seconds=0.02)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 2, 2, 0, tzinfo=UTC))


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = open_runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """The API without background loops (tests drive loops with ``run_once``)."""
    with TestClient(create_app(runtime=runtime, workers=False)) as test_client:
        yield test_client


PASSWORD = "correct-horse-42"


@pytest.fixture
def make_headers(runtime: Runtime, client: TestClient) -> Callable[..., dict[str, str]]:
    """``make_headers(role, branch_scope=None, advisor_id=None)`` → bearer headers of a new user."""
    counter = iter(range(1_000_000))

    def make(
        role: str, *, branch_scope: list[str] | None = None, advisor_id: str | None = None
    ) -> dict[str, str]:
        username = f"{role}{next(counter)}"
        with runtime.db.unit_of_work() as session:
            auth_service.create_user(
                session=session,
                username=username,
                password=PASSWORD,
                role=role,
                branch_scope=branch_scope,
                advisor_id=advisor_id,
            )
        answer = client.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    return make


@pytest.fixture
def admin_headers(make_headers: Callable[..., dict[str, str]]) -> dict[str, str]:
    return make_headers("admin")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    base = os.environ.get("FLYWHEEL_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("FLYWHEEL_TEST_POSTGRES_URL is not set: PostgreSQL suite skipped")
    name = f"flywheel_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_psycopg(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrises a store test over SQLite and (when configured) PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent: real-dataset tests skipped")
    return SHARED_DATA
