from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flywheel.projects import service as projects
from flywheel.runtime import Runtime
from tests.analytics.dataset import Dataset, generate, load

#: "Now" of the analytics tests: 2026-11-02 10:00 in Shanghai.
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return generate()


@pytest.fixture
def project_id(runtime: Runtime) -> int:
    with runtime.db.unit_of_work() as session:
        return projects.get_by_name(session=session, name="default").id


@pytest.fixture
def loaded(runtime: Runtime, project_id: int, dataset: Dataset) -> Dataset:
    load(runtime.warehouse, project_id, dataset)
    return dataset
