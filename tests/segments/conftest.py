"""Fixtures of the segment tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.rules.brokerage import NOW, load
from tests.segments.helpers import P


@pytest.fixture(params=["sqlite", "postgres"])
def brokerage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """The seeded brokerage on SQLite or PostgreSQL (DuckDB warehouse on both)."""
    if request.param == "sqlite":
        runtime: Runtime = request.getfixturevalue("runtime")
    else:
        url: str = request.getfixturevalue("postgres_url")
        runtime = open_runtime(Settings(env="test", data_dir=tmp_path / "pg", database_url=url))
    runtime.clock = FrozenClock(NOW)  # type: ignore[misc]
    load(runtime.warehouse, project_id=P)
    yield runtime
    if request.param == "postgres":
        runtime.close()
