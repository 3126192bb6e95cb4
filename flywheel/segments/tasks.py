"""Background loop of the segments domain: recompute dynamic segments on their schedule."""

from __future__ import annotations

from flywheel.core.loops import LoopService
from flywheel.runtime import Runtime
from flywheel.segments import service


class SegmentScheduler(LoopService):
    """Refreshes every dynamic segment that is due (membership diff events included)."""

    name = "segment-scheduler"
    interval_seconds = 30.0

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def run_once(self) -> int:
        with self.runtime.db.unit_of_work() as session:
            done = service.refresh_due(
                session=session, warehouse=self.runtime.warehouse, now=self.runtime.clock()
            )
        return len(done)


def build_loops(runtime: Runtime) -> list[LoopService]:
    """The segments domain's loop services."""
    return [SegmentScheduler(runtime)]
