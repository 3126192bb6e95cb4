"""One demo brokerage per test module: loading it is the slow part, applying playbooks is not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from flywheel.auth import service as auth_service
from flywheel.auth.schemas import Principal
from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.core.clock import FrozenClock
from flywheel.demo.service import load_demo
from flywheel.projects import service as projects
from flywheel.runtime import Runtime

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
DEMO_CUSTOMERS = 2000


@pytest.fixture(scope="module")
def demo_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = open_runtime(Settings(env="test", data_dir=tmp_path_factory.mktemp("demo")))
    runtime.clock = FrozenClock(NOW)
    with runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name="default").id
    load_demo(runtime, project_id=project_id, customers=DEMO_CUSTOMERS, days=90)
    yield runtime
    runtime.close()


def principal_of(runtime: Runtime, username: str, role: str) -> Principal:
    """A real console user of ``role`` and the principal the API would build for it."""
    with runtime.db.unit_of_work() as session:
        user_id = auth_service.create_user(
            session=session, username=username, password="correct-horse-42", role=role
        )
        permissions = auth_service.role_permissions(session=session, role=role) or frozenset()
    return Principal(user_id=user_id, username=username, role=role, permissions=permissions)
