"""The journey engine as a loop service (``flywheel serve`` / ``flywheel worker``)."""

from __future__ import annotations

from flywheel.core.loops import LoopService
from flywheel.journeys.engine import Engine
from flywheel.runtime import Runtime


class JourneyEngineLoop(LoopService):
    """Segment entries, live feed, due states — one round per tick."""

    name = "journeys"
    interval_seconds = 0.1

    def __init__(self, runtime: Runtime) -> None:
        self.engine = Engine(runtime)

    def run_once(self) -> int:
        return self.engine.run_once()


def build_loops(runtime: Runtime) -> list[LoopService]:
    """The journeys loops."""
    return [JourneyEngineLoop(runtime)]
