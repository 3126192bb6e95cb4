from __future__ import annotations

import pytest

from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.rules.brokerage import NOW, load


@pytest.fixture
def loaded(runtime: Runtime) -> Runtime:
    """The runtime with the seeded brokerage in the default project and the clock at NOW."""
    runtime.clock = FrozenClock(NOW)
    load(runtime.warehouse, project_id=1)
    return runtime
