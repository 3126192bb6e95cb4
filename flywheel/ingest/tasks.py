"""Placeholder: the ingest processor loop (inbox → identities, profiles, event store)."""

from __future__ import annotations

from flywheel.core.loops import LoopService
from flywheel.runtime import Runtime


class IngestProcessor(LoopService):
    name = "ingest-processor"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.interval_seconds = runtime.settings.processor_interval_seconds

    def run_once(self) -> int:
        return 0
